"""``repr(Tensor)``: the layout of MindSpore's C++ tensor formatter, in Python.

The rules (all pinned by ``tests/common/test_tensor_format.py``):

* ``Tensor(shape=[d0, d1], dtype=Float32, value=`` then a space for 0-d and 1-D
  data, a newline for >= 2-D data, then the data and ``)``.
* 0-d data is printed like C++ ``ostream << value`` (``%g``: ``2.5``, ``-0``,
  ``1e-07``), ``True``/``False``, or the integer.
* Elements: Float32/Float64 ``%15.8e``, Float16 ``%11.4e``, Bool right-aligned
  to width 5, integers right-aligned to the widest *shown* element.  BFloat16
  is not a "float" to the C++ formatter: its elements are ``%g`` right-aligned
  like integers.  Complex elements are ``<real %g><imag %+g>j`` with no padding.
* Summaries: a non-last axis longer than 6 shows rows ``0..2``, a ``...`` line,
  then the last 3 rows; the last axis likewise shows ``a, b, c ... x, y, z``
  when longer than 6 (>= 2-D) or longer than 1000 (1-D).  This is per axis,
  independent of the total element count.
* A 1-D tensor of more than 3 shown elements breaks its line after every 12th
  element (floats, bools) or 24th (other types) with ``"\\n "``; the
  separator ``", "`` stays before the break, and a break after the last
  element leaves ``"\\n ]"``.
* Empty tensors print no data: ``value= )`` for 1-D, ``value=\\n)`` otherwise.
* A NaN with its sign bit set prints ``-nan`` (glibc), not ``nan``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

_EDGE = 3  # rows/elements kept at each end of a summarised axis
_AXIS_LIMIT = 6  # an axis of a >= 2-D tensor longer than this is summarised
_VECTOR_LIMIT = 1000  # a 1-D tensor longer than this is summarised

# Display kinds: f8 Float32/64, f4 Float16, g BFloat16, b Bool, i ints, c complex.
# printf format and field width of the fixed-width float kinds.
_FLOAT_SPECS = {"f8": ("%15.8e", 15), "f4": ("%11.4e", 11)}
# A 1-D tensor breaks its line after every this many elements.
_LINE_FEED = {"f8": 12, "f4": 12, "b": 12, "i": 24, "g": 24, "c": 24}


def format_tensor_repr(values: np.ndarray, dtype_name: str) -> str:
    """Format tensor data exactly as MindSpore's ``repr(Tensor)`` does.

    Args:
        values: The tensor's data (for BFloat16, its values as float32).
        dtype_name: The MindSpore dtype string, such as ``"Float32"``.

    Returns:
        The full ``Tensor(shape=[...], dtype=..., value=...)`` string.

    Examples:
        >>> import numpy as np
        >>> format_tensor_repr(np.array([1, 255], np.uint8), "UInt8")
        'Tensor(shape=[2], dtype=UInt8, value= [  1, 255])'
    """
    arr = np.asarray(values)
    kind = _display_kind(dtype_name, arr.dtype)
    dims = ", ".join(str(d) for d in arr.shape)
    head = f"Tensor(shape=[{dims}], dtype={dtype_name}, value="
    head += "\n" if arr.ndim > 1 else " "
    if arr.size == 0:
        # The C++ formatter returns an empty string for zero elements.
        return head + ")"
    if arr.ndim == 0:
        return head + _scalar_text(arr.item(), kind) + ")"
    summarised = _summarised_axes(arr.shape)
    # Gather only the shown elements, so huge tensors cost O(shown).
    index = [
        np.r_[0:_EDGE, n - _EDGE : n] if cut else np.arange(n)
        for n, cut in zip(arr.shape, summarised, strict=True)
    ]
    shown = arr[np.ix_(*index)]
    cells = _element_texts(shown.ravel().tolist(), kind)
    grid = np.array(cells, dtype=object).reshape(shown.shape)
    return head + _render(grid, 0, summarised, _LINE_FEED[kind]) + ")"


def _display_kind(dtype_name: str, np_dtype: np.dtype) -> str:
    """Map a dtype to one of the formatter's element styles."""
    if dtype_name in ("Float32", "Float64"):
        return "f8"
    if dtype_name == "Float16":
        return "f4"
    if dtype_name == "BFloat16":
        return "g"
    if dtype_name == "Bool":
        return "b"
    if dtype_name.startswith(("Int", "UInt")):
        return "i"
    if dtype_name.startswith("Complex"):
        return "c"
    # Unknown names: fall back on the numpy dtype.
    if np_dtype.kind == "f":
        return "f4" if np_dtype.itemsize == 2 else "f8"
    return {"b": "b", "c": "c"}.get(np_dtype.kind, "i")


