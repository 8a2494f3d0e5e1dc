"""The Initializer base class, the alias registry, fans and gains.

The concrete initializers and ``initializer()`` live in ``initializer.py``; this
module holds what they share (see Note [counter-based init] in ``_random.py`` for
the ``_fill`` contract).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
import torch

from spore.common.seed import get_seed, next_init_key

Shape = tuple[int, ...]
Key = tuple[int, int]
_T = TypeVar("_T", bound="type[Initializer]")

# Alias (lower case) -> Initializer class; `initializer("name")` looks names up here.
_INITIALIZER_ALIAS: dict[str, type[Initializer]] = {}


def _register(*aliases: str) -> Callable[[_T], _T]:
    """Class decorator: register the lower-cased class name and ``aliases``."""

    def register(cls: _T) -> _T:
        for name in (cls.__name__.lower(), *aliases):
            _INITIALIZER_ALIAS.setdefault(name, cls)
        return cls

    return register


class Initializer:
    """The base class of initializers.

    Subclasses either implement ``_fill`` (all built-ins: any block of the full
    tensor, from its key) or, like user initializers written for MindSpore, only
    ``_initialize(arr)``, which fills a whole array in place.

    Args:
        kwargs: The arguments of the subclass, kept in ``_kwargs``.
    """

    # True when every element has the same value, so any shape may be produced.
    position_independent: bool = False

    def __init__(self, **kwargs: Any) -> None:
        self._kwargs = kwargs
        self._seed: int | None = None

    @property
    def seed(self) -> tuple[int, int]:
        """``(seed, seed2)``: the global seed, or ``(_seed + 1, 0)`` once set."""
        if self._seed is None:
            return (get_seed() or 0), 0
        return self._seed + 1, 0

    @seed.setter
    def seed(self, value: int) -> None:
        self._seed = value

    def __call__(self, arr: np.ndarray) -> None:
        """Fill the numpy array ``arr`` in place, as a whole tensor with a fresh key."""
        self._initialize(arr)

    def _initialize(self, arr: np.ndarray) -> None:
        raise NotImplementedError(
            f"For '{type(self).__name__}', '_initialize' must be overridden by the "
            "subclass (or '_fill' implemented)."
        )

    def _fill(
        self, out: np.ndarray, full_shape: Shape, offsets: Shape, key: Key
    ) -> None:
        """Write the block at ``offsets`` of the full tensor into ``out``.

        The fallback for subclasses that only define ``_initialize``: fill the whole
        tensor, keep the block.
        """
        full = np.zeros(full_shape, out.dtype)
        self._initialize(full)
        out[...] = full[
            tuple(slice(o, o + n) for o, n in zip(offsets, out.shape, strict=True))
        ]


class _Builtin(Initializer):
    """Built-ins: ``__call__`` fills the whole array through ``_fill``."""

    def _initialize(self, arr: np.ndarray) -> None:
        if arr.flags.c_contiguous:
            self._fill(arr, arr.shape, (0,) * arr.ndim, next_init_key())
        else:
            tmp = np.empty(arr.shape, arr.dtype)
            self._fill(tmp, arr.shape, (0,) * arr.ndim, next_init_key())
            arr[...] = tmp


_TORCH_FILL_MIN = 1 << 16  # elements; below, numpy's lower call overhead wins


def fill_constant(out: np.ndarray, value: Any) -> None:
    """``out.fill(value)`` at memory bandwidth; out-of-range ints wrap like casts."""
    if (
        out.size >= _TORCH_FILL_MIN
        and out.dtype.kind == "f"
        and isinstance(value, (int, float))
        and abs(value) < 2.0**53  # exact as a double: both libraries round it alike
    ):
        # torch's fill writes large buffers ~15% faster than ndarray.fill here.
        torch.from_numpy(out).fill_(value)
        return
    try:
        out.fill(value)
    except OverflowError:  # numpy 2 refuses e.g. -1 into uint8; MindSpore wraps
        out.fill(np.array(value).astype(out.dtype))


# ---- fans and gains --------------------------------------------------------------


def _calculate_fan_in_and_fan_out(
    shape: Shape, name: str = "Initializer"
) -> tuple[int, int]:
    """``(fan_in, fan_out)``: dims 1 and 0 of a weight times its receptive field."""
    if len(shape) < 2:
        raise ValueError(
            f"For '{name}', 'fan_in' and 'fan_out' need a tensor of at least 2 "
            f"dimensions, but got {len(shape)}."
        )
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def _calculate_correct_fan(shape: Shape, mode: str, name: str) -> int:
    if not isinstance(mode, str) or mode.lower() not in ("fan_in", "fan_out"):
        raise ValueError(
            f"For '{name}', the 'mode' should be one of ['fan_in', 'fan_out'], "
            f"but got {mode!r}."
        )
    fan_in, fan_out = _calculate_fan_in_and_fan_out(shape, name)
    return fan_in if mode.lower() == "fan_in" else fan_out


_LINEAR = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d",
           "conv_transpose2d", "conv_transpose3d", "sigmoid")  # fmt: skip
# Gain of each nonlinearity; leaky_relu's depends on its negative slope.
_GAINS = dict.fromkeys(_LINEAR, 1.0) | {
    "tanh": 5.0 / 3,
    "relu": math.sqrt(2.0),
    "leaky_relu": None,
}


def _calculate_gain(nonlinearity: str, param: Any, name: str) -> float:
    """The gain of a nonlinearity (1 for linear ones, 5/3 tanh, sqrt 2 relu, leaky)."""
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif isinstance(param, (int, float)) and not isinstance(param, bool):
            slope = param
        else:
            # MindSpore parity: 2.10 raises ValueError here, not TypeError.
            raise ValueError(
                f"For '{name}', the 'negative_slope' should be int or float when "
                f"'nonlinearity' is 'leaky_relu', but got {type(param).__name__}."
            )
        return math.sqrt(2.0 / (1 + slope**2))
    gain = _GAINS.get(nonlinearity) if isinstance(nonlinearity, str) else None
    if gain is None:
        raise ValueError(
            f"For '{name}', the 'nonlinearity' should be one of {list(_GAINS)}, "
            f"but got {nonlinearity!r}."
        )
    return gain


def _check_sigma(sigma: float, name: str) -> None:
    if not sigma >= 0:  # also rejects NaN
        raise ValueError(f"For '{name}', the 'sigma' should be >= 0, but got {sigma}.")
