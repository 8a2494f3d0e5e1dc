"""Tests for the losses against numpy formulas, reductions and argument checks."""

from __future__ import annotations

import numpy as np
import pytest

from spore import Tensor, nn


def _x(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _log_softmax(x: np.ndarray) -> np.ndarray:
    shifted = x - x.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


def test_softmax_cross_entropy_dense_labels_per_sample() -> None:
    logits = _x(4, 3)
    labels = np.eye(3, dtype=np.float32)[[0, 2, 1, 1]]
    out = nn.SoftmaxCrossEntropyWithLogits()(Tensor(logits), Tensor(labels))
    expected = -(labels * _log_softmax(logits)).sum(-1)
    assert out.shape == (4,) and np.allclose(out.asnumpy(), expected, atol=1e-6)


def test_softmax_cross_entropy_sparse_mean() -> None:
    logits = _x(4, 3)
    labels = np.array([0, 2, 1, 1], np.int32)
    loss = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
    out = loss(Tensor(logits), Tensor(labels))
    expected = -_log_softmax(logits)[np.arange(4), labels].mean()
    assert out.shape == () and np.isclose(float(out.asnumpy()), expected, atol=1e-6)


def test_softmax_cross_entropy_sum() -> None:
    logits = _x(2, 5)
    labels = np.array([4, 0], np.int32)
    out = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="sum")(
        Tensor(logits), Tensor(labels)
    )
    expected = -_log_softmax(logits)[np.arange(2), labels].sum()
    assert np.isclose(float(out.asnumpy()), expected, atol=1e-6)


def test_mse_loss_mean() -> None:
    a, b = _x(3, 2), _x(3, 2, seed=1)
    out = nn.MSELoss()(Tensor(a), Tensor(b))
    assert np.isclose(float(out.asnumpy()), ((a - b) ** 2).mean(), atol=1e-6)


def test_mse_loss_none_keeps_shape() -> None:
    a, b = _x(3, 2), _x(3, 2, seed=1)
    out = nn.MSELoss(reduction="none")(Tensor(a), Tensor(b))
    assert np.allclose(out.asnumpy(), (a - b) ** 2, atol=1e-6)


def test_l1_loss_sum() -> None:
    a, b = _x(4), _x(4, seed=2)
    out = nn.L1Loss(reduction="sum")(Tensor(a), Tensor(b))
    assert np.isclose(float(out.asnumpy()), np.abs(a - b).sum(), atol=1e-5)


def test_l1_loss_mean() -> None:
    a, b = _x(4), _x(4, seed=2)
    out = nn.L1Loss()(Tensor(a), Tensor(b))
    assert np.isclose(float(out.asnumpy()), np.abs(a - b).mean(), atol=1e-6)


def test_get_loss_applies_weights() -> None:
    loss = nn.MSELoss(reduction="sum")
    out = loss.get_loss(Tensor(np.array([1.0, 2.0], np.float32)), 3.0)
    assert float(out.asnumpy()) == 9.0


def test_unknown_reduction_is_value_error() -> None:
    with pytest.raises(
        ValueError, match=r"'reduction' should be one of \['mean', 'sum', 'none'\]"
    ):
        nn.MSELoss(reduction="avg")
    assert True


def test_sparse_flag_must_be_bool() -> None:
    with pytest.raises(TypeError, match=r"'sparse' should be bool, but got int"):
        nn.SoftmaxCrossEntropyWithLogits(sparse=1)
    assert True


def test_loss_gradient_reaches_network_weights() -> None:
    net = nn.Dense(3, 2)
    loss = nn.MSELoss()(net(Tensor(_x(4, 3))), Tensor(np.zeros((4, 2), np.float32)))
    loss.to_torch().backward()
    assert (
        net.weight.to_torch().grad is not None and net.bias.to_torch().grad is not None
    )


def test_losses_have_no_parameters() -> None:
    assert list(nn.SoftmaxCrossEntropyWithLogits().get_parameters()) == []
