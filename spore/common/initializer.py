"""Initializers: ``mindspore.common.initializer`` on counter-based randomness.

An `Initializer` describes values; `initializer()` attaches one to a lazy `Tensor`
that holds only shape, dtype and a random key. ``Tensor.init_data`` then calls
``init._fill(out, full_shape, offsets, key)``, which writes the block of the full
tensor at ``offsets`` into ``out``. Random values are a pure function of (key, flat
index), so any block equals the same block of the whole, bit for bit, and fan-based
scales always come from the full shape (see Note [counter-based init] in
``_random.py``).
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from spore.common import _random
from spore.common import dtype as mstype
from spore.common._initializer_base import (
    _INITIALIZER_ALIAS,
    Initializer,
    Key,
    Shape,
    _Builtin,
    _calculate_correct_fan,
    _calculate_fan_in_and_fan_out,
    _calculate_gain,
    _check_sigma,
    _register,
    fill_constant,
)
from spore.common._initializer_structured import Dirac, Identity, Orthogonal, Sparse
from spore.common.tensor import Tensor

__all__ = [  # the public names; _INITIALIZER_ALIAS is MindSpore's private table
    "Constant", "Dirac", "HeNormal", "HeUniform", "Identity", "Initializer", "Normal",
    "One", "Orthogonal", "Sparse", "TruncatedNormal", "Uniform", "VarianceScaling",
    "XavierNormal", "XavierUniform", "Zero", "initializer",
]  # fmt: skip

# ---- constants -------------------------------------------------------------------


@_register("zeros", "zero")
class Zero(_Builtin):
    """Fill with 0.

    Examples:
        >>> from spore.common.initializer import initializer, Zero
        >>> initializer(Zero(), [1, 2]).init_data().asnumpy().tolist()
        [[0.0, 0.0]]
    """

    position_independent = True

    def _fill(
        self, out: np.ndarray, full_shape: Shape, offsets: Shape, key: Key
    ) -> None:
        fill_constant(out, 0)


@_register("ones", "one")
class One(_Builtin):
    """Fill with 1.

    Examples:
        >>> from spore.common.initializer import initializer
        >>> initializer("ones", [2]).init_data().asnumpy().tolist()
        [1.0, 1.0]
    """

    position_independent = True

    def _fill(
        self, out: np.ndarray, full_shape: Shape, offsets: Shape, key: Key
    ) -> None:
        fill_constant(out, 1)


class Constant(_Builtin):
    """Fill with ``value``, converted to the tensor's dtype like numpy's ``fill``.

    Args:
        value: A number (``initializer(3, shape)`` makes ``Constant(3)``).

    Raises:
        ValueError: When the data is produced, if ``value`` is an array of several
            elements.

    Examples:
        >>> from spore.common.initializer import initializer, Constant
        >>> initializer(Constant(2.5), [2]).init_data().asnumpy().tolist()
        [2.5, 2.5]
    """

    position_independent = True

    def __init__(self, value: Any) -> None:
        super().__init__(value=value)
        self.value = value

    def _fill(
        self, out: np.ndarray, full_shape: Shape, offsets: Shape, key: Key
    ) -> None:
        if np.ndim(self.value) and np.size(self.value) != 1:
            # MindSpore parity: 2.10 fails on arrays (r1.3 broadcast them).
            raise ValueError(
                f"For 'Constant', the 'value' should be a number, but got an array of "
                f"shape {np.shape(self.value)}."
            )
        fill_constant(out, self.value)


# ---- random distributions --------------------------------------------------------


@_register("normal")
class Normal(_Builtin):
    """Sample from the normal distribution N(mean, sigma**2).

    Args:
        sigma: Standard deviation. Default: 0.01.
        mean: Mean. Default: 0.0.

    Raises:
        ValueError: When the data is produced, if ``sigma`` is negative.

    Examples:
        >>> from spore.common.initializer import Normal
        >>> Normal().sigma, Normal(0.5, 1.0).mean
        (0.01, 1.0)
    """

    def __init__(self, sigma: float = 0.01, mean: float = 0.0) -> None:
        super().__init__(sigma=sigma, mean=mean)
        self.sigma = sigma
        self.mean = mean

    def _fill(
        self, out: np.ndarray, full_shape: Shape, offsets: Shape, key: Key
    ) -> None:
        _check_sigma(self.sigma, "Normal")
        _random.fill_normal(
            out, full_shape, offsets, key, float(self.mean), float(self.sigma)
        )


@_register("uniform")
class Uniform(_Builtin):
    """Sample from the uniform distribution U(-scale, scale).

    Args:
        scale: The bound. Default: 0.07.

    Examples:
        >>> from spore.common.initializer import initializer, Uniform
        >>> x = initializer(Uniform(2.0), [100]).init_data().asnumpy()
        >>> bool(abs(x).max() < 2.0)
        True
    """

    def __init__(self, scale: float = 0.07) -> None:
        super().__init__(scale=scale)
        self.scale = scale

    def _fill(
        self, out: np.ndarray, full_shape: Shape, offsets: Shape, key: Key
    ) -> None:
        _random.fill_uniform(out, full_shape, offsets, key, float(self.scale))


@_register("truncatednormal")
class TruncatedNormal(_Builtin):
    """Sample from N(mean, sigma**2) restricted to the absolute interval [a, b].

    Args:
        sigma: Standard deviation. Default: 0.01.
        mean: Mean. Default: 0.0.
        a: Lower bound. Default: -2.0.
        b: Upper bound. Default: 2.0.

    Raises:
        ValueError: When the data is produced, if ``sigma < 0`` or ``a > b``, or if
            ``sigma == 0`` and ``mean`` lies outside [a, b].

    Examples:
        >>> from spore.common.initializer import initializer, TruncatedNormal
        >>> x = initializer(TruncatedNormal(1.0, a=-1.0, b=1.0), [1000]).init_data()
        >>> bool(abs(x.asnumpy()).max() <= 1.0)
        True
    """

    def __init__(
        self, sigma: float = 0.01, mean: float = 0.0, a: float = -2.0, b: float = 2.0
    ) -> None:
        super().__init__(sigma=sigma, mean=mean, a=a, b=b)
        self.sigma = sigma
        self.mean = mean
        self.a = a
        self.b = b

    def _fill(
        self, out: np.ndarray, full_shape: Shape, offsets: Shape, key: Key
    ) -> None:
        sigma, mean, a, b = (float(v) for v in (self.sigma, self.mean, self.a, self.b))
        _check_sigma(sigma, "TruncatedNormal")
        if not a <= b:
            raise ValueError(
                f"For 'TruncatedNormal', 'a' should be <= 'b', but got a={a} and b={b}."
            )
        if sigma == 0.0:
            if not a <= mean <= b:
                raise ValueError(
                    f"For 'TruncatedNormal', with 'sigma' 0 the 'mean' {mean} should "
                    f"lie in [a, b] = [{a}, {b}]."
                )
            fill_constant(out, mean)
            return
        _random.fill_truncated_normal(out, full_shape, offsets, key, mean, sigma, a, b)


@_register("xavier_uniform", "xavieruniform")
class XavierUniform(_Builtin):
    """Glorot uniform: U(-bound, bound), bound = gain * sqrt(6 / (fan_in + fan_out)).

    Args:
        gain: Scaling factor. Default: 1.

    Raises:
        ValueError: When the data is produced, if the tensor has fewer than 2 dims.

    Examples:
        >>> from spore.common.initializer import XavierUniform
        >>> XavierUniform(gain=2).gain
        2
    """

    def __init__(self, gain: float = 1) -> None:
        super().__init__(gain=gain)
        self.gain = gain

    def _fill(
        self, out: np.ndarray, full_shape: Shape, offsets: Shape, key: Key
    ) -> None:
        fan_in, fan_out = _calculate_fan_in_and_fan_out(full_shape, "XavierUniform")
        bound = self.gain * math.sqrt(6.0 / (fan_in + fan_out))
        _random.fill_uniform(out, full_shape, offsets, key, bound)


@_register("xavier_normal", "xaviernormal")
class XavierNormal(_Builtin):
    """Glorot normal: N(0, std**2), std = gain * sqrt(2 / (fan_in + fan_out)).

    Args:
        gain: Scaling factor. Default: 1.

    Raises:
        ValueError: When the data is produced, if the tensor has fewer than 2 dims.

    Examples:
        >>> from spore.common.initializer import XavierNormal
        >>> XavierNormal().gain
        1
    """

    def __init__(self, gain: float = 1) -> None:
        super().__init__(gain=gain)
        self.gain = gain

    def _fill(
        self, out: np.ndarray, full_shape: Shape, offsets: Shape, key: Key
    ) -> None:
        fan_in, fan_out = _calculate_fan_in_and_fan_out(full_shape, "XavierNormal")
        std = self.gain * math.sqrt(2.0 / (fan_in + fan_out))
        _random.fill_normal(out, full_shape, offsets, key, 0.0, std)


class _He(_Builtin):
    """Shared arguments of HeUniform and HeNormal."""

    def __init__(
        self,
        negative_slope: float = 0,
        mode: str = "fan_in",
        nonlinearity: str = "leaky_relu",
    ) -> None:
        super().__init__(
            negative_slope=negative_slope, mode=mode, nonlinearity=nonlinearity
        )
        self.negative_slope = negative_slope
        self.mode = mode
        self.nonlinearity = nonlinearity

    def _std(self, full_shape: Shape) -> float:
        name = type(self).__name__
        fan = _calculate_correct_fan(full_shape, self.mode, name)
        return _calculate_gain(
            self.nonlinearity, self.negative_slope, name
        ) / math.sqrt(fan)


@_register("he_uniform", "heuniform")
class HeUniform(_He):
    """Kaiming uniform: U(-bound, bound), bound = sqrt(3) * gain / sqrt(fan).

    Args:
        negative_slope: Slope of the leaky ReLU after the layer. Default: 0.
        mode: ``'fan_in'`` or ``'fan_out'`` (any case). Default: ``'fan_in'``.
        nonlinearity: ``'leaky_relu'``, ``'relu'``, ``'tanh'``, ``'linear'``, ...
            Default: ``'leaky_relu'``.

    Raises:
        ValueError: When the data is produced, for fewer than 2 dims, a bad ``mode``,
            ``nonlinearity`` or ``negative_slope``.

    Examples:
        >>> from spore.common.initializer import HeUniform
        >>> HeUniform().mode
        'fan_in'
    """

    def _fill(
        self, out: np.ndarray, full_shape: Shape, offsets: Shape, key: Key
    ) -> None:
        bound = math.sqrt(3.0) * self._std(full_shape)
        _random.fill_uniform(out, full_shape, offsets, key, bound)


@_register("he_normal", "henormal")
class HeNormal(_He):
    """Kaiming normal: N(0, std**2), std = gain / sqrt(fan).

    Args:
        negative_slope: Slope of the leaky ReLU after the layer. Default: 0.
        mode: ``'fan_in'`` or ``'fan_out'`` (any case). Default: ``'fan_in'``.
        nonlinearity: ``'leaky_relu'``, ``'relu'``, ``'tanh'``, ``'linear'``, ...
            Default: ``'leaky_relu'``.

    Raises:
        ValueError: When the data is produced, for fewer than 2 dims, a bad ``mode``,
            ``nonlinearity`` or ``negative_slope``.

    Examples:
        >>> from spore.common.initializer import HeNormal
        >>> HeNormal(mode="fan_out").mode
        'fan_out'
    """

    def _fill(
        self, out: np.ndarray, full_shape: Shape, offsets: Shape, key: Key
    ) -> None:
        _random.fill_normal(out, full_shape, offsets, key, 0.0, self._std(full_shape))


_VS_MODES = ("fan_in", "fan_out", "fan_avg")
_VS_DISTRIBUTIONS = ("uniform", "truncated_normal", "untruncated_normal")
# Standard deviation of N(0, 1) truncated to [-2, 2]: dividing by it restores std.
_TRUNCATED_STD = 0.87962566103423978


@_register()
class VarianceScaling(_Builtin):
    """Scale to the fans: std = sqrt(scale / n), n the fan_in, fan_out or their mean.

    ``'truncated_normal'`` samples N(0, s**2) truncated to [-2 s, 2 s] with
    s = sqrt(scale / n) / 0.8796..., ``'untruncated_normal'`` N(0, scale / n),
    ``'uniform'`` U(-sqrt(3 scale / n), sqrt(3 scale / n)).

    Args:
        scale: Positive scaling factor. Default: 1.0.
        mode: ``'fan_in'``, ``'fan_out'`` or ``'fan_avg'``. Default: ``'fan_in'``.
        distribution: ``'uniform'``, ``'truncated_normal'`` or
            ``'untruncated_normal'``. Default: ``'truncated_normal'``.

    Raises:
        ValueError: At construction, for a ``scale`` <= 0, or an unknown ``mode`` or
            ``distribution``.

    Examples:
        >>> from spore.common.initializer import VarianceScaling
        >>> VarianceScaling().distribution
        'truncated_normal'
    """

    def __init__(
        self,
        scale: float = 1.0,
        mode: str = "fan_in",
        distribution: str = "truncated_normal",
    ) -> None:
        super().__init__(scale=scale, mode=mode, distribution=distribution)
        if not scale > 0:
            raise ValueError(
                "For 'VarianceScaling', the 'scale' should be greater than 0, "
                f"but got {scale}."
            )
        if mode not in _VS_MODES:
            raise ValueError(
                "For 'VarianceScaling', the 'mode' should be one of "
                f"{list(_VS_MODES)}, but got {mode!r}."
            )
        if distribution not in _VS_DISTRIBUTIONS:
            raise ValueError(
                f"For 'VarianceScaling', the 'distribution' should be one of "
                f"{list(_VS_DISTRIBUTIONS)}, but got {distribution!r}."
            )
        self.scale = scale
        self.mode = mode
        self.distribution = distribution

    def _fill(
        self, out: np.ndarray, full_shape: Shape, offsets: Shape, key: Key
    ) -> None:
        fan_in, fan_out = _calculate_fan_in_and_fan_out(full_shape, "VarianceScaling")
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2.0}
        variance = self.scale / max(1.0, n[self.mode])
        if self.distribution == "truncated_normal":
            # MindSpore parity: 2.10 tests for 'truncated_norm', which validation
            # forbids, so it draws uniform; both have std sqrt(variance). Spore draws
            # the truncated normal the name promises (TensorFlow's definition).
            std = math.sqrt(variance) / _TRUNCATED_STD
            _random.fill_truncated_normal(
                out, full_shape, offsets, key, 0.0, std, -2 * std, 2 * std
            )
        elif self.distribution == "untruncated_normal":
            _random.fill_normal(out, full_shape, offsets, key, 0.0, math.sqrt(variance))
        else:
            _random.fill_uniform(
                out, full_shape, offsets, key, math.sqrt(3.0 * variance)
            )


# ---- initializer() ---------------------------------------------------------------


def _check_shape(shape: Any) -> Shape | None:
    """``initializer``'s shape rules: list -> tuple, number -> 1-tuple, ints > 0."""
    if type(shape) is tuple or type(shape) is list:
        for value in shape:  # fast path: plain positive ints (the common case)
            if type(value) is not int or value <= 0:
                break
        else:
            return tuple(shape)
    if isinstance(shape, list):
        shape = tuple(shape)
    elif isinstance(shape, numbers.Number):
        shape = (shape,)
    if shape is None:
        return None
    for value in shape:
        # Python ints only: numpy integers and floats are rejected, True counts as 1.
        if not isinstance(value, int) or value <= 0:
            raise ValueError(
                f"For 'initializer', every item of 'shape' should be a positive int, "
                f"but got {value!r} in {shape!r}."
            )
    return tuple(int(v) for v in shape)


