"""Replay of ../shared/fixtures/mindspore-train/grads.json (MindSpore 2.10 PyNative).

The MLP Dense(4,5) → ReLU → Dense(5,3) with ``fc1.bias`` frozen, its loss
``MSELoss`` (mean) through a WithLossCell; every recorded call's ``source`` runs
unchanged with ``ops`` bound to ``spore.ops``. Results must match in structure
(tuples, pairs, names) and values (atol=1e-6, rtol=1e-5); the frozen parameter
gets zeros when passed explicitly (PyNative).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import spore.ops as ops
from spore import ParameterTuple, Tensor, nn

FIXTURE = (
    Path(__file__).resolve().parents[2].parent
    / "shared/fixtures/mindspore-train/grads.json"
)
DATA: dict[str, Any] = (
    json.loads(FIXTURE.read_text()) if FIXTURE.is_file() else {"calls": {}}
)
CALLS = DATA["calls"]

pytestmark = pytest.mark.skipif(
    not CALLS, reason="grads.json is not beside this checkout"
)


class _MLP(nn.Cell):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Dense(4, 5)
        self.relu = nn.ReLU()
        self.fc2 = nn.Dense(5, 3)

    def construct(self, x: Any) -> Any:
        return self.fc2(self.relu(self.fc1(x)))


class _WithLossCell(nn.Cell):
    """MindSpore's WithLossCell structure (auto_prefix=False), local to the test."""

    def __init__(self, backbone: nn.Cell, loss_fn: nn.Cell) -> None:
        super().__init__(auto_prefix=False)
        self._backbone = backbone
        self._loss_fn = loss_fn

    def construct(self, data: Any, label: Any) -> Any:
        return self._loss_fn(self._backbone(data), label)


def _array(values: Any) -> np.ndarray:
    return np.asarray(values, dtype=np.float32)


def _namespace() -> dict[str, Any]:
    net = _MLP()
    by_name = dict(net.parameters_and_names())
    for record in DATA["initial_params"]:
        by_name[record["name"]].set_data(Tensor(_array(record["values"])))
    by_name[DATA["frozen_parameter"]].requires_grad = False
    loss_net = _WithLossCell(net, nn.MSELoss())
    return {
        "ops": ops,
        "net": net,
        "loss_net": loss_net,
        "x": Tensor(_array(DATA["x"])),
        "y": Tensor(_array(DATA["y"])),
        "ParameterTuple": ParameterTuple,
    }


def _matches(got: Any, want: Any) -> bool:
    """Structure and values: a record dict is a Tensor, a list a tuple, a str a name."""
    if isinstance(want, dict):
        return (
            isinstance(got, Tensor)
            and got.shape == tuple(want["shape"])
            and np.allclose(got.asnumpy(), _array(want["values"]), atol=1e-6, rtol=1e-5)
        )
    if isinstance(want, str):
        return got == want
    return (
        isinstance(got, tuple)
        and len(got) == len(want)
        and all(_matches(g, w) for g, w in zip(got, want, strict=True))
    )


def test_loss_forward_matches() -> None:
    ns = _namespace()
    loss = ns["loss_net"](ns["x"], ns["y"])
    assert np.isclose(float(loss.asnumpy()), DATA["loss_forward"], atol=1e-6)


def test_parameters_and_trainable_params_match() -> None:
    ns = _namespace()
    got = [
        [key, p.name, list(p.shape), p.requires_grad]
        for key, p in ns["net"].parameters_and_names()
    ]
    trainable = [p.name for p in ns["net"].trainable_params()]
    assert (got, trainable) == (DATA["parameters_and_names"], DATA["trainable_params"])


@pytest.mark.parametrize("call_id", sorted(CALLS))
def test_recorded_call_matches(call_id: str) -> None:
    call = CALLS[call_id]
    result = eval(call["source"], _namespace())
    assert call["error"] is None and _matches(result, call["result"])


@pytest.mark.parametrize("call_id", sorted(CALLS))
def test_frozen_parameter_is_zeros_or_absent(call_id: str) -> None:
    ns = _namespace()
    summary = DATA["frozen_param_result_by_call"][call_id]
    result = eval(CALLS[call_id]["source"], ns)
    flat: list[Any] = []

    def walk(value: Any) -> None:
        if isinstance(value, tuple):
            for item in value:
                walk(item)
        else:
            flat.append(value)

    walk(result)
    grads_of_shape5 = [g for g in flat if isinstance(g, Tensor) and g.shape == (5,)]
    if summary == "zeros":
        ok = len(grads_of_shape5) == 1 and not grads_of_shape5[0].asnumpy().any()
    else:
        ok = summary.startswith("absent") and not grads_of_shape5
    assert ok


def test_true_gradient_of_frozen_parameter_when_made_trainable() -> None:
    ns = _namespace()
    record = DATA["all_trainable_for_comparison"]
    ns["net"].fc1.bias.requires_grad = True
    result = eval(record["source"].split("; ")[1], ns)
    want = [
        record["loss"],
        [{"shape": g["shape"], "values": g["values"]} for g in record["grads"]],
    ]
    assert _matches(result[1], want[1])


def test_frozen_parameter_grad_does_not_touch_user_tensors() -> None:
    ns = _namespace()
    x = ns["x"]
    ops.GradOperation(get_all=True)(ns["loss_net"])(x, ns["y"])
    assert x.to_torch().requires_grad is False and x.to_torch().grad is None


def test_no_gradient_accumulates_into_parameters() -> None:
    ns = _namespace()
    weights = ns["net"].trainable_params()
    ops.value_and_grad(ns["loss_net"], None, weights)(ns["x"], ns["y"])
    assert all(p.to_torch().grad is None for p in weights)
