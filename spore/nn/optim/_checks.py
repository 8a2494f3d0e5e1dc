"""Argument checks of the optimizers and learning-rate helpers.

MindSpore's validator classes: a wrong type is a TypeError, a value out of range
a ValueError. Hyperparameters that MindSpore declares ``float`` refuse ints (2.10
rejects ``momentum=1`` [E]); learning rates and weight decays accept ints.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def float32(value: float) -> float:
    """``value`` rounded to float32 (as MindSpore stores every hyperparameter)."""
    return float(np.float32(value))


def check_float(
    value: Any,
    arg: str,
    cls: str,
    low: float | None = None,
    high: float | None = None,
    closed: str = "[]",
) -> float:
    """A Python float, optionally inside ``low..high`` (``closed`` says which ends).

    Raises:
        TypeError: If ``value`` is not a float (ints are refused).
        ValueError: If it is outside the range.
    """
    if not isinstance(value, float):
        raise TypeError(
            f"For '{cls}', the '{arg}' should be float, but got {type(value).__name__}."
        )
    if low is not None:
        ok = value >= low if closed[0] == "[" else value > low
        if not ok:
            bound = ">=" if closed[0] == "[" else ">"
            raise ValueError(
                f"For '{cls}', the '{arg}' should be {bound} {low}, but got {value}."
            )
    if high is not None:
        ok = value <= high if closed[1] == "]" else value < high
        if not ok:
            bound = "<=" if closed[1] == "]" else "<"
            raise ValueError(
                f"For '{cls}', the '{arg}' should be {bound} {high}, but got {value}."
            )
    return value


def check_number(value: Any, arg: str, cls: str, low: float, strict: bool) -> float:
    """An int or float ``>= low`` (``> low`` when ``strict``), as a float.

    Raises:
        TypeError: If ``value`` is not an int or float (bools refused).
        ValueError: If it is out of range.
    """
    if not is_number(value):
        raise TypeError(
            f"For '{cls}', the '{arg}' should be int or float, but got "
            f"{type(value).__name__}."
        )
    if value < low or (strict and value == low):
        bound = ">" if strict else ">="
        raise ValueError(
            f"For '{cls}', the '{arg}' should be {bound} {low}, but got {value}."
        )
    return float(value)


def check_int(value: Any, arg: str, cls: str, low: int = 1) -> int:
    """Raises: TypeError if not an int (bools refused), ValueError if below ``low``."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(
            f"For '{cls}', the '{arg}' should be int, but got {type(value).__name__}."
        )
    if value < low:
        raise ValueError(
            f"For '{cls}', the '{arg}' should be >= {low}, but got {value}."
        )
    return value


def check_bool(value: Any, arg: str, cls: str) -> bool:
    """Raises: TypeError if ``value`` is not a bool."""
    if not isinstance(value, bool):
        raise TypeError(
            f"For '{cls}', the '{arg}' should be bool, but got {type(value).__name__}."
        )
    return value
