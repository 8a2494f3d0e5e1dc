"""MindSpore's data types (``from spore import dtype as mstype``).

Every type is a module-level singleton; aliases are the same object, so ``==``
is identity and types work as dict keys. All conversions between spore, numpy
and torch types read the single table ``_TABLE`` below.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch


class Type:
    """A MindSpore type object; ``str`` gives MindSpore's name (``Float32``)."""

    __slots__ = ("_attr", "_name")

    def __init__(self, name: str, attr: str) -> None:
        self._name = name
        self._attr = attr

    def __str__(self) -> str:
        return self._name

    def __repr__(self) -> str:
        return f"spore.{self._attr}"

    def __reduce__(self) -> str:
        # Types are singletons: pickling/copying resolves back to the module attribute.
        return self._attr


@dataclass(frozen=True)
class _Row:
    """One line of the dtype table: a concrete type and its counterparts."""

    dtype: Type
    numpy: type | None  # numpy scalar type; None where numpy has none (bfloat16)
    torch: torch.dtype
    itemsize: int
    kind: str  # "bool", "int", "uint", "float", "complex"
    pytype: type


bool_ = Type("Bool", "bool_")
int8 = Type("Int8", "int8")
int16 = Type("Int16", "int16")
int32 = Type("Int32", "int32")
int64 = Type("Int64", "int64")
uint8 = Type("UInt8", "uint8")
uint16 = Type("UInt16", "uint16")
uint32 = Type("UInt32", "uint32")
uint64 = Type("UInt64", "uint64")
float16 = Type("Float16", "float16")
float32 = Type("Float32", "float32")
float64 = Type("Float64", "float64")
bfloat16 = Type("BFloat16", "bfloat16")
complex64 = Type("Complex64", "complex64")
complex128 = Type("Complex128", "complex128")

# Generic and non-numeric types: they name kinds of values and have no storage.
int_ = Type("Int", "int_")
uint = Type("UInt", "uint")
float_ = Type("Float", "float_")
number = Type("Number", "number")
string = Type("String", "string")
list_ = Type("List", "list_")
tuple_ = Type("Tuple", "tuple_")
type_none = Type("None", "type_none")
tensor_type = Type("Tensor", "tensor_type")
type_type = Type("TypeType", "type_type")

# The one table: spore type <-> numpy <-> torch, sizes, kinds, Python types.
_TABLE: tuple[_Row, ...] = (
    _Row(bool_, np.bool_, torch.bool, 1, "bool", builtins.bool),
    _Row(int8, np.int8, torch.int8, 1, "int", builtins.int),
    _Row(uint8, np.uint8, torch.uint8, 1, "uint", builtins.int),
    _Row(int16, np.int16, torch.int16, 2, "int", builtins.int),
    _Row(int32, np.int32, torch.int32, 4, "int", builtins.int),
    _Row(int64, np.int64, torch.int64, 8, "int", builtins.int),
    _Row(uint16, np.uint16, torch.uint16, 2, "uint", builtins.int),
    _Row(uint32, np.uint32, torch.uint32, 4, "uint", builtins.int),
    _Row(uint64, np.uint64, torch.uint64, 8, "uint", builtins.int),
    _Row(float16, np.float16, torch.float16, 2, "float", builtins.float),
    _Row(bfloat16, None, torch.bfloat16, 2, "float", builtins.float),
    _Row(float32, np.float32, torch.float32, 4, "float", builtins.float),
    _Row(float64, np.float64, torch.float64, 8, "float", builtins.float),
    _Row(complex64, np.complex64, torch.complex64, 8, "complex", builtins.complex),
    _Row(complex128, np.complex128, torch.complex128, 16, "complex", builtins.complex),
)
_BY_TYPE = {row.dtype: row for row in _TABLE}
_BY_NUMPY = {np.dtype(row.numpy): row for row in _TABLE if row.numpy is not None}
_BY_TORCH = {row.torch: row for row in _TABLE}
_BY_NAME = {str(row.dtype): row for row in _TABLE}

# MindSpore's aliases: the same objects under numpy-style names.
bool = bool_  # shadows the builtin on purpose: MindSpore 2.x exports `mindspore.bool`
byte = int8
short = int16
intc = int32
int = int32  # shadows the builtin on purpose
intp = int64
long = int64
ubyte = uint8
ushort = uint16
uintc = uint32
uintp = uint64
half = float16
single = float32
float = float32  # shadows the builtin on purpose
double = float64
cfloat = complex64
cdouble = complex128
tensor = tensor_type

int_type = (int8, int16, int32, int64)
uint_type = (uint8, uint16, uint32, uint64)
float_type = (float16, float32, float64, bfloat16)
complex_type = (complex64, complex128)
number_type = int_type + uint_type + float_type + complex_type

# r1.3's implicit conversion order (used by Parameter.set_data's dtype rule history).
implicit_conversion_seq = {
    bool_: 0, int8: 1, uint8: 2, int16: 3, int32: 4, int64: 5,
    float16: 6, float32: 7, float64: 8, complex64: 9, complex128: 10,
}  # fmt: skip

