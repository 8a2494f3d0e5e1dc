"""Tests for spore.common.dtype: type objects, aliases, groups, helpers, the one table.

Expected names and sizes come from the spec (§1) and the MindSpore cases 021-028.
"""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest
import torch

import spore
from spore import dtype as mstype
from spore.common import dtype as dtype_module

# (attribute, str) of every type object (spec §1.1).
NAMES = [
    ("bool_", "Bool"),
    ("int8", "Int8"),
    ("int16", "Int16"),
    ("int32", "Int32"),
    ("int64", "Int64"),
    ("uint8", "UInt8"),
    ("uint16", "UInt16"),
    ("uint32", "UInt32"),
    ("uint64", "UInt64"),
    ("float16", "Float16"),
    ("float32", "Float32"),
    ("float64", "Float64"),
    ("bfloat16", "BFloat16"),
    ("complex64", "Complex64"),
    ("complex128", "Complex128"),
    ("int_", "Int"),
    ("uint", "UInt"),
    ("float_", "Float"),
    ("number", "Number"),
    ("string", "String"),
    ("list_", "List"),
    ("tuple_", "Tuple"),
    ("type_none", "None"),
    ("tensor_type", "Tensor"),
]

# (alias, the attribute it must be the same object as).
ALIASES = [
    ("byte", "int8"),
    ("short", "int16"),
    ("intc", "int32"),
    ("intp", "int64"),
    ("ubyte", "uint8"),
    ("ushort", "uint16"),
    ("uintc", "uint32"),
    ("uintp", "uint64"),
    ("half", "float16"),
    ("single", "float32"),
    ("double", "float64"),
    ("cfloat", "complex64"),
    ("cdouble", "complex128"),
    ("bool", "bool_"),
    ("int", "int32"),
    ("long", "int64"),
    ("float", "float32"),
    ("tensor", "tensor_type"),
]

# Concrete types with their numpy and torch counterparts and element size.
CONCRETE = [
    (mstype.bool_, np.bool_, torch.bool, 1),
    (mstype.int8, np.int8, torch.int8, 1),
    (mstype.int16, np.int16, torch.int16, 2),
    (mstype.int32, np.int32, torch.int32, 4),
    (mstype.int64, np.int64, torch.int64, 8),
    (mstype.uint8, np.uint8, torch.uint8, 1),
    (mstype.uint16, np.uint16, torch.uint16, 2),
    (mstype.uint32, np.uint32, torch.uint32, 4),
    (mstype.uint64, np.uint64, torch.uint64, 8),
    (mstype.float16, np.float16, torch.float16, 2),
    (mstype.float32, np.float32, torch.float32, 4),
    (mstype.float64, np.float64, torch.float64, 8),
    (mstype.complex64, np.complex64, torch.complex64, 8),
    (mstype.complex128, np.complex128, torch.complex128, 16),
]
NUMPY_BACKED = CONCRETE  # every concrete type but bfloat16 has a numpy type
ALL_CONCRETE = [row[0] for row in CONCRETE] + [mstype.bfloat16]
ALL_TYPES = [getattr(mstype, attr) for attr, _ in NAMES]


# ---- names and identity ----------------------------------------------------------


@pytest.mark.parametrize(("attr", "text"), NAMES)
def test_str_of_type_is_mindspore_name(attr: str, text: str) -> None:
    assert str(getattr(mstype, attr)) == text


@pytest.mark.parametrize(("alias", "target"), ALIASES)
def test_alias_is_the_same_object(alias: str, target: str) -> None:
    assert getattr(mstype, alias) is getattr(mstype, target)


def test_alias_works_as_the_same_dict_key() -> None:
    table = {mstype.float32: "f32", mstype.int64: "i64"}
    assert (table[mstype.single], table[mstype.intp]) == ("f32", "i64")


def test_alias_hash_equals_target_hash() -> None:
    assert hash(mstype.half) == hash(mstype.float16)


def test_distinct_concrete_types_compare_unequal() -> None:
    assert (mstype.float32 == mstype.float64, mstype.float32 != mstype.float64) == (
        False,
        True,
    )