def initializer(
    init: Tensor | str | Initializer | complex,
    shape: Any = None,
    dtype: mstype.Type = mstype.float32,
) -> Tensor:
    """Create a Tensor whose data is produced lazily by `init`.

    Args:
        init: An `Initializer`, an alias such as ``"normal"`` (case-insensitive), a
            number (`Constant`), or a `Tensor` (returned as it is).
        shape: Target shape: int, tuple or list of positive ints. Required unless
            `init` is a `Tensor`, whose shape it must then equal.
        dtype: Element type. Default: ``spore.float32``.

    Returns:
        A lazy `Tensor` (``has_init`` True) that `Tensor.init_data()` materialises;
        or `init` itself when it is a `Tensor`.

    Raises:
        TypeError: If `init` has another type, or the alias names a class that needs
            arguments (``"sparse"``), or `dtype` is not a spore number type.
        ValueError: If the alias is unknown, a `shape` item is not a positive int, a
            Tensor's shape differs from `shape`, or `dtype` is None.
        AttributeError: If `shape` is None and `init` is not a Tensor.

    Examples:
        >>> from spore.common.initializer import initializer
        >>> float(initializer("ones", (2, 3)).init_data().asnumpy().sum())
        6.0
    """
    if not isinstance(init, (str, Initializer, Tensor, numbers.Number)):
        raise TypeError(
            f"For 'initializer', the 'init' should be a Tensor, number, str or "
            f"Initializer instance, but got {type(init).__name__}."
        )
    if isinstance(init, Tensor):
        wanted = shape if isinstance(shape, (tuple, list)) else [shape]
        if tuple(init.shape) != tuple(wanted):
            # MindSpore parity: shape=None never matches (it is compared as [None]).
            raise ValueError(
                f"For 'initializer', the shape of the 'init' Tensor {list(init.shape)} "
                f"should equal 'shape', but got {shape!r}."
            )
        return init
    checked = _check_shape(shape)
    if isinstance(init, str):
        cls = _INITIALIZER_ALIAS.get(init.lower())
        if cls is None:
            raise ValueError(
                f"For 'initializer', the alias {init!r} is not registered; "
                f"expected one of {sorted(_INITIALIZER_ALIAS)}."
            )
        init = cls()
    elif isinstance(init, numbers.Number):
        init = Constant(init)
    if checked is None:
        # MindSpore parity: 2.10 reads `init.shape` here, hence AttributeError.
        raise AttributeError(
            f"For 'initializer', 'shape' is required when 'init' is not a Tensor, "
            f"but got None with {type(init).__name__}."
        )
    return Tensor._lazy(checked, dtype, init)
