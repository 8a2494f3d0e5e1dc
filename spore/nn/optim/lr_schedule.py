"""Learning-rate schedules: Cells called with ``global_step``, and list builders.

The Cells (MindSpore's ``nn.learning_rate_schedule``) compute in float32 from the
step; an optimizer given one calls it with its ``global_step`` before each
update. The functions (MindSpore's ``nn.dynamic_lr``) return a Python list with
one learning rate per step, for an optimizer's dynamic ``learning_rate``.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from spore.common.tensor import Tensor
from spore.nn.cell import Cell
from spore.nn.optim._checks import check_bool, check_float, check_int

__all__ = [
    "CosineDecayLR",
    "ExponentialDecayLR",
    "InverseDecayLR",
    "LearningRateSchedule",
    "NaturalExpDecayLR",
    "PolynomialDecayLR",
    "WarmUpLR",
    "exponential_decay_lr",
    "piecewise_constant_lr",
]


def _step_as_float(global_step: Any) -> torch.Tensor:
    if isinstance(global_step, Tensor):
        return global_step._materialized().detach().to(torch.float32)
    if isinstance(global_step, torch.Tensor):
        return global_step.detach().to(torch.float32)
    return torch.tensor(float(global_step), dtype=torch.float32)


class LearningRateSchedule(Cell):
    """Base class of schedules: ``construct(global_step)`` returns the learning rate."""

    def construct(self, global_step: Any) -> Tensor:
        raise NotImplementedError(
            f"For '{type(self).__name__}', a LearningRateSchedule must define "
            "construct(global_step)."
        )


class _DecayLR(LearningRateSchedule):
    """``learning_rate * f(p)``, ``p = global_step / decay_steps`` (floored: stair)."""

    def __init__(
        self, learning_rate: float, decay_rate: float, decay_steps: int, is_stair: bool
    ) -> None:
        super().__init__()
        cls = type(self).__name__
        self.learning_rate = check_float(
            learning_rate, "learning_rate", cls, 0.0, None, "(]"
        )
        self.decay_rate = check_float(decay_rate, "decay_rate", cls, 0.0, None, "(]")
        self.decay_steps = check_int(decay_steps, "decay_steps", cls)
        self.is_stair = check_bool(is_stair, "is_stair", cls)

    def _progress(self, global_step: Any) -> torch.Tensor:
        p = _step_as_float(global_step) / self.decay_steps
        return torch.floor(p) if self.is_stair else p


class ExponentialDecayLR(_DecayLR):
    """``learning_rate * decay_rate ** p``, ``p = global_step / decay_steps``.

    Args:
        learning_rate: The initial learning rate (float > 0).
        decay_rate: The decay rate (float > 0).
        decay_steps: Steps per decay (int >= 1).
        is_stair: Floor ``p`` (decay in steps). Default: ``False``.

    Raises:
        TypeError: If an argument has the wrong type (ints refused for floats).
        ValueError: If a value is out of range.

    Examples:
        >>> from spore import Tensor, int32
        >>> lr = ExponentialDecayLR(0.1, 0.5, 1)(Tensor(2, int32))
        >>> round(float(lr), 6)
        0.025
    """

    def __init__(
        self,
        learning_rate: float,
        decay_rate: float,
        decay_steps: int,
        is_stair: bool = False,
    ) -> None:
        super().__init__(learning_rate, decay_rate, decay_steps, is_stair)

    def construct(self, global_step: Any) -> Tensor:
        p = self._progress(global_step)
        return Tensor._wrap(
            self.learning_rate * torch.pow(torch.tensor(self.decay_rate), p)
        )


class NaturalExpDecayLR(_DecayLR):
    """``learning_rate * exp(-decay_rate * p)`` (arguments as `ExponentialDecayLR`)."""

    def __init__(
        self,
        learning_rate: float,
        decay_rate: float,
        decay_steps: int,
        is_stair: bool = False,
    ) -> None:
        super().__init__(learning_rate, decay_rate, decay_steps, is_stair)

    def construct(self, global_step: Any) -> Tensor:
        p = self._progress(global_step)
        return Tensor._wrap(self.learning_rate * torch.exp(-self.decay_rate * p))


class InverseDecayLR(_DecayLR):
    """``learning_rate / (1 + decay_rate * p)`` (arguments as `ExponentialDecayLR`)."""

    def __init__(
        self,
        learning_rate: float,
        decay_rate: float,
        decay_steps: int,
        is_stair: bool = False,
    ) -> None:
        super().__init__(learning_rate, decay_rate, decay_steps, is_stair)

    def construct(self, global_step: Any) -> Tensor:
        p = self._progress(global_step)
        return Tensor._wrap(self.learning_rate / (1.0 + self.decay_rate * p))


class CosineDecayLR(LearningRateSchedule):
    """``min_lr + (max_lr - min_lr) * (1 + cos(pi * p)) / 2``,
    ``p = min(global_step, decay_steps) / decay_steps``.

    Raises:
        TypeError: If ``min_lr``/``max_lr`` are not floats or ``decay_steps`` not int.
        ValueError: If ``min_lr < 0``, ``max_lr <= min_lr`` or ``decay_steps < 1``.
    """

    def __init__(self, min_lr: float, max_lr: float, decay_steps: int) -> None:
        super().__init__()
        cls = "CosineDecayLR"
        self.min_lr = check_float(min_lr, "min_lr", cls, 0.0)
        self.max_lr = check_float(max_lr, "max_lr", cls, 0.0, None, "(]")
        if max_lr <= min_lr:
            raise ValueError(
                f"For '{cls}', the 'max_lr' should be > 'min_lr' ({min_lr}), but got "
                f"{max_lr}."
            )
        self.decay_steps = check_int(decay_steps, "decay_steps", cls)

    def construct(self, global_step: Any) -> Tensor:
        p = torch.clamp(_step_as_float(global_step), max=float(self.decay_steps))
        p = p / self.decay_steps
        decayed = 0.5 * (1.0 + torch.cos(math.pi * p))
        return Tensor._wrap(self.min_lr + (self.max_lr - self.min_lr) * decayed)


class PolynomialDecayLR(LearningRateSchedule):
    """``(learning_rate - end) * (1 - p) ** power + end``.

    ``p = min(global_step, decay_steps) / decay_steps``; with ``update_decay_steps``
    the step is not clamped and the horizon grows:
    ``decay_steps * max(ceil(global_step / decay_steps), 1)``.

    Raises:
        TypeError: If an argument has the wrong type.
        ValueError: If ``learning_rate`` or ``power`` <= 0, ``end_learning_rate`` < 0
            or ``decay_steps`` < 1.
    """

    def __init__(
        self,
        learning_rate: float,
        end_learning_rate: float,
        decay_steps: int,
        power: float,
        update_decay_steps: bool = False,
    ) -> None:
        super().__init__()
        cls = "PolynomialDecayLR"
        self.learning_rate = check_float(
            learning_rate, "learning_rate", cls, 0.0, None, "(]"
        )
        self.end_learning_rate = check_float(
            end_learning_rate, "end_learning_rate", cls, 0.0
        )
        self.decay_steps = check_int(decay_steps, "decay_steps", cls)
        self.power = check_float(power, "power", cls, 0.0, None, "(]")
        self.update_decay_steps = check_bool(
            update_decay_steps, "update_decay_steps", cls
        )

    def construct(self, global_step: Any) -> Tensor:
        step = _step_as_float(global_step)
        if self.update_decay_steps:
            horizon = self.decay_steps * torch.clamp(
                torch.ceil(step / self.decay_steps), min=1.0
            )
        else:
            step = torch.clamp(step, max=float(self.decay_steps))
            horizon = torch.tensor(float(self.decay_steps))
        p = step / horizon
        span = self.learning_rate - self.end_learning_rate
        return Tensor._wrap(
            span * torch.pow(1.0 - p, self.power) + self.end_learning_rate
        )


class WarmUpLR(LearningRateSchedule):
    """``learning_rate * min(global_step, warmup_steps) / warmup_steps``.

    Raises:
        TypeError: If ``learning_rate`` is not a float or ``warmup_steps`` not an int.
        ValueError: If ``learning_rate`` <= 0 or ``warmup_steps`` < 1.
    """

    def __init__(self, learning_rate: float, warmup_steps: int) -> None:
        super().__init__()
        cls = "WarmUpLR"
        self.learning_rate = check_float(
            learning_rate, "learning_rate", cls, 0.0, None, "(]"
        )
        self.warmup_steps = check_int(warmup_steps, "warmup_steps", cls)

    def construct(self, global_step: Any) -> Tensor:
        step = torch.clamp(_step_as_float(global_step), max=float(self.warmup_steps))
        return Tensor._wrap(self.learning_rate * step / self.warmup_steps)


# ---- list builders (MindSpore's nn.dynamic_lr) -------------------------------------


def exponential_decay_lr(
    learning_rate: float,
    decay_rate: float,
    total_step: int,
    step_per_epoch: int,
    decay_epoch: int,
    is_stair: bool = False,
) -> list[float]:
    """One rate per step: ``learning_rate * decay_rate ** (epoch / decay_epoch)``.

    ``epoch = step // step_per_epoch``; ``is_stair`` floors the exponent.

    Raises:
        TypeError: If an argument has the wrong type.
        ValueError: If a rate is <= 0 or a count < 1.

    Examples:
        >>> exponential_decay_lr(0.1, 0.5, 6, step_per_epoch=2, decay_epoch=1)
        [0.1, 0.1, 0.05, 0.05, 0.025, 0.025]
    """
    cls = "exponential_decay_lr"
    check_float(learning_rate, "learning_rate", cls, 0.0, None, "(]")
    check_float(decay_rate, "decay_rate", cls, 0.0, None, "(]")
    check_int(total_step, "total_step", cls)
    check_int(step_per_epoch, "step_per_epoch", cls)
    check_int(decay_epoch, "decay_epoch", cls)
    check_bool(is_stair, "is_stair", cls)
    out = []
    for step in range(total_step):
        exponent = (step // step_per_epoch) / decay_epoch
        if is_stair:
            exponent = math.floor(exponent)
        out.append(learning_rate * decay_rate**exponent)
    return out


def piecewise_constant_lr(milestone: Any, learning_rates: Any) -> list[float]:
    """``learning_rates[i]`` for the steps from ``milestone[i-1]`` to ``milestone[i]``.

    Raises:
        TypeError: If ``milestone`` is not a list/tuple of ints or ``learning_rates``
            not a list/tuple of floats.
        ValueError: If the lengths differ or ``milestone`` is not strictly
            increasing positive ints.

    Examples:
        >>> piecewise_constant_lr([2, 5], [0.1, 0.05])
        [0.1, 0.1, 0.05, 0.05, 0.05]
    """
    cls = "piecewise_constant_lr"
    for arg, value in (("milestone", milestone), ("learning_rates", learning_rates)):
        if not isinstance(value, (list, tuple)):
            raise TypeError(
                f"For '{cls}', the '{arg}' should be list or tuple, but got "
                f"{type(value).__name__}."
            )
    if len(milestone) != len(learning_rates):
        raise ValueError(
            f"For '{cls}', the 'milestone' and 'learning_rates' should have the same "
            f"length, but got {len(milestone)} and {len(learning_rates)}."
        )
    out: list[float] = []
    last = 0
    for index, (end, lr) in enumerate(zip(milestone, learning_rates, strict=True)):
        check_int(end, f"milestone[{index}]", cls)
        check_float(lr, f"learning_rates[{index}]", cls)
        if end <= last:
            raise ValueError(
                f"For '{cls}', the 'milestone' should be strictly increasing, but "
                f"milestone[{index}] = {end} follows {last}."
            )
        out.extend([lr] * (end - last))
        last = end
    return out