def test_signed_and_unsigned_types_differ() -> None:
    assert mstype.int32 != mstype.uint32


@pytest.mark.parametrize(
    ("generic", "concrete"),
    [
        (mstype.float_, mstype.float32),
        (mstype.int_, mstype.int64),
        (mstype.uint, mstype.uint64),
        (mstype.number, mstype.float32),
    ],
)
def test_generic_type_is_not_a_concrete_type(generic, concrete) -> None:
    assert generic != concrete


def test_every_type_object_is_distinct() -> None:
    assert len({id(t) for t in ALL_TYPES}) == len(ALL_TYPES)


@pytest.mark.parametrize("attr", [attr for attr, _ in NAMES[:15]])
def test_concrete_type_exported_at_top_level(attr: str) -> None:
    assert getattr(spore, attr) is getattr(mstype, attr)


def test_spore_bool_is_bool_() -> None:
    # set through globals() in spore/__init__.py, so a type checker cannot see it
    assert getattr(spore, "bool") is mstype.bool_  # noqa: B009


def test_module_paths_are_one_module() -> None:
    import spore.common.dtype as by_path

    assert spore.dtype is by_path and spore.common.dtype is by_path


# ---- groups ----------------------------------------------------------------------


def test_int_type_group() -> None:
    assert [str(t) for t in mstype.int_type] == ["Int8", "Int16", "Int32", "Int64"]


def test_uint_type_group() -> None:
    assert [str(t) for t in mstype.uint_type] == ["UInt8", "UInt16", "UInt32", "UInt64"]


def test_float_type_group_holds_ieee_floats_and_bfloat16() -> None:
    assert {mstype.float16, mstype.float32, mstype.float64, mstype.bfloat16} == set(
        mstype.float_type
    )


def test_complex_type_group() -> None:
    assert mstype.complex_type == (mstype.complex64, mstype.complex128)


def test_uint8_is_not_in_int_type() -> None:
    assert mstype.uint8 not in mstype.int_type


def test_number_type_excludes_bool() -> None:
    assert mstype.bool_ not in mstype.number_type


@pytest.mark.parametrize("member", [t for t in ALL_CONCRETE if t is not mstype.bool_])
def test_number_type_holds_every_numeric_type(member) -> None:
    assert member in mstype.number_type


@pytest.mark.parametrize(
    "group",
    ["int_type", "uint_type", "float_type", "complex_type", "number_type"],
)
def test_groups_are_tuples(group: str) -> None:
    assert isinstance(getattr(mstype, group), tuple)


def test_implicit_conversion_order_is_r13s() -> None:
    seq = mstype.implicit_conversion_seq
    order = [
        mstype.bool_,
        mstype.int8,
        mstype.uint8,
        mstype.int16,
        mstype.int32,
        mstype.int64,
        mstype.float16,
        mstype.float32,
        mstype.float64,
    ]
    assert [seq[t] for t in order] == list(range(9))


# ---- helpers ---------------------------------------------------------------------


@pytest.mark.parametrize(("dtype", "nptype", "_torch", "_size"), NUMPY_BACKED)
def test_dtype_to_nptype(dtype, nptype, _torch, _size) -> None:
    assert mstype.dtype_to_nptype(dtype) is nptype


@pytest.mark.parametrize("dtype", [mstype.string, mstype.bfloat16, mstype.number])
def test_dtype_to_nptype_without_numpy_type_is_keyerror(dtype) -> None:
    with pytest.raises(KeyError, match=r"For 'dtype_to_nptype'") as info:
        mstype.dtype_to_nptype(dtype)
    assert f"{dtype} has no numpy type" in str(info.value)


def test_dtype_to_nptype_of_a_non_type_is_keyerror() -> None:
    with pytest.raises(KeyError, match=r"For 'dtype_to_nptype'") as info:
        mstype.dtype_to_nptype("float32")
    assert "float32 has no numpy type" in str(info.value)