_PYTYPE_TO_DTYPE = {
    builtins.bool: bool_,
    builtins.int: int64,
    builtins.float: float64,
    builtins.complex: complex128,
    builtins.str: string,
    builtins.list: list_,
    builtins.tuple: tuple_,
    type(None): type_none,
}
_DTYPE_TO_PYTYPE = {row.dtype: row.pytype for row in _TABLE} | {
    string: builtins.str,
    list_: builtins.list,
    tuple_: builtins.tuple,
    type_none: type(None),
}


def is_number(dtype: Any) -> builtins.bool:
    """True for a concrete type that can hold tensor data (bool and numbers)."""
    return isinstance(dtype, Type) and dtype in _BY_TYPE


def dtype_to_nptype(type_: Type) -> type:
    """Return the numpy scalar type of ``type_`` (``np.float32`` for ``float32``).

    Raises:
        KeyError: If ``type_`` has no numpy counterpart (``string``, ``bfloat16``).
    """
    row = _BY_TYPE.get(type_) if isinstance(type_, Type) else None
    if row is None or row.numpy is None:
        raise KeyError(f"For 'dtype_to_nptype', {type_} has no numpy type.")
    return row.numpy


def dtype_to_pytype(type_: Type) -> type:
    """Return the Python type of ``type_`` (``float`` for every float type).

    Raises:
        KeyError: If ``type_`` has no Python counterpart.
    """
    try:
        return _DTYPE_TO_PYTYPE[type_]
    except (KeyError, TypeError):
        raise KeyError(f"For 'dtype_to_pytype', {type_} has no Python type.") from None


def pytype_to_dtype(obj: Any) -> Type:
    """Return the spore type of a Python type, numpy type or ``np.dtype``.

    Raises:
        TypeError: If ``obj`` is not a type.
        NotImplementedError: If ``obj`` is a type spore cannot represent.
    """
    if isinstance(obj, Type):
        return obj
    if isinstance(obj, np.dtype):
        obj = obj.type
    if not isinstance(obj, type):
        raise TypeError(
            f"For 'pytype_to_dtype', the input should be a type, but got {obj!r}."
        )
    if obj in _PYTYPE_TO_DTYPE:
        return _PYTYPE_TO_DTYPE[obj]
    if issubclass(obj, np.generic) and np.dtype(obj) in _BY_NUMPY:
        return _BY_NUMPY[np.dtype(obj)].dtype
    raise NotImplementedError(f"For 'pytype_to_dtype', {obj} is not supported.")


def get_py_obj_dtype(obj: Any) -> Type:
    """Return the spore type of a Python value (``1`` -> ``Int64``)."""
    from spore.common.tensor import Tensor  # a value-level question; avoid a cycle

    if isinstance(obj, Type):
        return type_type
    if isinstance(obj, Tensor):
        return tensor_type
    if isinstance(obj, type):
        return pytype_to_dtype(obj)
    return pytype_to_dtype(type(obj))


def type_size_in_bytes(dtype: Type) -> builtins.int:
    """Return the size of one element of ``dtype`` in bytes.

    Raises:
        TypeError: If ``dtype`` is not a concrete spore number type.
    """
    if not is_number(dtype):
        raise TypeError(
            f"For 'type_size_in_bytes', the input should be a spore number type, "
            f"but got {dtype!r}."
        )
    return _BY_TYPE[dtype].itemsize


# ---- conversions used across spore (not MindSpore API) --------------------------


def to_torch(dtype: Type) -> torch.dtype:
    """The torch dtype that stores ``dtype``."""
    return _BY_TYPE[dtype].torch


def from_torch(dtype: torch.dtype) -> Type:
    """The spore type of a torch dtype.

    Raises:
        TypeError: If torch's type has no spore counterpart.
    """
    try:
        return _BY_TORCH[dtype].dtype
    except KeyError:
        raise TypeError(f"torch dtype {dtype} has no spore counterpart.") from None


def from_numpy(dtype: Any) -> Type:
    """The spore type of a numpy dtype (or anything ``np.dtype`` accepts).

    Raises:
        TypeError: If numpy's type has no spore counterpart (object, str...).
    """
    try:
        return _BY_NUMPY[np.dtype(dtype)].dtype
    except (KeyError, TypeError):
        raise TypeError(
            f"numpy dtype {dtype!r} is not supported; expected one of "
            f"{sorted(str(d) for d in _BY_NUMPY)}."
        ) from None


def from_name(name: str) -> Type:
    """The spore type whose ``str`` is ``name`` (``"Float32"``), as in checkpoints.

    Raises:
        TypeError: If ``name`` names no concrete type.
    """
    try:
        return _BY_NAME[name].dtype
    except KeyError:
        raise TypeError(
            f"unknown dtype name {name!r}; expected one of {sorted(_BY_NAME)}."
        ) from None


def kind(dtype: Type) -> str:
    """``"bool"``, ``"int"``, ``"uint"``, ``"float"`` or ``"complex"``."""
    return _BY_TYPE[dtype].kind


def compute_numpy_type(dtype: Type) -> np.dtype:
    """The numpy dtype that holds values of ``dtype`` (float32 for bfloat16)."""
    row = _BY_TYPE[dtype]
    return np.dtype(row.numpy if row.numpy is not None else np.float32)
