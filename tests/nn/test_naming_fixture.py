"""Replay of ../shared/fixtures/mindspore-train/naming.json (MindSpore 2.10) on spore.

Each case's ``source`` runs unchanged, with ``nn``, ``Parameter``... bound to
spore. Keys, names, shapes, dtypes, flags, order and error classes must match
MindSpore exactly, except where spore decided otherwise (``_SPORE_EXPECTED``):

- ``parameter_tuple_attribute``: unnamed ParameterTuple items are named as
  spore's ParameterTuple names them (``Parameter_0``, ``Parameter_1``; r1.3),
  not ``Parameter$1``, ``Parameter$2`` (2.10's per-cell counter).
- ``plain_list_attribute_not_registered``: an unnamed Parameter in a plain list
  keeps spore's default name ``Parameter`` (r1.3), not ``Parameter#1``.
- ``duplicate_names_refreshed_on_first_call``: two different Parameters named
  ``'w'`` are refused with ValueError when the second is assigned (line 5);
  MindSpore 2.10 accepts them and renames *all* Parameters by path at the first
  call (issue 3's decision; see Note [unique parameter names]).

Where spore has no ``WithLossCell``/``TrainOneStepCell``/``Momentum`` yet (they
live in spore.nn.wrap / spore.nn.optim), stand-ins with MindSpore's structure
(auto_prefix=False, the same attribute names and order) take their place, so
the Cell naming rules are still checked.
"""

from __future__ import annotations

import json
import sys
import traceback
from collections import OrderedDict
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

import spore
from spore import Parameter, ParameterTuple, Tensor
from spore import nn as spore_nn

FIXTURE = (
    Path(__file__).resolve().parents[2].parent
    / "shared/fixtures/mindspore-train/naming.json"
)
DATA = json.loads(FIXTURE.read_text()) if FIXTURE.is_file() else {"cases": []}
CASES = {case["id"]: case for case in DATA["cases"]}

pytestmark = pytest.mark.skipif(
    not CASES, reason="naming.json is not beside this checkout"
)


# ---- stand-ins for cells other modules own -------------------------------------------


class _WithLossCell(spore_nn.Cell):
    def __init__(self, backbone: spore_nn.Cell, loss_fn: spore_nn.Cell) -> None:
        super().__init__(auto_prefix=False)
        self._backbone = backbone
        self._loss_fn = loss_fn


class _Momentum(spore_nn.Cell):
    def __init__(self, params: Any, learning_rate: float, momentum: float) -> None:
        super().__init__(auto_prefix=False)
        self.global_step = Parameter(Tensor(np.zeros(1, np.int32)), name="global_step")
        self.learning_rate = Parameter(
            Tensor(np.float32(learning_rate)), name="learning_rate"
        )
        self.parameters = ParameterTuple(params)
        self.momentum = Parameter(Tensor(np.float32(momentum)), name="momentum")
        self.moments = self.parameters.clone(prefix="moments", init="zeros")


class _TrainOneStepCell(spore_nn.Cell):
    def __init__(self, network: spore_nn.Cell, optimizer: _Momentum) -> None:
        super().__init__(auto_prefix=False)
        self.network = network
        self.optimizer = optimizer
        self.weights = optimizer.parameters


def _nn_namespace() -> SimpleNamespace:
    names = {name: getattr(spore_nn, name) for name in dir(spore_nn)}
    names.setdefault("WithLossCell", _WithLossCell)
    names.setdefault("Momentum", _Momentum)
    names.setdefault("TrainOneStepCell", _TrainOneStepCell)
    return SimpleNamespace(**names)


# ---- replay --------------------------------------------------------------------------


def _records(params: list[Parameter]) -> list[dict[str, Any]]:
    return [
        {
            "name": p.name,
            "shape": list(p.shape),
            "dtype": str(p.dtype),
            "requires_grad": p.requires_grad,
        }
        for p in params
    ]


def _snapshot(label: str, cell: spore_nn.Cell) -> dict[str, Any]:
    pairs = list(cell.parameters_and_names())
    named = [
        {"key": key, **record}
        for (key, _), record in zip(pairs, _records([p for _, p in pairs]), strict=True)
    ]
    return {
        "label": label,
        "parameters_and_names": named,
        "trainable_params": _records(cell.trainable_params()),
        "untrainable_params": _records(cell.untrainable_params()),
        "parameters_dict_keys": list(cell.parameters_dict()),
    }