@pytest.mark.parametrize(
    ("pytype", "expected"),
    [
        (int, mstype.int64),
        (float, mstype.float64),
        (bool, mstype.bool_),
        (complex, mstype.complex128),
        (str, mstype.string),
        (list, mstype.list_),
        (tuple, mstype.tuple_),
        (type(None), mstype.type_none),
    ],
)
def test_pytype_to_dtype_of_python_types(pytype, expected) -> None:
    assert mstype.pytype_to_dtype(pytype) is expected


@pytest.mark.parametrize(("dtype", "nptype", "_torch", "_size"), NUMPY_BACKED)
def test_pytype_to_dtype_of_numpy_scalar_types(dtype, nptype, _torch, _size) -> None:
    assert mstype.pytype_to_dtype(nptype) is dtype


@pytest.mark.parametrize(("dtype", "nptype", "_torch", "_size"), NUMPY_BACKED)
def test_pytype_to_dtype_of_numpy_dtype_objects(dtype, nptype, _torch, _size) -> None:
    assert mstype.pytype_to_dtype(np.dtype(nptype)) is dtype


@pytest.mark.parametrize("dtype", ALL_TYPES)
def test_pytype_to_dtype_returns_spore_types_unchanged(dtype) -> None:
    assert mstype.pytype_to_dtype(dtype) is dtype


@pytest.mark.parametrize("unsupported", [dict, set, object, np.str_])
def test_pytype_to_dtype_of_unknown_type_is_notimplementederror(unsupported) -> None:
    with pytest.raises(NotImplementedError, match=r"For 'pytype_to_dtype'") as info:
        mstype.pytype_to_dtype(unsupported)
    assert unsupported.__name__ in str(info.value)


@pytest.mark.parametrize("value", [1, "int", 2.5, None])
def test_pytype_to_dtype_of_a_non_type_is_typeerror(value) -> None:
    with pytest.raises(
        TypeError, match=r"For 'pytype_to_dtype', the input should be a type"
    ) as info:
        mstype.pytype_to_dtype(value)
    assert f"but got {value!r}" in str(info.value)


@pytest.mark.parametrize(
    ("dtype", "expected"),
    [
        (mstype.float32, float),
        (mstype.float16, float),
        (mstype.bfloat16, float),
        (mstype.int8, int),
        (mstype.uint64, int),
        (mstype.bool_, bool),
        (mstype.complex64, complex),
        (mstype.string, str),
        (mstype.list_, list),
        (mstype.tuple_, tuple),
        (mstype.type_none, type(None)),
    ],
)
def test_dtype_to_pytype(dtype, expected) -> None:
    assert mstype.dtype_to_pytype(dtype) is expected


@pytest.mark.parametrize("dtype", [mstype.number, mstype.tensor_type, "float32"])
def test_dtype_to_pytype_unknown_is_keyerror(dtype) -> None:
    with pytest.raises(KeyError, match=r"For 'dtype_to_pytype'") as info:
        mstype.dtype_to_pytype(dtype)
    assert f"{dtype} has no Python type" in str(info.value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1, mstype.int64),
        (2.5, mstype.float64),
        (True, mstype.bool_),
        (1 + 2j, mstype.complex128),
        ("a", mstype.string),
        ([1], mstype.list_),
        ((1,), mstype.tuple_),
        (None, mstype.type_none),
        (np.float32(1.0), mstype.float32),
        (int, mstype.int64),
    ],
)
def test_get_py_obj_dtype(value, expected) -> None:
    assert mstype.get_py_obj_dtype(value) is expected


def test_get_py_obj_dtype_of_a_type_object_is_typetype() -> None:
    assert str(mstype.get_py_obj_dtype(mstype.float32)) == "TypeType"


@pytest.mark.parametrize(("dtype", "_np", "_torch", "size"), CONCRETE)
def test_type_size_in_bytes(dtype, _np, _torch, size) -> None:
    assert mstype.type_size_in_bytes(dtype) == size


@pytest.mark.parametrize(("dtype", "nptype", "_torch", "_size"), NUMPY_BACKED)
def test_type_size_in_bytes_agrees_with_numpy(dtype, nptype, _torch, _size) -> None:
    assert mstype.type_size_in_bytes(dtype) == np.dtype(nptype).itemsize