def _summarised_axes(shape: tuple[int, ...]) -> list[bool]:
    """Which axes show only their first and last three entries."""
    if len(shape) == 1:
        return [shape[0] > _VECTOR_LIMIT]
    return [n > _AXIS_LIMIT for n in shape]


def _c_float(x: float, spec: str, width: int = 0) -> str:
    """printf-style float text, with glibc's ``-nan`` for sign-bit NaNs."""
    if math.isnan(x):
        # Python drops a NaN's sign; glibc (hence MindSpore) prints it.
        if math.copysign(1.0, x) < 0:
            return "-nan".rjust(width)
        return ("+nan" if spec.startswith("%+") else "nan").rjust(width)
    return spec % x


def _complex_text(z: complex) -> str:
    # C++: real with noshowpos, imaginary with showpos, then 'j'.
    return _c_float(z.real, "%g") + _c_float(z.imag, "%+g") + "j"


def _scalar_text(value: Any, kind: str) -> str:
    """A 0-d tensor's value, as C++ ``ostream << value`` prints it."""
    if kind == "b":
        return "True" if value else "False"
    if kind == "i":
        return str(int(value))
    if kind == "c":
        return _complex_text(complex(value))
    return _c_float(float(value), "%g")


def _element_texts(items: list[Any], kind: str) -> list[str]:
    """Texts of the shown elements, padded as the C++ formatter pads them."""
    if kind in _FLOAT_SPECS:
        spec, width = _FLOAT_SPECS[kind]
        return [_c_float(x, spec, width) for x in items]
    if kind == "b":
        return ["True".rjust(5) if x else "False" for x in items]
    if kind == "c":
        return [_complex_text(complex(z)) for z in items]
    if kind == "i":
        texts = [str(int(x)) for x in items]
    else:
        texts = [_c_float(float(x), "%g") for x in items]
    # Integers and bfloat16 are right-aligned to the widest shown element.
    width = max(map(len, texts))
    return [t.rjust(width) for t in texts]


def _render(grid: np.ndarray, depth: int, summarised: list[bool], feed: int) -> str:
    """Nested-bracket text of ``grid`` (the shown elements) at ``depth``."""
    cut = summarised[depth]
    if grid.ndim == 1:
        cells: list[str] = list(grid)
        if cut:
            first, last = ", ".join(cells[:_EDGE]), ", ".join(cells[_EDGE:])
            return "[" + first + " ... " + last + "]"
        parts = []
        wrap = depth == 0 and len(cells) > _EDGE  # only 1-D tensors wrap
        for i, cell in enumerate(cells):
            parts.append(cell if i == len(cells) - 1 else cell + ", ")
            if wrap and (i + 1) % feed == 0:
                parts.append("\n ")
        return "[" + "".join(parts) + "]"
    rows = [_render(sub, depth + 1, summarised, feed) for sub in grid]
    newline = "\n" + " " * (depth + 1)  # one space of indent per nesting level
    if not cut:
        return "[" + ("," + newline).join(rows) + "]"
    head = ("," + newline).join(rows[:_EDGE])
    tail = ("," + newline).join(rows[_EDGE:])
    # No comma between the "..." line and the first trailing row.
    return "[" + head + "," + newline + "..." + newline + tail + "]"
