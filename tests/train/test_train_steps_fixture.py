"""Replay of ../shared/fixtures/mindspore-train/train_steps.json (MindSpore 2.10).

TinyLeNet from the stored initial parameters, trained by
``TrainOneStepCell(WithLossCell(net, SoftmaxCrossEntropyWithLogits(sparse=True,
reduction='mean')), Momentum(net.trainable_params(), 0.01, 0.9))`` for 5 calls
after ``set_train()``. Losses, parameters after step 1 and 5, and the optimizer
state match to atol=1e-6, rtol=1e-5; names and keys exactly.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from spore import Tensor, nn
from spore.nn.optim import Momentum

FIXTURE = (
    Path(__file__).resolve().parents[2].parent
    / "shared/fixtures/mindspore-train/train_steps.json"
)
DATA: dict[str, Any] = json.loads(FIXTURE.read_text()) if FIXTURE.is_file() else {}
ATOL, RTOL = 1e-6, 1e-5

pytestmark = pytest.mark.skipif(
    not DATA, reason="train_steps.json is not beside this checkout"
)


class TinyLeNet(nn.Cell):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, pad_mode="valid", has_bias=True)
        self.relu = nn.ReLU()
        self.pool = nn.MaxPool2d(kernel_size=2, stride=2)
        self.flatten = nn.Flatten()
        self.fc1 = nn.Dense(36, 16)
        self.fc2 = nn.Dense(16, 10)

    def construct(self, x: Any) -> Any:
        x = self.pool(self.relu(self.conv1(x)))
        x = self.flatten(x)
        x = self.relu(self.fc1(x))
        return self.fc2(x)


def _array(record: dict[str, Any]) -> np.ndarray:
    return np.asarray(record["values"], dtype=record["dtype"]).reshape(record["shape"])


def _snapshot(params: Any) -> dict[str, np.ndarray]:
    return {p.name: p.asnumpy().copy() for p in params}


@pytest.fixture(scope="module")
def run() -> dict[str, Any]:
    net = TinyLeNet()
    initial = {record["name"]: _array(record) for record in DATA["initial_params"]}
    for param in net.get_parameters():
        param.set_data(Tensor(initial[param.name]))
    loss_fn = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
    opt = Momentum(net.trainable_params(), learning_rate=0.01, momentum=0.9)
    train_net = nn.TrainOneStepCell(nn.WithLossCell(net, loss_fn), opt)
    train_net.set_train()
    x = Tensor(np.asarray(DATA["x"], np.float32))
    label = Tensor(np.asarray(DATA["label"], np.int32))
    losses, after_step_1 = [], {}
    for step in range(5):
        losses.append(float(train_net(x, label).asnumpy()))
        if step == 0:
            after_step_1 = _snapshot(net.get_parameters())
    return {
        "net": net,
        "opt": opt,
        "train_net": train_net,
        "losses": losses,
        "after_step_1": after_step_1,
        "final": _snapshot(net.get_parameters()),
    }


def _assert_params_match(got: dict[str, np.ndarray], records: list[dict]) -> None:
    assert list(got) == [record["name"] for record in records]
    for record in records:
        np.testing.assert_allclose(
            got[record["name"]],
            _array(record),
            atol=ATOL,
            rtol=RTOL,
            err_msg=record["name"],
        )


def test_loss_per_step_matches(run: dict[str, Any]) -> None:
    np.testing.assert_allclose(
        run["losses"], DATA["loss_per_step"], atol=ATOL, rtol=RTOL
    )
    assert len(run["losses"]) == 5


def test_params_after_step_1_match(run: dict[str, Any]) -> None:
    _assert_params_match(run["after_step_1"], DATA["params_after_step_1"])
    assert run["after_step_1"]["fc2.bias"].dtype == np.float32


def test_final_params_match(run: dict[str, Any]) -> None:
    _assert_params_match(run["final"], DATA["final_params"])
    assert run["final"]["conv1.weight"].shape == (4, 1, 3, 3)


def test_final_optimizer_state_matches(run: dict[str, Any]) -> None:
    opt = run["opt"]
    network_ids = {id(p) for p in run["net"].get_parameters()}
    state = [
        (key, p) for key, p in opt.parameters_and_names() if id(p) not in network_ids
    ]
    records = DATA["final_optimizer_state"]
    assert [(key, p.name) for key, p in state] == [
        (record["key"], record["name"]) for record in records
    ]
    for (_, param), record in zip(state, records, strict=True):
        got = param.asnumpy()
        assert got.dtype == np.dtype(record["dtype"]), record["name"]
        np.testing.assert_allclose(got, _array(record), atol=ATOL, rtol=RTOL)
    assert int(opt.global_step.asnumpy()[0]) == 5


def test_train_net_parameters_and_names_match(run: dict[str, Any]) -> None:
    got = [
        [key, p.name, list(p.shape)]
        for key, p in run["train_net"].parameters_and_names()
    ]
    assert got == DATA["train_net_parameters_and_names"]