def _replay(source: str) -> dict[str, Any]:
    snapshots: list[dict[str, Any]] = []
    notes: list[dict[str, Any]] = []
    namespace = {
        "np": np,
        "OrderedDict": OrderedDict,
        "ms": spore,
        "nn": _nn_namespace(),
        "Parameter": Parameter,
        "ParameterTuple": ParameterTuple,
        "Tensor": Tensor,
        "T": lambda *shape: Tensor(np.zeros(shape, np.float32)),
        "record": lambda label, cell: snapshots.append(_snapshot(label, cell)),
        "note": lambda label, value: notes.append({"label": label, "value": value}),
    }
    error = None
    try:
        exec(compile(source, "<case>", "exec"), namespace)
    except Exception as err:  # the case records which error and where
        frames = [
            f for f in traceback.extract_tb(sys.exc_info()[2]) if f.filename == "<case>"
        ]
        error = {"type": type(err).__name__, "source_line": frames[-1].lineno}
    return {"error": error, "snapshots": snapshots, "notes": notes}


def _expected(case: dict[str, Any]) -> dict[str, Any]:
    error = case["error"]
    if error is not None:
        error = {"type": error["type"], "source_line": error["source_line"]}
    out = {
        "error": error,
        "snapshots": case["snapshots"],
        "notes": case.get("notes") or [],
    }
    return _SPORE_EXPECTED.get(case["id"], lambda e: e)(out)


def _rename(expected: dict[str, Any], mapping: dict[str, str]) -> dict[str, Any]:
    """``expected`` with every name and key string rewritten through ``mapping``."""
    text = json.dumps(expected)
    for old, new in mapping.items():
        text = text.replace(old, new)
    return json.loads(text)


def _duplicate_refused(expected: dict[str, Any]) -> dict[str, Any]:
    # spore: refused at `self.b = Parameter(..., name='w')`, source line 5.
    return {
        "error": {"type": "ValueError", "source_line": 5},
        "snapshots": [],
        "notes": [],
    }


_SPORE_EXPECTED = {
    "parameter_tuple_attribute": lambda e: _rename(
        e, {"Parameter$1": "Parameter_0", "Parameter$2": "Parameter_1"}
    ),
    "plain_list_attribute_not_registered": lambda e: _rename(
        e, {'"Parameter#1"': '"Parameter"'}
    ),
    "duplicate_names_refreshed_on_first_call": _duplicate_refused,
}


@pytest.mark.parametrize("case_id", sorted(CASES))
def test_case_matches_mindspore(case_id: str) -> None:
    case = CASES[case_id]
    assert _replay(case["source"]) == _expected(case)


def test_all_fifteen_cases_replayed() -> None:
    assert len(CASES) == 15


def test_duplicate_name_error_names_both_paths() -> None:
    source = CASES["duplicate_names_refreshed_on_first_call"]["source"]
    head = source.split("net = Net()")[0]
    namespace = {
        "np": np,
        "nn": _nn_namespace(),
        "Parameter": Parameter,
        "Tensor": Tensor,
    }
    exec(compile(head, "<case>", "exec"), namespace)
    with pytest.raises(
        ValueError, match=r"Parameters at 'a' and 'b' are both named 'w'"
    ):
        namespace["Net"]()
    assert True


def test_update_parameters_name_bad_prefix_message() -> None:
    net = spore_nn.Dense(2, 2)
    with pytest.raises(
        ValueError, match=r"'prefix' should contain only ASCII .*'bad prefix!'"
    ):
        net.update_parameters_name("bad prefix!")
    assert net.weight.name == "weight"


def test_insert_param_dotted_key_message() -> None:
    net = spore_nn.Cell()
    with pytest.raises(KeyError, match=r"should not contain '\.'"):
        net.insert_param_to_cell("a.b", Parameter(Tensor(np.zeros(1, np.float32))))
    assert list(net.parameters_and_names()) == []
