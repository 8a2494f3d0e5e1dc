"""Argument checks and tensor plumbing shared by the layers and losses.

Exception classes follow MindSpore 2.10's validator: a wrong type is a TypeError,
a value out of range a ValueError. Messages name the argument, what was expected
and what was got.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from spore.common import dtype as mstype
from spore.common.initializer import Initializer, initializer
from spore.common.parameter import Parameter
from spore.common.tensor import Tensor


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_positive_int(value: Any, arg: str, cls: str) -> int:
    """Raises: TypeError if not an int (bools refused), ValueError if <= 0."""
    if not is_int(value):
        raise TypeError(
            f"For '{cls}', the '{arg}' should be int, but got {type(value).__name__}."
        )
    if value <= 0:
        raise ValueError(f"For '{cls}', the '{arg}' should be > 0, but got {value}.")
    return value


def check_non_negative_int(value: Any, arg: str, cls: str) -> int:
    """Raises: TypeError if not an int, ValueError if < 0."""
    if not is_int(value):
        raise TypeError(
            f"For '{cls}', the '{arg}' should be int, but got {type(value).__name__}."
        )
    if value < 0:
        raise ValueError(f"For '{cls}', the '{arg}' should be >= 0, but got {value}.")
    return value


def check_bool(value: Any, arg: str, cls: str) -> bool:
    """Raises: TypeError if ``value`` is not a bool."""
    if not isinstance(value, bool):
        raise TypeError(
            f"For '{cls}', the '{arg}' should be bool, but got {type(value).__name__}."
        )
    return value


def check_float_in(
    value: Any, arg: str, cls: str, low: float, high: float, closed: str = "[]"
) -> float:
    """A float (ints accepted) in the interval ``low..high`` (``closed`` as "[)" etc.).

    Raises:
        TypeError: If ``value`` is not a number.
        ValueError: If it is outside the interval.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(
            f"For '{cls}', the '{arg}' should be float, but got {type(value).__name__}."
        )
    above = value >= low if closed[0] == "[" else value > low
    below = value <= high if closed[1] == "]" else value < high
    if not (above and below):
        raise ValueError(
            f"For '{cls}', the '{arg}' should be in range {closed[0]}{low}, {high}"
            f"{closed[1]}, but got {value}."
        )
    return float(value)


def check_int_pair(value: Any, arg: str, cls: str, minimum: int = 1) -> tuple[int, int]:
    """An int or a tuple of two ints, each >= ``minimum``, as a pair.

    Raises:
        TypeError: If it is neither an int nor a tuple of two ints.
        ValueError: If an item is below ``minimum``.
    """
    pair = (value, value) if is_int(value) else value
    if not (isinstance(pair, tuple) and len(pair) == 2 and all(map(is_int, pair))):
        raise TypeError(
            f"For '{cls}', the '{arg}' should be an int or a tuple of two ints, but "
            f"got {value!r}."
        )
    if min(pair) < minimum:
        raise ValueError(
            f"For '{cls}', every item of '{arg}' should be >= {minimum}, but got "
            f"{value!r}."
        )
    return pair


def check_choice(value: Any, arg: str, cls: str, choices: tuple[str, ...]) -> str:
    """Raises: ValueError if not one of ``choices`` (TypeError if not a str)."""
    if not isinstance(value, str):
        raise TypeError(
            f"For '{cls}', the '{arg}' should be str, but got {type(value).__name__}."
        )
    if value not in choices:
        raise ValueError(
            f"For '{cls}', the '{arg}' should be one of {list(choices)}, but got "
            f"{value!r}."
        )
    return value


def check_number_type(dtype: Any, arg: str, cls: str) -> mstype.Type:
    """Raises: TypeError if ``dtype`` is not a spore number type."""
    if not isinstance(dtype, mstype.Type) or dtype not in mstype.number_type:
        raise TypeError(
            f"For '{cls}', the '{arg}' should be a spore number type such as "
            f"spore.float32, but got {dtype!r}."
        )
    return dtype


def make_parameter(
    init: Any,
    shape: tuple[int, ...],
    dtype: mstype.Type,
    name: str,
    cls: str,
    arg: str,
    requires_grad: bool = True,
) -> Parameter:
    """A Parameter of ``shape`` from ``init`` (lazy inside ``lazy_init()``).

    Raises:
        ValueError: If ``init`` is a Tensor of another shape, or an unknown alias.
        TypeError: If ``init`` has an unsupported type.
    """
    if isinstance(init, Tensor):
        if tuple(init.shape) != tuple(shape):
            raise ValueError(
                f"For '{cls}', the shape of '{arg}' should be {tuple(shape)}, but got "
                f"{tuple(init.shape)}."
            )
    elif not isinstance(init, (str, Initializer, int, float)) or isinstance(init, bool):
        raise TypeError(
            f"For '{cls}', the '{arg}' should be a Tensor, str, Initializer or number, "
            f"but got {type(init).__name__}."
        )
    return Parameter(
        initializer(init, shape, dtype), name=name, requires_grad=requires_grad
    )


def to_torch(value: Any, arg: str, cls: str) -> torch.Tensor:
    """The torch tensor behind ``value`` (a spore Tensor, numpy array or torch tensor).

    Raises:
        TypeError: For any other type.
    """
    if isinstance(value, Tensor):
        return value.to_torch()
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value)
    raise TypeError(
        f"For '{cls}', the '{arg}' should be a Tensor, numpy array or torch.Tensor, "
        f"but got {type(value).__name__}."
    )


def wrap(result: torch.Tensor) -> Tensor:
    """A spore Tensor around a torch result, so autograd flows through it."""
    return Tensor.from_torch(result)
