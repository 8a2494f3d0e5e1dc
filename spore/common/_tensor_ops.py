"""Python operators for ``Tensor``: arithmetic, comparison, indexing, on torch kernels.

Results are plain Tensors (never Parameters) around the torch result, so
autograd sees every operation on Parameters that require gradients.
"""

from __future__ import annotations

import contextlib
import operator
from collections.abc import Callable
from typing import Any

import numpy as np
import torch


def _unwrap(value: Any) -> Any:
    """The torch-level operand for ``value``, or NotImplemented if unsupported."""
    from spore.common.tensor import Tensor

    if isinstance(value, Tensor):
        return value._materialized()
    if isinstance(value, (bool, int, float, complex)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value)
    return NotImplemented


def _unwrap_index(index: Any) -> Any:
    from spore.common.tensor import Tensor

    if isinstance(index, Tensor):
        return index._materialized()
    if isinstance(index, tuple):
        return tuple(_unwrap_index(i) for i in index)
    if isinstance(index, np.ndarray):
        return torch.from_numpy(index)
    return index


def _binary(op: Callable[[Any, Any], Any], reflected: bool = False):
    def method(self, other):
        from spore.common.tensor import Tensor

        rhs = _unwrap(other)
        if rhs is NotImplemented:
            return NotImplemented
        lhs = self._materialized()
        result = op(rhs, lhs) if reflected else op(lhs, rhs)
        return Tensor._wrap(result)

    return method


def _unary(op: Callable[[Any], Any]):
    def method(self):
        from spore.common.tensor import Tensor

        return Tensor._wrap(op(self._materialized()))

    return method


def _comparison(op: Callable[[Any, Any], Any], mismatch: bool):
    def method(self, other):
        from spore.common.tensor import Tensor

        rhs = _unwrap(other)
        if rhs is NotImplemented:  # MindSpore: `t == "a"` is False, not an error
            return mismatch
        return Tensor._wrap(op(self._materialized(), rhs))

    return method


class TensorOperators:
    """Operator methods mixed into ``Tensor``; ``_materialized()`` gives the data."""

    _materialized: Callable[[], torch.Tensor]

    __add__ = _binary(operator.add)
    __radd__ = _binary(operator.add, reflected=True)
    __sub__ = _binary(operator.sub)
    __rsub__ = _binary(operator.sub, reflected=True)
    __mul__ = _binary(operator.mul)
    __rmul__ = _binary(operator.mul, reflected=True)
    __truediv__ = _binary(operator.truediv)
    __rtruediv__ = _binary(operator.truediv, reflected=True)
    __floordiv__ = _binary(operator.floordiv)
    __rfloordiv__ = _binary(operator.floordiv, reflected=True)
    __mod__ = _binary(operator.mod)
    __rmod__ = _binary(operator.mod, reflected=True)
    __pow__ = _binary(operator.pow)
    __rpow__ = _binary(operator.pow, reflected=True)
    __matmul__ = _binary(operator.matmul)
    __rmatmul__ = _binary(operator.matmul, reflected=True)
    __and__ = _binary(operator.and_)
    __rand__ = _binary(operator.and_, reflected=True)
    __or__ = _binary(operator.or_)
    __ror__ = _binary(operator.or_, reflected=True)
    __xor__ = _binary(operator.xor)
    __rxor__ = _binary(operator.xor, reflected=True)

    __neg__ = _unary(operator.neg)
    __pos__ = _unary(operator.pos)
    __abs__ = _unary(operator.abs)
    __invert__ = _unary(operator.invert)

    __lt__ = _comparison(operator.lt, False)
    __le__ = _comparison(operator.le, False)
    __gt__ = _comparison(operator.gt, False)
    __ge__ = _comparison(operator.ge, False)
    __eq__ = _comparison(operator.eq, False)  # type: ignore[assignment]
    __ne__ = _comparison(operator.ne, True)  # type: ignore[assignment]

    def __getitem__(self, index: Any):
        from spore.common.tensor import Tensor

        return Tensor._wrap(self._materialized()[_unwrap_index(index)])

    def __setitem__(self, index: Any, value: Any) -> None:
        rhs = _unwrap(value)
        if rhs is NotImplemented:
            raise TypeError(
                "For 'Tensor.__setitem__', the value should be a Tensor, numpy array "
                f"or number, but got {type(value).__name__}."
            )
        data = self._materialized()
        # Writing into a leaf that requires grad is an update, not a traced op.
        with torch.no_grad() if data.requires_grad else contextlib.nullcontext():
            data[_unwrap_index(index)] = rhs

