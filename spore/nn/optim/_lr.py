"""How an optimizer holds a learning rate or weight decay and reads it each step.

A learning rate is one of:
- static: a float32 0-d ``Parameter`` (``learning_rate`` / ``learning_rate_group_<i>``);
- dynamic: a list or 1-D Tensor, held by `_IteratorLearningRate` (a Cell with one
  Parameter of shape [n]); step ``i`` uses item ``i``;
- a `LearningRateSchedule` Cell, called with ``global_step``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import torch

from spore.common import dtype as mstype
from spore.common.parameter import Parameter
from spore.common.tensor import Tensor
from spore.nn.cell import Cell
from spore.nn.optim._checks import check_number, is_number
from spore.nn.optim.lr_schedule import LearningRateSchedule


class _IteratorLearningRate(Cell):
    """A dynamic learning rate: ``construct(global_step)`` returns item ``global_step``.

    Raises:
        RuntimeError: (When called) past the last item.
    """

    def __init__(self, learning_rate: np.ndarray, name: str) -> None:
        super().__init__()
        self.learning_rate = Parameter(Tensor(learning_rate, mstype.float32), name=name)

    def value_at(self, step: int) -> float:
        data = self.learning_rate._materialized()
        if step >= data.shape[0]:
            # MindSpore parity: the CPU Gather fails (RuntimeError) past the end.
            raise RuntimeError(
                "For 'Optimizer', the dynamic learning rate "
                f"'{self.learning_rate.name}' "
                f"has {data.shape[0]} values, but step {step} needs value {step}; give "
                "a longer list or a LearningRateSchedule."
            )
        return float(data[step])

    def construct(self, global_step: Any) -> Tensor:
        step = (
            int(global_step.asnumpy().reshape(-1)[0])
            if isinstance(global_step, Tensor)
            else int(global_step)
        )
        return Tensor(np.float32(self.value_at(step)))


class _ConvertToCell(Cell):
    """A static rate beside dynamic ones (grouped): a Cell over a 0-d Parameter."""

    def __init__(self, learning_rate: Parameter) -> None:
        super().__init__()
        self.learning_rate = learning_rate

    def value_at(self, step: int) -> float:
        return float(self.learning_rate._materialized())

    def construct(self, global_step: Any) -> Tensor:
        return Tensor._wrap(self.learning_rate._materialized().detach().clone())


class LrSpec:
    """A parsed learning rate: ``kind`` is 'static', 'dynamic' or 'schedule'."""

    def __init__(self, kind: str, value: Any) -> None:
        self.kind = kind
        self.value = value  # float, float32 ndarray, or the schedule Cell

    @property
    def length(self) -> int:
        return len(self.value) if self.kind == "dynamic" else 0


def parse_lr(learning_rate: Any, arg: str = "learning_rate") -> LrSpec:
    """Check and classify a learning rate.

    Raises:
        ValueError: If it is negative, an empty list, or a Tensor with ndim > 1.
        TypeError: If it has an unsupported type.
    """
    if isinstance(learning_rate, LearningRateSchedule):
        return LrSpec("schedule", learning_rate)
    if is_number(learning_rate):
        return LrSpec(
            "static", check_number(learning_rate, arg, "Optimizer", 0.0, False)
        )
    if isinstance(learning_rate, (Tensor, np.ndarray)):
        values = (
            learning_rate.asnumpy()
            if isinstance(learning_rate, Tensor)
            else learning_rate
        )
        if values.dtype.kind not in "iuf":
            raise TypeError(
                f"For 'Optimizer', the '{arg}' Tensor should hold numbers, but got "
                "dtype "
                f"{values.dtype}."
            )
        if values.ndim > 1:
            raise ValueError(
                f"For 'Optimizer', the '{arg}' Tensor should be 0-d or 1-D, but got "
                f"shape {values.shape}."
            )
        if values.ndim == 0:
            return parse_lr(float(values), arg)
        return _dynamic(list(values.tolist()), arg)
    if isinstance(learning_rate, (list, tuple)) or (
        isinstance(learning_rate, Iterable)
        and not isinstance(learning_rate, (str, bytes, dict))
    ):
        return _dynamic(list(learning_rate), arg)
    raise TypeError(
        f"For 'Optimizer', the '{arg}' should be a float, int, Tensor, list of "
        "floats or "
        f"LearningRateSchedule, but got {type(learning_rate).__name__}."
    )


def _dynamic(values: list[Any], arg: str) -> LrSpec:
    if not values:
        raise ValueError(f"For 'Optimizer', the dynamic '{arg}' should not be empty.")
    for index, value in enumerate(values):
        if not is_number(value):
            raise TypeError(
                f"For 'Optimizer', every item of the dynamic '{arg}' should be a "
                "float, "
                f"but item {index} is a {type(value).__name__}."
            )
        if value < 0:
            raise ValueError(
                f"For 'Optimizer', every item of the dynamic '{arg}' should be >= 0, "
                f"but item {index} is {value}."
            )
    return LrSpec("dynamic", np.asarray(values, dtype=np.float32))


def static_lr_parameter(value: float, name: str) -> Parameter:
    return Parameter(Tensor(np.float32(value)), name=name)


class LrSource:
    """Reads one learning rate per step; ``holder`` is what the Cell registers."""

    def __init__(self, spec: LrSpec, name: str, as_cell: bool) -> None:
        self.kind = spec.kind
        if spec.kind == "static":
            param = static_lr_parameter(spec.value, name)
            self.holder: Any = _ConvertToCell(param) if as_cell else param
            self.parameter: Parameter | None = param
        elif spec.kind == "dynamic":
            self.holder = _IteratorLearningRate(spec.value, name)
            self.parameter = self.holder.learning_rate
        else:
            self.holder = spec.value
            self.parameter = None

    def value_at(self, step: int, global_step: Parameter) -> float:
        if self.kind == "static":
            assert self.parameter is not None
            return float(self.parameter._materialized())
        if self.kind == "dynamic":
            return self.holder.value_at(step)
        result = self.holder(global_step)
        raw = (
            result._materialized()
            if isinstance(result, Tensor)
            else torch.as_tensor(result)
        )
        return float(raw.reshape(-1)[0])

    @property
    def lr_object(self) -> Any:
        """What ``get_lr_parameter`` returns: the Parameter, or the schedule Cell."""
        return self.parameter if self.parameter is not None else self.holder


class WdSource:
    """One weight decay: a float (times loss_scale) or a Cell called per step."""

    def __init__(self, value: Any, loss_scale: float) -> None:
        self.cell: Cell | None = None
        self.value = 0.0
        if isinstance(value, Cell):
            self.cell = value
        else:
            self.value = float(value) * loss_scale
        self.loss_scale = loss_scale

    @property
    def dynamic(self) -> bool:
        return self.cell is not None

    def value_at(self, global_step: Parameter) -> float:
        if self.cell is None:
            return self.value
        result = self.cell(global_step)
        raw = (
            result._materialized()
            if isinstance(result, Tensor)
            else torch.as_tensor(result)
        )
        return float(raw.reshape(-1)[0]) * self.loss_scale
