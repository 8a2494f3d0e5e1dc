"""Activation cells: ``ReLU``, ``GELU``, ``Sigmoid``, ``Tanh``, ``Softmax``."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from spore.common.tensor import Tensor
from spore.nn import _validate
from spore.nn.cell import Cell

__all__ = ["GELU", "ReLU", "Sigmoid", "Softmax", "Tanh", "get_activation"]


class _Activation(Cell):
    """An element-wise activation over a torch kernel."""

    def _apply(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def construct(self, x: Any) -> Tensor:
        return _validate.wrap(self._apply(_validate.to_torch(x, "x", self.cls_name)))


class ReLU(_Activation):
    """``max(x, 0)`` element-wise.

    Examples:
        >>> import numpy as np
        >>> from spore import Tensor, nn
        >>> nn.ReLU()(Tensor(np.array([-1.0, 2.0], np.float32))).asnumpy().tolist()
        [0.0, 2.0]
    """

    def _apply(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x)


class GELU(_Activation):
    """Gaussian error linear unit.

    Args:
        approximate: Use the tanh approximation (MindSpore 2.10's default).
            Default: ``True``.

    Raises:
        TypeError: If ``approximate`` is not a bool.
    """

    def __init__(self, approximate: bool = True) -> None:
        super().__init__()
        self.approximate = _validate.check_bool(approximate, "approximate", "GELU")

    def _apply(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(x, approximate="tanh" if self.approximate else "none")


class Sigmoid(_Activation):
    """``1 / (1 + exp(-x))`` element-wise."""

    def _apply(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(x)


class Tanh(_Activation):
    """Hyperbolic tangent element-wise."""

    def _apply(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x)


class Softmax(_Activation):
    """Softmax along ``axis``.

    Args:
        axis: The axis to normalise. Default: ``-1``.

    Raises:
        TypeError: If ``axis`` is not an int (or a tuple of one int).
    """

    def __init__(self, axis: int | tuple[int] = -1) -> None:
        super().__init__()
        if isinstance(axis, tuple) and len(axis) == 1:
            axis = axis[0]
        if not _validate.is_int(axis):
            raise TypeError(
                f"For 'Softmax', the 'axis' should be int, but got {axis!r}."
            )
        self.axis = axis

    def _apply(self, x: torch.Tensor) -> torch.Tensor:
        return F.softmax(x, dim=self.axis)


_ACTIVATIONS: dict[str, type[Cell]] = {
    "relu": ReLU,
    "gelu": GELU,
    "sigmoid": Sigmoid,
    "tanh": Tanh,
    "softmax": Softmax,
}


def get_activation(name: str | None) -> Cell | None:
    """The activation Cell for ``name`` (lower case), or None for None.

    Raises:
        TypeError: If ``name`` is not a str or None.
        KeyError: If ``name`` is not a known activation.
    """
    if name is None:
        return None
    if not isinstance(name, str):
        raise TypeError(
            "For 'get_activation', the 'name' should be str or None, but got "
            f"{type(name).__name__}."
        )
    cls = _ACTIVATIONS.get(name)
    if cls is None:
        raise KeyError(
            f"For 'get_activation', the activation {name!r} is not supported; "
            f"expected one of {sorted(_ACTIVATIONS)}."
        )
    return cls()
