"""WithLossCell, WithEvalCell and TrainOneStepCell (spore/nn/wrap/cell_wrapper.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from train_helpers import cross_entropy, dense_net

from spore import Parameter, Tensor, nn
from spore.nn.optim import SGD, Momentum
from spore.ops import GradOperation

X = np.array([[1.0, 2.0, 0.5, -1.0], [0.0, -1.0, 2.0, 1.0]], np.float32)
Y = np.array([2, 0], np.int32)
NAMING = (
    Path(__file__).resolve().parents[2].parent
    / "shared/fixtures/mindspore-train/naming.json"
)


def _train_cell(**kwargs: object) -> tuple[nn.Dense, nn.TrainOneStepCell]:
    net = dense_net()
    opt = SGD(net.trainable_params(), learning_rate=0.1)
    return net, nn.TrainOneStepCell(
        nn.WithLossCell(net, cross_entropy()), opt, **kwargs
    )


def _grads(net: nn.Dense) -> tuple[np.ndarray, ...]:
    loss_net = nn.WithLossCell(net, cross_entropy())
    grad_fn = GradOperation(get_by_list=True)(loss_net, net.trainable_params())
    return tuple(g.asnumpy() for g in grad_fn(Tensor(X), Tensor(Y)))


# ---- WithLossCell / WithEvalCell -----------------------------------------------------


def test_with_loss_cell_applies_loss_to_backbone_output() -> None:
    net = dense_net()
    expected = cross_entropy()(net(Tensor(X)), Tensor(Y)).asnumpy()
    got = nn.WithLossCell(net, cross_entropy())(Tensor(X), Tensor(Y)).asnumpy()
    assert got == pytest.approx(expected)


def test_with_loss_cell_keeps_backbone_parameter_names() -> None:
    loss_net = nn.WithLossCell(nn.Dense(3, 2), nn.MSELoss())
    pairs = [(key, p.name) for key, p in loss_net.parameters_and_names()]
    assert pairs == [("_backbone.weight", "weight"), ("_backbone.bias", "bias")]


def test_with_loss_cell_backbone_network_property() -> None:
    net = dense_net()
    assert nn.WithLossCell(net, cross_entropy()).backbone_network is net


def test_with_loss_cell_refuses_non_cell_backbone() -> None:
    with pytest.raises(TypeError, match=r"For 'WithLossCell', the 'backbone'"):
        nn.WithLossCell(lambda x: x, cross_entropy())


def test_with_loss_cell_refuses_non_callable_loss() -> None:
    with pytest.raises(TypeError, match=r"For 'WithLossCell', the 'loss_fn'"):
        nn.WithLossCell(dense_net(), "mse")


def test_with_eval_cell_returns_loss_outputs_and_label() -> None:
    net = dense_net()
    loss, outputs, label = nn.WithEvalCell(net, cross_entropy())(Tensor(X), Tensor(Y))
    np.testing.assert_allclose(outputs.asnumpy(), net(Tensor(X)).asnumpy())
    assert float(loss.asnumpy()) == pytest.approx(
        float(cross_entropy()(outputs, label).asnumpy())
    )


# ---- TrainOneStepCell: names ---------------------------------------------------------


def test_train_one_step_cell_names_match_mindspore() -> None:
    if not NAMING.is_file():
        pytest.skip("naming.json is not beside this checkout")
    case = next(
        c
        for c in json.loads(NAMING.read_text())["cases"]
        if c["id"] == "train_one_step_cell_names"
    )
    expected = [
        (p["key"], p["name"]) for p in case["snapshots"][0]["parameters_and_names"]
    ]
    net = nn.Dense(3, 2)
    opt = Momentum(net.trainable_params(), learning_rate=0.1, momentum=0.9)
    train = nn.TrainOneStepCell(nn.WithLossCell(net, nn.MSELoss()), opt)
    assert [(key, p.name) for key, p in train.parameters_and_names()] == expected


def test_train_one_step_cell_parameters_dict_has_no_prefixes() -> None:
    net = nn.Dense(3, 2)
    opt = Momentum(net.trainable_params(), learning_rate=0.1, momentum=0.9)
    train = nn.TrainOneStepCell(nn.WithLossCell(net, nn.MSELoss()), opt)
    assert list(train.parameters_dict()) == [
        "weight",
        "bias",
        "global_step",
        "learning_rate",
        "momentum",
        "moments.weight",
        "moments.bias",
    ]


# ---- TrainOneStepCell: a step --------------------------------------------------------


def test_step_returns_loss_before_the_update() -> None:
    net, train = _train_cell()
    before = float(
        nn.WithLossCell(dense_net(), cross_entropy())(Tensor(X), Tensor(Y)).asnumpy()
    )
    loss = train(Tensor(X), Tensor(Y))
    assert float(loss.asnumpy()) == pytest.approx(before)


def test_step_returns_a_detached_tensor() -> None:
    _, train = _train_cell()
    loss = train(Tensor(X), Tensor(Y))
    assert isinstance(loss, Tensor) and not loss.to_torch().requires_grad


def test_step_applies_the_optimizer_to_the_gradients() -> None:
    net, train = _train_cell()
    start = [p.asnumpy().copy() for p in net.trainable_params()]
    grads = _grads(dense_net())
    train(Tensor(X), Tensor(Y))
    for param, w0, g in zip(net.trainable_params(), start, grads, strict=True):
        np.testing.assert_allclose(param.asnumpy(), w0 - 0.1 * g, rtol=1e-6, atol=1e-7)
    assert len(grads) == 2


def test_step_gradients_equal_grad_operation() -> None:
    _, train = _train_cell(return_grad=True)
    _, grads = train(Tensor(X), Tensor(Y))
    expected = _grads(dense_net())
    for got, want in zip(grads.values(), expected, strict=True):
        np.testing.assert_allclose(got.asnumpy(), want, rtol=1e-6, atol=1e-7)
    assert list(grads) == ["weight", "bias"]


def test_return_grad_gives_loss_and_grads_by_name() -> None:
    _, train = _train_cell(return_grad=True)
    result = train(Tensor(X), Tensor(Y))
    assert isinstance(result, tuple) and isinstance(result[1], dict)
    assert isinstance(result[0], Tensor) and result[0].shape == ()


def test_sens_scales_the_gradients() -> None:
    _, plain = _train_cell(return_grad=True)
    _, scaled = _train_cell(sens=4.0, return_grad=True)
    _, g1 = plain(Tensor(X), Tensor(Y))
    _, g4 = scaled(Tensor(X), Tensor(Y))
    np.testing.assert_allclose(
        g4["weight"].asnumpy(), 4 * g1["weight"].asnumpy(), rtol=1e-6
    )
    assert scaled.sens == 4.0 and scaled.sense_flag


def test_sens_zero_is_refused() -> None:
    with pytest.raises(
        ValueError, match=r"For 'TrainOneStepCell', the 'sens' should not be 0"
    ):
        _train_cell(sens=0)


def test_sens_of_wrong_type_is_refused() -> None:
    with pytest.raises(
        TypeError, match=r"For 'TrainOneStepCell', the 'sens' should be"
    ):
        _train_cell(sens="1")


def test_return_grad_must_be_bool() -> None:
    with pytest.raises(TypeError, match=r"the 'return_grad' should be bool"):
        _train_cell(return_grad=1)


def test_optimizer_without_parameters_is_refused() -> None:
    loss_net = nn.WithLossCell(dense_net(), cross_entropy())
    with pytest.raises(TypeError, match=r"For 'TrainOneStepCell', the 'optimizer'"):
        nn.TrainOneStepCell(loss_net, object())


def test_network_must_be_a_cell() -> None:
    opt = SGD(dense_net().trainable_params(), learning_rate=0.1)
    with pytest.raises(TypeError, match=r"For 'TrainOneStepCell', the 'network'"):
        nn.TrainOneStepCell(lambda x, y: x, opt)


def test_frozen_weight_gets_zero_gradient_and_stays() -> None:
    net = dense_net()
    net.bias.requires_grad = False
    opt = SGD([net.weight, net.bias], learning_rate=0.1)
    train = nn.TrainOneStepCell(
        nn.WithLossCell(net, cross_entropy()), opt, return_grad=True
    )
    _, grads = train(Tensor(X), Tensor(Y))
    assert not grads["bias"].asnumpy().any()
    assert not net.bias.asnumpy().any()


def test_unused_weight_gets_zero_gradient() -> None:
    net = dense_net()
    extra = Parameter(Tensor(np.ones(3, np.float32)), name="extra")
    opt = SGD([net.weight, net.bias, extra], learning_rate=0.1)
    train = nn.TrainOneStepCell(
        nn.WithLossCell(net, cross_entropy()), opt, return_grad=True
    )
    _, grads = train(Tensor(X), Tensor(Y))
    assert grads["extra"].asnumpy().tolist() == [0.0, 0.0, 0.0]


def test_grad_reducer_is_identity_by_default() -> None:
    _, train = _train_cell()
    grads = (torch.ones(2), torch.zeros(3))
    assert train.grad_reducer(grads) is grads and train.reducer_flag is False


def test_grad_reducer_sees_the_gradients_before_the_optimizer() -> None:
    net, train = _train_cell()
    start = net.weight.asnumpy().copy()
    train.grad_reducer = lambda grads: tuple(torch.zeros_like(g) for g in grads)
    train(Tensor(X), Tensor(Y))
    np.testing.assert_array_equal(net.weight.asnumpy(), start)


def test_step_works_inside_no_grad() -> None:
    net, train = _train_cell()
    start = net.weight.asnumpy().copy()
    with torch.no_grad():
        train(Tensor(X), Tensor(Y))
    assert not np.array_equal(net.weight.asnumpy(), start)


def test_non_scalar_loss_is_differentiated_as_its_sum() -> None:
    net = dense_net()
    loss_net = nn.WithLossCell(net, nn.SoftmaxCrossEntropyWithLogits(sparse=True))
    opt = SGD(net.trainable_params(), learning_rate=0.1)
    train = nn.TrainOneStepCell(loss_net, opt, return_grad=True)
    expected = GradOperation(get_by_list=True)(loss_net, net.trainable_params())(
        Tensor(X), Tensor(Y)
    )
    loss, grads = train(Tensor(X), Tensor(Y))
    np.testing.assert_allclose(
        grads["weight"].asnumpy(), expected[0].asnumpy(), rtol=1e-6
    )
    assert loss.shape == (2,)
