"""Tests for the layers: parameters (names, shapes, dtypes, init), outputs against
torch.nn.functional / numpy computed here, modes, gradients and argument checks.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import spore
from spore import Tensor, nn
from spore import dtype as mstype


def _x(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _t(array: np.ndarray) -> Tensor:
    return Tensor(array)


def _close(a, b, atol: float = 1e-5) -> bool:
    a = a.asnumpy() if isinstance(a, Tensor) else np.asarray(a)
    b = b.detach().numpy() if isinstance(b, torch.Tensor) else np.asarray(b)
    return a.shape == b.shape and np.allclose(a, b, atol=atol, rtol=1e-5)


def _weights(cell: nn.Cell) -> list[torch.Tensor]:
    return [p.to_torch() for p in cell.get_parameters()]


# ---- Dense ---------------------------------------------------------------------------


def test_dense_parameters() -> None:
    net = nn.Dense(3, 4)
    assert [(k, p.shape, p.dtype) for k, p in net.parameters_and_names()] == [
        ("weight", (4, 3), mstype.float32),
        ("bias", (4,), mstype.float32),
    ]


def test_dense_default_init_bounds_are_one_over_sqrt_fan_in() -> None:
    net = nn.Dense(16, 64)
    bound = 1 / math.sqrt(16)
    w, b = np.abs(net.weight.asnumpy()), np.abs(net.bias.asnumpy())
    assert (w.max() <= bound, w.max() > 0.8 * bound, b.max() <= bound) == (
        True,
        True,
        True,
    )


def test_dense_output_matches_linear() -> None:
    net = nn.Dense(3, 4)
    x = _x(2, 3)
    w, b = _weights(net)
    assert _close(net(_t(x)), F.linear(torch.from_numpy(x), w, b))


def test_dense_accepts_numpy_and_torch_input() -> None:
    net = nn.Dense(3, 2)
    x = _x(5, 3)
    assert _close(net(x), net(torch.from_numpy(x)).asnumpy())


def test_dense_handles_leading_dimensions() -> None:
    assert nn.Dense(3, 2)(_t(_x(4, 5, 3))).shape == (4, 5, 2)


def test_dense_without_bias() -> None:
    net = nn.Dense(3, 2, has_bias=False)
    assert ([k for k, _ in net.parameters_and_names()], net.bias) == (["weight"], None)


def test_dense_activation_by_name() -> None:
    net = nn.Dense(3, 4, activation="relu")
    x = _x(6, 3)
    w, b = _weights(net)
    assert _close(net(_t(x)), F.relu(F.linear(torch.from_numpy(x), w, b)))


def test_dense_weight_init_string_and_number() -> None:
    net = nn.Dense(2, 2, weight_init="ones", bias_init=0.5)
    assert (net.weight.asnumpy().tolist(), net.bias.asnumpy().tolist()) == (
        [[1.0, 1.0], [1.0, 1.0]],
        [0.5, 0.5],
    )


def test_dense_weight_init_tensor_of_wrong_shape_is_value_error() -> None:
    with pytest.raises(
        ValueError, match=r"shape of 'weight_init' should be \(2, 3\), but got \(3, 2\)"
    ):
        nn.Dense(3, 2, weight_init=Tensor(np.zeros((3, 2), np.float32)))
    assert True


@pytest.mark.parametrize(
    ("value", "error", "match"),
    [
        (0, ValueError, r"'in_channels' should be > 0, but got 0"),
        (2.5, TypeError, r"'in_channels' should be int, but got float"),
        (True, TypeError, r"'in_channels' should be int, but got bool"),
    ],
)
def test_dense_refuses_bad_in_channels(value, error, match) -> None:
    with pytest.raises(error, match=match):
        nn.Dense(value, 2)
    assert True


def test_dense_refuses_non_bool_has_bias() -> None:
    with pytest.raises(TypeError, match=r"For 'Dense', the 'has_bias' should be bool"):
        nn.Dense(2, 2, has_bias=1)
    assert True


def test_dense_refuses_unknown_activation_name() -> None:
    with pytest.raises(KeyError, match=r"activation 'swish' is not supported"):
        nn.Dense(2, 2, activation="swish")
    assert True


def test_dense_refuses_activation_of_wrong_type() -> None:
    with pytest.raises(TypeError, match=r"'activation' should be str, Cell or None"):
        nn.Dense(2, 2, activation=3)
    assert True


def test_dense_refuses_list_input() -> None:
    with pytest.raises(TypeError, match=r"For 'Dense', the 'x' should be a Tensor"):
        nn.Dense(2, 2)([1.0, 2.0])
    assert True


def test_gradient_reaches_weights() -> None:
    net = nn.Dense(3, 2)
    net(_t(_x(4, 3))).to_torch().sum().backward()
    grad = net.weight.to_torch().grad
    assert grad is not None and grad.shape == (2, 3)


def test_no_gradient_for_frozen_parameter() -> None:
    net = nn.Dense(3, 2)
    net.bias.requires_grad = False
    net(_t(_x(4, 3))).to_torch().sum().backward()
    assert (net.bias.to_torch().grad, net.weight.to_torch().grad is not None) == (
        None,
        True,
    )


def test_weights_stay_lazy_until_first_call() -> None:
    with spore.lazy_init():
        net = nn.Dense(3, 2)
    before = (net.weight.has_init, net.bias.has_init)
    net(_t(_x(1, 3)))
    assert (before, net.weight.has_init) == ((True, True), False)


def test_lazy_weights_equal_eager_ones_for_same_seed() -> None:
    spore.set_seed(7)
    eager = nn.Dense(3, 2).weight.asnumpy()
    spore.set_seed(7)
    with spore.lazy_init():
        lazy = nn.Dense(3, 2)
    lazy.init_parameters_data()
    assert np.array_equal(eager, lazy.weight.asnumpy())


def test_output_is_a_spore_tensor() -> None:
    assert type(nn.Dense(2, 2)(_t(_x(1, 2)))) is Tensor


# ---- Conv2d --------------------------------------------------------------------------


def test_conv2d_parameters_default_no_bias() -> None:
    net = nn.Conv2d(3, 8, 3)
    assert [(k, p.shape) for k, p in net.parameters_and_names()] == [
        ("weight", (8, 3, 3, 3))
    ]


def test_conv2d_same_mode_keeps_size() -> None:
    net = nn.Conv2d(2, 4, 3)
    x = _x(1, 2, 5, 5)
    expected = F.conv2d(torch.from_numpy(x), net.weight.to_torch(), padding=1)
    assert _close(net(_t(x)), expected)


def test_conv2d_same_mode_with_stride_pads_bottom_right() -> None:
    net = nn.Conv2d(1, 2, 2, stride=2)
    x = _x(1, 1, 5, 5)
    padded = F.pad(torch.from_numpy(x), (0, 1, 0, 1))
    expected = F.conv2d(padded, net.weight.to_torch(), stride=2)
    assert (net(_t(x)).shape, _close(net(_t(x)), expected)) == ((1, 2, 3, 3), True)


def test_conv2d_valid_mode_with_bias() -> None:
    net = nn.Conv2d(1, 4, 3, pad_mode="valid", has_bias=True)
    x = _x(2, 1, 8, 8)
    expected = F.conv2d(torch.from_numpy(x), net.weight.to_torch(), net.bias.to_torch())
    assert _close(net(_t(x)), expected)


def test_conv2d_default_bias_bound_uses_fan_in() -> None:
    net = nn.Conv2d(2, 64, 3, has_bias=True)
    assert np.abs(net.bias.asnumpy()).max() <= 1 / math.sqrt(2 * 9)


def test_conv2d_pad_mode_four_sided_padding() -> None:
    net = nn.Conv2d(1, 1, 3, pad_mode="pad", padding=(1, 0, 2, 0))
    x = _x(1, 1, 4, 4)
    padded = F.pad(torch.from_numpy(x), (2, 0, 1, 0))
    assert _close(net(_t(x)), F.conv2d(padded, net.weight.to_torch()))


def test_conv2d_group_and_dilation() -> None:
    net = nn.Conv2d(4, 6, 3, pad_mode="valid", dilation=2, group=2)
    x = _x(1, 4, 9, 9)
    expected = F.conv2d(
        torch.from_numpy(x), net.weight.to_torch(), dilation=2, groups=2
    )
    assert (net.weight.shape, _close(net(_t(x)), expected)) == ((6, 2, 3, 3), True)


def test_conv2d_padding_without_pad_mode_is_value_error() -> None:
    with pytest.raises(
        ValueError, match=r"'padding' should be 0 when 'pad_mode' is not 'pad'"
    ):
        nn.Conv2d(1, 1, 3, padding=1)
    assert True


def test_conv2d_group_must_divide_channels() -> None:
    with pytest.raises(ValueError, match=r"'group' should divide"):
        nn.Conv2d(3, 4, 3, group=2)
    assert True


def test_conv2d_unknown_pad_mode_is_value_error() -> None:
    with pytest.raises(
        ValueError, match=r"'pad_mode' should be one of \['same', 'valid', 'pad'\]"
    ):
        nn.Conv2d(1, 1, 3, pad_mode="full")
    assert True


def test_conv2d_bad_kernel_size_type() -> None:
    with pytest.raises(
        TypeError, match=r"'kernel_size' should be an int or a tuple of two ints"
    ):
        nn.Conv2d(1, 1, (3, 3, 3))
    assert True


# ---- BatchNorm -----------------------------------------------------------------------


def test_batchnorm_parameters_order_names_and_flags() -> None:
    bn = nn.BatchNorm2d(3)
    assert [(k, p.name, p.requires_grad) for k, p in bn.parameters_and_names()] == [
        ("moving_mean", "mean", False),
        ("moving_variance", "variance", False),
        ("gamma", "gamma", True),
        ("beta", "beta", True),
    ]


def test_batchnorm_nested_names_are_paths() -> None:
    class Net(nn.Cell):
        def __init__(self) -> None:
            super().__init__()
            self.bn = nn.BatchNorm2d(2)

    assert [p.name for p in Net().get_parameters()] == [
        "bn.moving_mean",
        "bn.moving_variance",
        "bn.gamma",
        "bn.beta",
    ]


def test_batchnorm_updates_moving_stats_in_train_mode() -> None:
    bn = nn.BatchNorm2d(2, momentum=0.9).set_train()
    x = _x(4, 2, 3, 3)
    bn(_t(x))
    mean = x.mean(axis=(0, 2, 3))
    var = x.var(axis=(0, 2, 3), ddof=1)
    assert _close(bn.moving_mean, 0.1 * mean) and _close(
        bn.moving_variance, 0.9 + 0.1 * var
    )


def test_batchnorm_train_output_uses_batch_statistics() -> None:
    bn = nn.BatchNorm2d(2).set_train()
    x = _x(4, 2, 3, 3)
    mean = x.mean(axis=(0, 2, 3), keepdims=True)
    var = x.var(axis=(0, 2, 3), keepdims=True)
    assert _close(bn(_t(x)), (x - mean) / np.sqrt(var + 1e-5), atol=1e-4)


def test_batchnorm_eval_mode_keeps_moving_stats() -> None:
    bn = nn.BatchNorm2d(2)
    bn(_t(_x(4, 2, 3, 3)))
    assert (
        bn.moving_mean.asnumpy().tolist(),
        bn.moving_variance.asnumpy().tolist(),
    ) == (
        [0.0, 0.0],
        [1.0, 1.0],
    )


def test_batchnorm_eval_output_uses_moving_statistics() -> None:
    bn = nn.BatchNorm1d(3, moving_mean_init="ones", moving_var_init=4.0)
    x = _x(5, 3)
    assert _close(bn(_t(x)), (x - 1) / np.sqrt(4 + 1e-5))


def test_batchnorm_use_batch_statistics_false_in_train_mode() -> None:
    bn = nn.BatchNorm1d(3, use_batch_statistics=False).set_train()
    bn(_t(_x(5, 3)))
    assert bn.moving_mean.asnumpy().tolist() == [0.0, 0.0, 0.0]


def test_batchnorm_affine_false_freezes_gamma_beta() -> None:
    bn = nn.BatchNorm1d(2, affine=False)
    assert [p.name for p in bn.trainable_params()] == []


def test_batchnorm_gradient_reaches_gamma_not_moving_mean() -> None:
    bn = nn.BatchNorm2d(2).set_train()
    (
        bn(_t(_x(4, 2, 2, 2))).to_torch() * torch.arange(2.0).view(1, 2, 1, 1)
    ).sum().backward()
    assert (bn.gamma.to_torch().grad is not None, bn.moving_mean.to_torch().grad) == (
        True,
        None,
    )


def test_batchnorm_momentum_out_of_range() -> None:
    with pytest.raises(
        ValueError, match=r"'momentum' should be in range \[0, 1\], but got 1.5"
    ):
        nn.BatchNorm2d(2, momentum=1.5)
    assert True


def test_batchnorm_use_batch_statistics_wrong_type_is_value_error() -> None:
    with pytest.raises(
        ValueError, match=r"'use_batch_statistics' should be bool or None"
    ):
        nn.BatchNorm2d(2, use_batch_statistics=1)
    assert True


def test_batchnorm2d_refuses_2d_input() -> None:
    with pytest.raises(ValueError, match=r"input should have 4 dimensions"):
        nn.BatchNorm2d(2)(_t(_x(3, 2)))
    assert True


# ---- LayerNorm -----------------------------------------------------------------------


def test_layernorm_matches_layer_norm() -> None:
    ln = nn.LayerNorm((4,))
    x = _x(3, 4)
    expected = F.layer_norm(torch.from_numpy(x), (4,), eps=1e-7)
    assert ([k for k, _ in ln.parameters_and_names()], _close(ln(_t(x)), expected)) == (
        ["gamma", "beta"],
        True,
    )


def test_layernorm_norm_axis_before_params_axis() -> None:
    ln = nn.LayerNorm((4,), begin_norm_axis=1, begin_params_axis=-1, gamma_init=2.0)
    x = _x(2, 3, 4)
    mean = x.mean(axis=(1, 2), keepdims=True)
    var = x.var(axis=(1, 2), keepdims=True)
    assert _close(ln(_t(x)), 2 * (x - mean) / np.sqrt(var + 1e-7), atol=1e-4)


def test_layernorm_refuses_int_shape() -> None:
    with pytest.raises(
        TypeError, match=r"'normalized_shape' should be tuple or list, but got int"
    ):
        nn.LayerNorm(4)
    assert True


# ---- Embedding -----------------------------------------------------------------------


def test_embedding_looks_up_rows() -> None:
    emb = nn.Embedding(10, 3)
    ids = np.array([[1, 2], [9, 0]], np.int32)
    table = emb.embedding_table.asnumpy()
    assert _close(emb(Tensor(ids)), table[ids])


def test_embedding_table_parameter() -> None:
    emb = nn.Embedding(5, 2)
    assert [(k, p.name, p.shape) for k, p in emb.parameters_and_names()] == [
        ("embedding_table", "embedding_table", (5, 2))
    ]


def test_embedding_default_table_is_normal_001() -> None:
    values = nn.Embedding(200, 50).embedding_table.asnumpy()
    assert abs(values.std() - 0.01) < 0.001


def test_embedding_padding_row_is_zero() -> None:
    emb = nn.Embedding(4, 3, padding_idx=2)
    assert emb.embedding_table.asnumpy()[2].tolist() == [0.0, 0.0, 0.0]


def test_embedding_one_hot_gives_same_values() -> None:
    spore.set_seed(3)
    a = nn.Embedding(6, 2)
    spore.set_seed(3)
    b = nn.Embedding(6, 2, use_one_hot=True)
    ids = Tensor(np.array([0, 5, 3], np.int32))
    assert _close(a(ids), b(ids).asnumpy())


def test_embedding_padding_idx_out_of_range() -> None:
    with pytest.raises(
        ValueError, match=r"'padding_idx' should be in range \[0, 4\), but got 4"
    ):
        nn.Embedding(4, 3, padding_idx=4)
    assert True


def test_embedding_refuses_float_ids() -> None:
    with pytest.raises(TypeError, match=r"ids should have an integer dtype"):
        nn.Embedding(4, 3)(_t(_x(2)))
    assert True


# ---- Dropout, Flatten ----------------------------------------------------------------


def test_dropout_is_identity_in_eval_mode() -> None:
    x = _t(_x(10))
    assert nn.Dropout(p=0.5)(x) is x


def test_dropout_in_train_mode_zeroes_and_scales() -> None:
    drop = nn.Dropout(p=0.5).set_train()
    out = drop(_t(np.ones(10000, np.float32))).asnumpy()
    assert (
        set(np.unique(out).tolist()) == {0.0, 2.0} and 0.45 < (out == 0).mean() < 0.55
    )


def test_dropout_keep_prob_is_one_minus_p() -> None:
    assert nn.Dropout(keep_prob=0.8).p == pytest.approx(0.2)


def test_dropout_default_p_is_half() -> None:
    assert nn.Dropout().p == 0.5


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"p": 1.0}, ValueError, r"'p' should be in range \[0, 1\), but got 1.0"),
        ({"keep_prob": 0.0}, ValueError, r"'keep_prob' should be in range \(0, 1\]"),
        ({"p": 1}, TypeError, r"'p' should be float, but got int"),
    ],
)
def test_dropout_refuses_bad_probability(kwargs, error, match) -> None:
    with pytest.raises(error, match=match):
        nn.Dropout(**kwargs)
    assert True


def test_flatten_keeps_batch_dimension() -> None:
    assert nn.Flatten()(_t(_x(2, 3, 4))).shape == (2, 12)


# ---- pooling -------------------------------------------------------------------------


def test_maxpool_valid_matches_max_pool2d() -> None:
    x = _x(1, 2, 6, 6)
    assert _close(nn.MaxPool2d(2, 2)(_t(x)), F.max_pool2d(torch.from_numpy(x), 2, 2))


def test_maxpool_same_mode_output_size_and_values() -> None:
    x = _x(1, 1, 5, 5)
    out = nn.MaxPool2d(2, 2, pad_mode="same")(_t(x)).asnumpy()
    assert (out.shape, out[0, 0, 2, 2] == x[0, 0, 4, 4]) == ((1, 1, 3, 3), True)


def test_maxpool_accepts_upper_case_pad_mode() -> None:
    assert nn.MaxPool2d(2, 2, pad_mode="VALID").pad_mode == "valid"


def test_avgpool_valid_matches_avg_pool2d() -> None:
    x = _x(1, 2, 6, 6)
    assert _close(nn.AvgPool2d(3, 3)(_t(x)), F.avg_pool2d(torch.from_numpy(x), 3, 3))


def test_avgpool_same_mode_excludes_padding() -> None:
    x = _x(1, 1, 3, 3)
    out = nn.AvgPool2d(2, 2, pad_mode="same")(_t(x)).asnumpy()
    assert (out.shape, np.isclose(out[0, 0, 1, 1], x[0, 0, 2, 2])) == (
        (1, 1, 2, 2),
        True,
    )


def test_avgpool_pad_mode_matches_avg_pool2d() -> None:
    x = _x(1, 1, 4, 4)
    out = nn.AvgPool2d(3, 1, pad_mode="pad", padding=1)(_t(x))
    assert _close(out, F.avg_pool2d(torch.from_numpy(x), 3, 1, padding=1))


def test_pool_kernel_size_zero_is_value_error() -> None:
    with pytest.raises(ValueError, match=r"every item of 'kernel_size' should be >= 1"):
        nn.MaxPool2d(0)
    assert True


# ---- activations ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cell", "reference"),
    [
        (nn.ReLU(), lambda x: np.maximum(x, 0)),
        (nn.Sigmoid(), lambda x: 1 / (1 + np.exp(-x))),
        (nn.Tanh(), np.tanh),
        (
            nn.GELU(),
            lambda x: (
                0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))
            ),
        ),
        (nn.Softmax(), lambda x: np.exp(x) / np.exp(x).sum(-1, keepdims=True)),
    ],
    ids=["relu", "sigmoid", "tanh", "gelu", "softmax"],
)
def test_activation_matches_formula(cell, reference) -> None:
    x = _x(3, 4)
    assert _close(cell(_t(x)), reference(x))


def test_softmax_along_axis_zero() -> None:
    x = _x(3, 4)
    assert _close(
        nn.Softmax(axis=0)(_t(x)), np.exp(x) / np.exp(x).sum(0, keepdims=True)
    )