def test_type_size_in_bytes_of_bfloat16() -> None:
    assert mstype.type_size_in_bytes(mstype.bfloat16) == 2


@pytest.mark.parametrize(
    "bad", [np.float32, "float32", 4, mstype.number, mstype.string]
)
def test_type_size_in_bytes_of_a_non_number_type_is_typeerror(bad) -> None:
    with pytest.raises(TypeError, match=r"For 'type_size_in_bytes'") as info:
        mstype.type_size_in_bytes(bad)
    assert f"but got {bad!r}" in str(info.value)


# ---- the torch / numpy / name table ----------------------------------------------


@pytest.mark.parametrize(("dtype", "_np", "torch_dtype", "_size"), CONCRETE)
def test_to_torch(dtype, _np, torch_dtype, _size) -> None:
    assert dtype_module.to_torch(dtype) is torch_dtype


def test_bfloat16_to_torch() -> None:
    assert dtype_module.to_torch(mstype.bfloat16) is torch.bfloat16


@pytest.mark.parametrize("dtype", ALL_CONCRETE)
def test_torch_round_trip(dtype) -> None:
    assert dtype_module.from_torch(dtype_module.to_torch(dtype)) is dtype


@pytest.mark.parametrize(("dtype", "nptype", "_torch", "_size"), NUMPY_BACKED)
def test_numpy_round_trip(dtype, nptype, _torch, _size) -> None:
    assert dtype_module.from_numpy(mstype.dtype_to_nptype(dtype)) is dtype


@pytest.mark.parametrize(("dtype", "nptype", "_torch", "_size"), NUMPY_BACKED)
def test_from_numpy_accepts_dtype_objects(dtype, nptype, _torch, _size) -> None:
    assert dtype_module.from_numpy(np.dtype(nptype)) is dtype


@pytest.mark.parametrize("dtype", ALL_CONCRETE)
def test_name_round_trip(dtype) -> None:
    assert dtype_module.from_name(str(dtype)) is dtype


def test_from_torch_without_counterpart_is_typeerror() -> None:
    with pytest.raises(TypeError, match=r"has no spore counterpart") as info:
        dtype_module.from_torch(torch.float8_e4m3fn)
    assert "float8_e4m3fn" in str(info.value)


@pytest.mark.parametrize("bad", [object, np.str_, "U3", "not-a-dtype"])
def test_from_numpy_without_counterpart_is_typeerror(bad) -> None:
    with pytest.raises(TypeError, match=r"numpy dtype .* is not supported") as info:
        dtype_module.from_numpy(bad)
    assert "expected one of [" in str(info.value) and "'float32'" in str(info.value)


@pytest.mark.parametrize("bad", ["float32", "Int", "Float"])
def test_from_name_of_unknown_name_is_typeerror(bad: str) -> None:
    with pytest.raises(TypeError, match=r"unknown dtype name") as info:
        dtype_module.from_name(bad)
    assert f"{bad!r}" in str(info.value) and "'Float32'" in str(info.value)


# ---- pickling and copying keep the singletons -------------------------------------


@pytest.mark.parametrize("dtype", ALL_TYPES, ids=str)
def test_pickle_gives_the_same_singleton(dtype) -> None:
    assert pickle.loads(pickle.dumps(dtype)) is dtype


@pytest.mark.parametrize("dtype", ALL_TYPES, ids=str)
def test_copy_gives_the_same_singleton(dtype) -> None:
    assert copy.copy(dtype) is dtype


@pytest.mark.parametrize("dtype", ALL_TYPES, ids=str)
def test_deepcopy_gives_the_same_singleton(dtype) -> None:
    assert copy.deepcopy(dtype) is dtype


def test_pickled_dict_keys_stay_usable() -> None:
    table = pickle.loads(pickle.dumps({mstype.float32: 1, mstype.int8: 2}))
    assert (table[mstype.single], table[mstype.byte]) == (1, 2)
