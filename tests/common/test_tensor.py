"""Tests for spore.Tensor: construction, inference, sharing, conversions, operators,
printing, pickling, bfloat16 and lazy tensors (spec §2).

Expected values come from the spec and the MindSpore cases 025-048; lazy-tensor tests
compare a block against the full materialisation of an identically keyed twin.
Tests that need ``initializer`` import it inside the test.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from spore import Parameter, Tensor
from spore import dtype as mstype

# ---- constructor checks (spec §2.1) --------------------------------------------------


GIVEN = r"For 'Tensor', 'input_data' should be given"
KIND = r"For 'Tensor', the 'input_data' should be a Tensor, numpy array"
RAGGED = r"For 'Tensor', the 'input_data' should be a rectangular nested"
NUMBERS = r"For 'Tensor', the 'input_data' should hold bool or numbers"
DTYPE = r"For 'Tensor', the 'dtype' should be a spore number type"


@pytest.mark.parametrize(
    ("args", "kwargs", "match", "got"),
    [
        ((), {}, GIVEN, "but got nothing"),
        ((None,), {}, GIVEN, "but got nothing"),
        (("abc",), {}, KIND, "but got str."),
        (({"a": 1},), {}, KIND, "but got dict."),
        (({1, 2},), {}, KIND, "but got set."),
        (([[1, 2], [3]],), {}, RAGGED, "but got [[1, 2], [3]]."),
        ((["a", "b"],), {}, NUMBERS, "but got numpy dtype <U1."),
        ((np.array([1, None], dtype=object),), {}, NUMBERS, "numpy dtype object."),
        ((2**64,), {}, NUMBERS, "but got numpy dtype object."),
        (([1, 2],), {"dtype": np.float32}, DTYPE, f"but got {np.float32!r}."),
        (([1, 2],), {"dtype": "float32"}, DTYPE, "but got 'float32'."),
        (([1, 2],), {"dtype": mstype.int_}, DTYPE, f"but got {mstype.int_!r}."),
        (([1, 2],), {"dtype": mstype.string}, DTYPE, f"but got {mstype.string!r}."),
    ],
)
def test_constructor_typeerrors(args, kwargs, match: str, got: str) -> None:
    with pytest.raises(TypeError, match=match) as info:
        Tensor(*args, **kwargs)
    assert got in str(info.value)


def test_input_data_with_shape_is_valueerror() -> None:
    with pytest.raises(
        ValueError, match=r"'input_data' and 'shape' should not both"
    ) as info:
        Tensor([1, 2], shape=(2,))
    assert "got input_data=[1, 2] and shape=(2,)" in str(info.value)


def test_init_without_dtype_is_valueerror() -> None:
    from spore.common.initializer import One

    with pytest.raises(
        ValueError, match=r"For 'Tensor', 'init' needs both 'shape'"
    ) as info:
        Tensor(shape=(2, 3), init=One())
    assert "but got shape=(2, 3) and dtype=None" in str(info.value)


def test_init_without_shape_is_valueerror() -> None:
    from spore.common.initializer import One

    with pytest.raises(
        ValueError, match=r"For 'Tensor', 'init' needs both 'shape'"
    ) as info:
        Tensor(dtype=mstype.float32, init=One())
    assert "but got shape=None" in str(info.value)


def test_input_data_with_init_is_valueerror() -> None:
    from spore.common.initializer import One

    with pytest.raises(ValueError, match=r"For 'Tensor', 'init' needs both") as info:
        Tensor([1.0, 2.0], dtype=mstype.float32, init=One())
    assert "but got shape=None" in str(info.value)


@pytest.mark.parametrize("shape", [(2, 0), (2, -1), (2.0,), ("a",)])
def test_lazy_tensor_with_bad_shape_is_valueerror(shape) -> None:
    from spore.common.initializer import One

    with pytest.raises(
        ValueError, match=r"For 'Tensor', every dimension of 'shape'"
    ) as info:
        Tensor(shape=shape, dtype=mstype.float32, init=One())
    assert f"in {shape!r}" in str(info.value)


def test_string_init_fails_at_init_data_with_typeerror() -> None:
    t = Tensor(shape=(2,), dtype=mstype.float32, init="ones")
    with pytest.raises(TypeError, match=r"For 'init_data', the 'init' should be an"):
        t.init_data()
    assert t.has_init


def test_shape_and_dtype_without_init_makes_a_concrete_tensor() -> None:
    t = Tensor(shape=(2, 3), dtype=mstype.int8)
    assert (t.shape, t.dtype, t.has_init) == ((2, 3), mstype.int8, False)


# ---- dtype inference (spec §1.2) ----------------------------------------------------


@pytest.mark.parametrize(
    ("data", "dtype", "shape"),
    [
        (True, mstype.bool_, ()),
        ([True, False], mstype.bool_, (2,)),
        ([[True], [False]], mstype.bool_, (2, 1)),
        (1, mstype.int64, ()),
        ([1, 2, 3], mstype.int64, (3,)),
        ((4, 5), mstype.int64, (2,)),
        (1.0, mstype.float32, ()),
        (2.5, mstype.float32, ()),
        ([1.0, 2], mstype.float32, (2,)),
        ([[1.5, 2.5], [3.5, 4.5]], mstype.float32, (2, 2)),
        ((1.5,), mstype.float32, (1,)),
        (np.float64(1.5), mstype.float64, ()),
        (np.array(1.5), mstype.float64, ()),
        (np.float32(1.5), mstype.float32, ()),
        (np.int32(3), mstype.int32, ()),
        (2**63, mstype.uint64, ()),
    ],
)
def test_dtype_inference(data, dtype, shape) -> None:
    t = Tensor(data)
    assert (t.dtype, t.shape) == (dtype, shape)


@pytest.mark.parametrize(
    "nptype",
    [
        np.bool_,
        np.int8,
        np.int16,
        np.int32,
        np.int64,
        np.uint8,
        np.uint16,
        np.uint32,
        np.uint64,
        np.float16,
        np.float32,
        np.float64,
        np.complex64,
        np.complex128,
    ],
)
def test_ndarray_dtype_is_kept(nptype) -> None:
    t = Tensor(np.zeros((2,), dtype=nptype))
    assert (t.dtype, t.asnumpy().dtype) == (
        mstype.pytype_to_dtype(nptype),
        np.dtype(nptype),
    )


def test_python_float_with_float64_dtype_keeps_full_precision() -> None:
    assert Tensor(0.1, mstype.float64).item() == 0.1


def test_float_list_with_float64_dtype_keeps_full_precision() -> None:
    assert Tensor([0.1, 0.2], mstype.float64).tolist() == [0.1, 0.2]


def test_float_to_int_dtype_truncates_toward_zero() -> None:
    assert Tensor([1.7, -2.7, 0.5], mstype.int32).tolist() == [1, -2, 0]


def test_negative_int_into_uint8_wraps() -> None:
    assert Tensor(-1, mstype.uint8).item() == 255


def test_int_list_to_bool_dtype() -> None:
    assert Tensor([0, 2], mstype.bool_).tolist() == [False, True]


def test_bfloat16_dtype_from_list() -> None:
    t = Tensor([1.5, -2.0], mstype.bfloat16)
    assert (t.dtype, t.astype(mstype.float32).tolist()) == (
        mstype.bfloat16,
        [1.5, -2.0],
    )


# ---- copy versus share ---------------------------------------------------------------


def test_tensor_from_ndarray_copies() -> None:
    arr = np.zeros((3,), np.float32)
    t = Tensor(arr)
    arr[0] = 5.0
    assert t.asnumpy().tolist() == [0.0, 0.0, 0.0]


def test_tensor_from_non_contiguous_ndarray() -> None:
    arr = np.arange(6).reshape(2, 3).T
    t = Tensor(arr)
    assert (t.shape, t.asnumpy().tolist()) == ((3, 2), [[0, 3], [1, 4], [2, 5]])


def test_tensor_from_tensor_is_a_new_object_sharing_storage() -> None:
    source = Tensor(np.zeros((3,), np.float32))
    t = Tensor(source)
    source.asnumpy()[1] = 7.0
    assert t is not source and t.asnumpy().tolist() == [0.0, 7.0, 0.0]


def test_tensor_from_tensor_with_dtype_casts_into_new_storage() -> None:
    source = Tensor(np.array([1.5, 2.5], np.float32))
    t = Tensor(source, mstype.int32)
    source.asnumpy()[0] = 9.0
    assert (t.dtype, t.tolist()) == (mstype.int32, [1, 2])


def test_tensor_from_parameter_is_a_plain_tensor() -> None:
    p = Parameter(Tensor(np.ones((2,), np.float32)), name="w")
    t = Tensor(p)
    assert type(t) is Tensor and t.tolist() == [1.0, 1.0]


def test_from_numpy_shares_memory_both_ways() -> None:
    arr = np.zeros((3,), np.float32)
    t = Tensor.from_numpy(arr)
    arr[0] = 5.0
    t.asnumpy()[2] = 3.0
    assert t.tolist() == [5.0, 0.0, 3.0] and arr.tolist() == [5.0, 0.0, 3.0]


def test_from_numpy_of_numpy_alias_type_shares_memory() -> None:
    arr = np.array([2**63, 1], np.ulonglong)  # the type np.array(2**63) gives
    t = Tensor.from_numpy(arr)
    arr[1] = 5
    assert (t.dtype, t.tolist()) == (mstype.uint64, [2**63, 5])


def test_tensor_from_big_endian_array() -> None:
    t = Tensor(np.array([1, 2], ">i4"))
    assert (t.dtype, t.tolist()) == (mstype.int32, [1, 2])


def test_from_numpy_of_a_non_array_is_typeerror() -> None:
    with pytest.raises(
        TypeError, match=r"For 'Tensor.from_numpy', the input should be"
    ) as info:
        Tensor.from_numpy([1, 2])
    assert "but got list" in str(info.value)


def test_from_numpy_of_an_object_array_is_typeerror() -> None:
    with pytest.raises(TypeError, match=r"numpy dtype .* is not supported") as info:
        Tensor.from_numpy(np.array([1, None], dtype=object))
    assert "dtype('O')" in str(info.value)


def test_asnumpy_shares_memory() -> None:
    t = Tensor(np.zeros((2,), np.int32))
    t.asnumpy()[0] = 3
    assert t.asnumpy().tolist() == [3, 0]


def test_asnumpy_returns_matching_numpy_dtype() -> None:
    a = Tensor(np.arange(4, dtype=np.uint16)).asnumpy()
    assert (type(a), a.dtype) == (np.ndarray, np.dtype(np.uint16))


def test_np_array_of_tensor_is_a_copy() -> None:
    t = Tensor(np.zeros((3,), np.float32))
    arr = np.array(t)
    arr[0] = 5.0
    assert t.tolist() == [0.0, 0.0, 0.0]


def test_np_array_with_dtype_converts() -> None:
    arr = np.array(Tensor(np.array([1.5, 2.5], np.float32)), dtype=np.float64)
    assert (arr.dtype, arr.tolist()) == (np.dtype(np.float64), [1.5, 2.5])


# ---- the torch bridge ----------------------------------------------------------------


def test_from_torch_wraps_without_copy() -> None:
    raw = torch.arange(4, dtype=torch.float32)
    t = Tensor.from_torch(raw)
    assert t.to_torch() is raw and t.to_torch().data_ptr() == raw.data_ptr()


def test_from_torch_writes_are_visible_both_ways() -> None:
    raw = torch.zeros(3, dtype=torch.float32)
    t = Tensor.from_torch(raw)
    raw[0] = 9.0
    t[1] = 5.0
    assert t.tolist() == [9.0, 5.0, 0.0] and raw.tolist() == [9.0, 5.0, 0.0]


def test_to_torch_shares_storage_with_asnumpy() -> None:
    t = Tensor(np.zeros((2, 2), np.float64))
    t.to_torch()[1, 1] = 4.0
    assert t.asnumpy()[1, 1] == 4.0 and t.to_torch().dtype is torch.float64


@pytest.mark.parametrize(
    ("torch_dtype", "dtype"),
    [
        (torch.bfloat16, mstype.bfloat16),
        (torch.int16, mstype.int16),
        (torch.bool, mstype.bool_),
    ],
)
def test_from_torch_dtype(torch_dtype, dtype) -> None:
    assert Tensor.from_torch(torch.zeros(2, dtype=torch_dtype)).dtype is dtype


def test_from_torch_of_a_non_tensor_is_typeerror() -> None:
    with pytest.raises(
        TypeError, match=r"For 'Tensor.from_torch', the input should be"
    ) as info:
        Tensor.from_torch(np.zeros(2))
    assert "but got ndarray" in str(info.value)


def test_from_torch_of_an_unsupported_dtype_is_typeerror() -> None:
    with pytest.raises(TypeError, match=r"has no spore counterpart") as info:
        Tensor.from_torch(torch.zeros(2, dtype=torch.float8_e4m3fn))
    assert "float8_e4m3fn" in str(info.value)


# ---- properties (spec §2.2) ----------------------------------------------------------


def test_properties_of_a_3d_float32_tensor() -> None:
    t = Tensor(np.zeros((2, 3, 4), np.float32))
    assert (t.shape, t.dtype, t.size, t.ndim) == ((2, 3, 4), mstype.float32, 24, 3)


def test_itemsize_nbytes_strides() -> None:
    t = Tensor(np.zeros((2, 3, 4), np.float32))
    assert (t.itemsize, t.nbytes, t.strides) == (4, 96, (48, 16, 4))


def test_strides_match_numpy() -> None:
    arr = np.zeros((3, 5, 2), np.int16)
    assert Tensor(arr).strides == arr.strides


def test_concrete_tensor_has_no_init() -> None:
    t = Tensor(np.zeros((2,), np.float32))
    assert (t.has_init, t.init) == (False, None)


def test_zero_d_tensor_properties() -> None:
    s = Tensor(1.0)
    assert (s.shape, s.size, s.ndim, s.nbytes) == ((), 1, 0, 4)


def test_shape_is_a_tuple() -> None:
    assert type(Tensor([[1, 2]]).shape) is tuple


@pytest.mark.parametrize(
    ("dtype", "itemsize"), [(mstype.bool_, 1), (mstype.float16, 2), (mstype.int64, 8)]
)
def test_itemsize_and_nbytes_per_dtype(dtype, itemsize: int) -> None:
    t = Tensor(np.zeros((2, 3)), dtype)
    assert (t.itemsize, t.nbytes) == (itemsize, 6 * itemsize)


# ---- Python conversions (spec §2.4) --------------------------------------------------


@pytest.mark.parametrize(("data", "value"), [(2.5, 2.5), ([7], 7), (True, True)])
def test_item(data, value) -> None:
    item = Tensor(data).item()
    assert item == value and type(item) is type(value)


def test_item_of_several_elements_is_valueerror() -> None:
    with pytest.raises(
        ValueError, match=r"For 'item', the Tensor should have one element"
    ) as info:
        Tensor([1.0, 2.0]).item()
    assert "but its shape is (2,)" in str(info.value)


def test_item_with_index() -> None:
    t = Tensor(np.array([[1, 2], [3, 4]], np.int32))
    assert (t.item(3), t.item((1, 0))) == (4, 3)


def test_tolist() -> None:
    assert Tensor([[1, 2], [3, 4]]).tolist() == [[1, 2], [3, 4]]


def test_float_int_bool() -> None:
    assert (float(Tensor(1.5)), int(Tensor(3)), bool(Tensor(0)), bool(Tensor([1]))) == (
        1.5,
        3,
        False,
        True,
    )


@pytest.mark.parametrize("convert", [float, int, bool])
def test_scalar_conversion_of_several_elements_is_valueerror(convert) -> None:
    with pytest.raises(
        ValueError, match=r"only a Tensor with one element can be converted"
    ) as info:
        convert(Tensor([1.0, 2.0]))
    assert f"For '{convert.__name__}'" in str(info.value)


def test_len_is_the_first_dimension_and_undefined_for_0d() -> None:
    with pytest.raises(TypeError, match=r"len\(\) of a 0-d Tensor"):
        len(Tensor(1.0))
    assert (len(Tensor(np.zeros((4, 2)))), len(Tensor([[1]]))) == (4, 1)


def test_iteration_yields_row_tensors() -> None:
    rows = list(Tensor(np.array([[1.0, 2.0], [3.0, 4.0]], np.float32)))
    assert [type(r) for r in rows] == [Tensor, Tensor]
    assert [r.tolist() for r in rows] == [[1.0, 2.0], [3.0, 4.0]]


def test_tensor_usable_as_list_index() -> None:
    assert ["a", "b", "c"][Tensor(2)] == "c"


def test_float_tensor_as_index_is_typeerror() -> None:
    with pytest.raises(
        TypeError, match=r"For '__index__', the Tensor should be an int"
    ) as info:
        ["a", "b"][Tensor(1.0)]
    assert "got Float32" in str(info.value)


def test_np_array_of_tensor_values() -> None:
    assert np.array(Tensor([[1.0, 2.0]])).tolist() == [[1.0, 2.0]]


# ---- astype --------------------------------------------------------------------------


def test_astype_int32_truncates_and_keeps_source() -> None:
    t = Tensor(np.array([1.7, -2.7, 0.5], np.float32))
    i = t.astype(mstype.int32)
    assert (i.dtype, i.tolist(), t.dtype) == (mstype.int32, [1, -2, 0], mstype.float32)


@pytest.mark.parametrize(
    ("target", "dtype"),
    [
        (mstype.float16, mstype.float16),
        (mstype.bool_, mstype.bool_),
        ("int8", mstype.int8),
        (np.float64, mstype.float64),
        (np.dtype("uint8"), mstype.uint8),
        ("bfloat16", mstype.bfloat16),
    ],
)
def test_astype_accepts_spore_numpy_and_names(target, dtype) -> None:
    assert Tensor(np.array([1.0, 0.0], np.float32)).astype(target).dtype is dtype


def test_astype_returns_new_storage() -> None:
    t = Tensor(np.array([1.0, 2.0], np.float32))
    c = t.astype(mstype.float32)
    c.asnumpy()[0] = 9.0
    assert c is not t and t.tolist() == [1.0, 2.0]


@pytest.mark.parametrize("bad", ["nonsense", object, mstype.int_, mstype.string])
def test_astype_of_an_unknown_dtype_is_typeerror(bad) -> None:
    with pytest.raises(TypeError, match=r"For 'astype', the 'dtype' should be") as info:
        Tensor([1.0]).astype(bad)
    assert f"but got {bad!r}" in str(info.value)


# ---- bfloat16 ------------------------------------------------------------------------


def test_astype_bfloat16() -> None:
    b = Tensor(np.array([1.0, 2.5], np.float32)).astype(mstype.bfloat16)
    assert (b.dtype, b.itemsize, b.to_torch().dtype) == (
        mstype.bfloat16,
        2,
        torch.bfloat16,
    )


def test_bfloat16_asnumpy_is_typeerror_with_the_fix() -> None:
    b = Tensor([1.0]).astype(mstype.bfloat16)
    with pytest.raises(
        TypeError, match=r"numpy has no bfloat16.*astype\(spore.float32\)"
    ):
        b.asnumpy()
    assert (b.dtype, b.tolist()) == (mstype.bfloat16, [1.0])


def test_bfloat16_round_trip_through_float32() -> None:
    b = Tensor(np.array([1.0, 2.5], np.float32)).astype(mstype.bfloat16)
    assert b.astype(mstype.float32).asnumpy().tolist() == [1.0, 2.5]


def test_bfloat16_str_and_tolist() -> None:
    b = Tensor(np.array([1.5, -2.0], np.float32)).astype(mstype.bfloat16)
    assert (str(b), b.tolist()) == (str(np.array([1.5, -2.0], np.float32)), [1.5, -2.0])


def test_bfloat16_pickle_keeps_dtype_and_values() -> None:
    b = Tensor([0.5, 4.0], mstype.bfloat16)
    c = pickle.loads(pickle.dumps(b))
    assert (c.dtype, c.tolist()) == (mstype.bfloat16, [0.5, 4.0])


# ---- operators (spec §2.4) -----------------------------------------------------------

A = np.array([1.0, 2.0], np.float32)
B = np.array([3.0, 4.0], np.float32)


@pytest.mark.parametrize(
    ("op", "expected"),
    [
        (lambda a, b: a + b, A + B),
        (lambda a, b: a * b, A * B),
        (lambda a, b: b - a, B - A),
        (lambda a, b: b / a, B / A),
        (lambda a, b: a * 2, A * 2),
        (lambda a, b: 2 - a, 2 - A),
        (lambda a, b: -a, -A),
        (lambda a, b: b // a, B // A),
        (lambda a, b: b % a, B % A),
        (lambda a, b: a**2, A**2),
        (lambda a, b: 2**a, 2**A),
        (lambda a, b: abs(-b), B),
        (lambda a, b: +a, A),
        (lambda a, b: a + np.array([1.0, 1.0], np.float32), A + 1),
    ],
)
def test_arithmetic_returns_float32_tensor(op, expected) -> None:
    r = op(Tensor(A), Tensor(B))
    assert (type(r), r.dtype, r.tolist()) == (Tensor, mstype.float32, expected.tolist())


def test_matmul() -> None:
    x = np.array([[1.0, 2.0], [3.0, 4.0]], np.float32)
    r = Tensor(x) @ Tensor(x)
    assert (type(r), r.tolist()) == (Tensor, (x @ x).tolist())


def test_int_tensor_plus_python_float_is_float32() -> None:
    r = Tensor([1, 2]) + 0.5
    assert (r.dtype, r.tolist()) == (mstype.float32, [1.5, 2.5])


def test_int32_plus_int64_promotes_to_int64() -> None:
    r = Tensor([1], mstype.int32) + Tensor([2], mstype.int64)
    assert (r.dtype, r.tolist()) == (mstype.int64, [3])


def test_float16_plus_float32_promotes_to_float32() -> None:
    assert (Tensor([1.0], mstype.float16) + Tensor([1.0], mstype.float32)).dtype is (
        mstype.float32
    )


@pytest.mark.parametrize(
    ("op", "expected"),
    [
        (lambda a, b: a & b, [True, False, False]),
        (lambda a, b: a | b, [True, True, False]),
        (lambda a, b: a ^ b, [False, True, False]),
        (lambda a, b: ~a, [False, False, True]),
    ],
)
def test_logical_operators_on_bool(op, expected) -> None:
    a, b = Tensor([True, True, False]), Tensor([True, False, False])
    r = op(a, b)
    assert (r.dtype, r.tolist()) == (mstype.bool_, expected)


@pytest.mark.parametrize(
    ("op", "expected"),
    [
        (lambda a: a > 1.5, [False, True]),
        (lambda a: a >= 2.0, [False, True]),
        (lambda a: a < 1.5, [True, False]),
        (lambda a: a <= 1.0, [True, False]),
        (lambda a: a == Tensor(B), [False, False]),
        (lambda a: a == 2.0, [False, True]),
        (lambda a: a != 2.0, [True, False]),
    ],
)
def test_comparison_is_elementwise_bool_tensor(op, expected) -> None:
    r = op(Tensor(A))
    assert (type(r), r.dtype, r.tolist()) == (Tensor, mstype.bool_, expected)


@pytest.mark.parametrize("other", ["a", None, object()])
def test_equality_with_a_non_number_is_false(other) -> None:
    assert (Tensor(A) == other) is False and (Tensor(A) != other) is True


def test_arithmetic_with_a_string_is_typeerror() -> None:
    with pytest.raises(TypeError, match=r"unsupported operand") as info:
        Tensor(A) + "a"
    assert "'Tensor' and 'str'" in str(info.value)


def test_operators_do_not_change_operands() -> None:
    a, b = Tensor(A), Tensor(B)
    _ = a + b, a * b, -a
    assert (a.tolist(), b.tolist()) == (A.tolist(), B.tolist())


def test_tensor_is_hashed_by_identity() -> None:
    a, b = Tensor(A), Tensor(A)
    assert len({a, b, a}) == 2 and hash(a) == object.__hash__(a)


# ---- indexing ------------------------------------------------------------------------

M = np.arange(12, dtype=np.float32).reshape(3, 4)


@pytest.mark.parametrize(
    ("index", "expected"),
    [
        (0, M[0]),
        ((1, 1), M[1, 1]),
        ((slice(None), 1), M[:, 1]),
        (slice(1, 3), M[1:3]),
        ((-1, slice(None, None, 2)), M[-1, ::2]),
        (np.array([True, False, True]), M[np.array([True, False, True])]),
        (np.array([2, 0]), M[np.array([2, 0])]),
        ((None, 0), M[None, 0]),
    ],
)
def test_getitem_returns_tensor_of_the_numpy_result(index, expected) -> None:
    r = Tensor(M)[index]
    assert (type(r), r.dtype, r.shape, r.tolist()) == (
        Tensor,
        mstype.float32,
        expected.shape,
        expected.tolist(),
    )


def test_getitem_with_an_index_tensor() -> None:
    assert Tensor(M)[Tensor([2, 0])].tolist() == M[[2, 0]].tolist()


def test_setitem_scalar() -> None:
    t = Tensor(np.zeros((2, 2), np.float32))
    t[0, 1] = 5
    assert t.tolist() == [[0.0, 5.0], [0.0, 0.0]]


def test_setitem_row_from_tensor_and_ndarray() -> None:
    t = Tensor(np.zeros((2, 2), np.float32))
    t[0] = Tensor(np.array([1.0, 2.0], np.float32))
    t[1] = np.array([3.0, 4.0], np.float32)
    assert t.tolist() == [[1.0, 2.0], [3.0, 4.0]]


def test_setitem_with_a_mask_tensor() -> None:
    t = Tensor(np.array([1.0, -2.0, 3.0], np.float32))
    t[t < 0] = 0.0
    assert t.tolist() == [1.0, 0.0, 3.0]


def test_setitem_of_a_string_is_typeerror() -> None:
    t = Tensor(np.zeros((2,), np.float32))
    with pytest.raises(
        TypeError, match=r"For 'Tensor.__setitem__', the value should be"
    ) as info:
        t[0] = "a"
    assert "but got str" in str(info.value) and t.tolist() == [0.0, 0.0]


# ---- str and repr (spec §2.5) --------------------------------------------------------


@pytest.mark.parametrize(
    ("tensor", "text"),
    [
        (
            Tensor(np.array([[1.5, 2.0], [3.0, 4.0]], np.float32)),
            "[[1.5 2. ]\n [3.  4. ]]",
        ),
        (Tensor(np.array([1, 2, 3], np.int32)), "[1 2 3]"),
        (Tensor(2.5), "2.5"),
        (Tensor(3), "3"),
        (Tensor(True), "True"),
        (Tensor(np.array([[True, False]])), "[[ True False]]"),
        (Tensor(-0.5, mstype.float64), "-0.5"),
    ],
)
def test_str_is_numpy_str(tensor: Tensor, text: str) -> None:
    assert str(tensor) == text


def test_repr_of_3d_int64() -> None:
    assert repr(Tensor(np.arange(12, dtype=np.int64).reshape(2, 2, 3))) == (
        "Tensor(shape=[2, 2, 3], dtype=Int64, value=\n"
        "[[[ 0,  1,  2],\n"
        "  [ 3,  4,  5]],\n"
        " [[ 6,  7,  8],\n"
        "  [ 9, 10, 11]]])"
    )


def test_repr_of_uint8_vector() -> None:
    assert repr(Tensor(np.array([1, 255], np.uint8))) == (
        "Tensor(shape=[2], dtype=UInt8, value= [  1, 255])"
    )


def test_repr_of_float16_vector() -> None:
    assert repr(Tensor(np.array([0.5, -1.25], np.float16))) == (
        "Tensor(shape=[2], dtype=Float16, value= [ 5.0000e-01, -1.2500e+00])"
    )


# ---- pickle --------------------------------------------------------------------------


def test_pickle_round_trip() -> None:
    t = pickle.loads(pickle.dumps(Tensor(np.array([1, 2], np.int8))))
    assert (type(t), t.dtype, t.tolist()) == (Tensor, mstype.int8, [1, 2])


def test_pickle_copy_is_independent() -> None:
    source = Tensor(np.array([1.0, 2.0], np.float32))
    copy_ = pickle.loads(pickle.dumps(source))
    copy_.asnumpy()[0] = 9.0
    assert source.tolist() == [1.0, 2.0]


# ---- lazy tensors (spec §2.3) --------------------------------------------------------


def _lazy_normal(shape=(4, 6)) -> Tensor:
    from spore.common.initializer import Normal, initializer

    return initializer(Normal(sigma=1.0), shape, mstype.float32)


def _full_values_of_twin(lazy: Tensor) -> np.ndarray:
    """The full values of an identically keyed copy (pickle keeps the key)."""
    return pickle.loads(pickle.dumps(lazy)).init_data().asnumpy()


def test_lazy_constructor_stays_lazy_without_storage() -> None:
    from spore.common.initializer import One

    t = Tensor(shape=(2, 3), dtype=mstype.float32, init=One())
    assert (t.has_init, type(t.init).__name__, t.shape, t.dtype) == (
        True,
        "One",
        (2, 3),
        mstype.float32,
    )
    assert t._data is None


def test_lazy_constructor_accepts_an_int_shape() -> None:
    from spore.common.initializer import Constant

    u = Tensor(shape=3, dtype=mstype.int32, init=Constant(7))
    assert (u.shape, u.has_init) == ((3,), True)


@pytest.mark.parametrize(
    ("shape", "expected"), [(3, (3,)), ([2, 3], (2, 3)), ((2, 3), (2, 3)), ((), ())]
)
def test_lazy_constructor_shape_forms(shape, expected) -> None:
    from spore.common.initializer import One

    t = Tensor(shape=shape, dtype=mstype.float32, init=One())
    assert (t.shape, t.has_init) == (expected, True)


def test_lazy_properties_do_not_materialise() -> None:
    t = _lazy_normal((2, 3))
    assert (t.size, t.ndim, t.nbytes, t.strides, len(t)) == (6, 2, 24, (12, 4), 2)
    assert t.has_init and t._data is None


def test_init_data_materialises_in_place_and_returns_self() -> None:
    from spore.common.initializer import One

    t = Tensor(shape=(2, 3), dtype=mstype.float32, init=One())
    r = t.init_data()
    assert (r is t, t.has_init, t.init) == (True, False, None)
    assert t.tolist() == [[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]]


def test_init_data_keeps_dtype() -> None:
    from spore.common.initializer import Constant

    u = Tensor(shape=3, dtype=mstype.int32, init=Constant(7)).init_data()
    assert (u.dtype, u.asnumpy().dtype, u.tolist()) == (
        mstype.int32,
        np.dtype(np.int32),
        [7, 7, 7],
    )


def test_init_data_on_a_concrete_tensor_is_typeerror() -> None:
    with pytest.raises(
        TypeError, match=r"For 'init_data', the Tensor should be lazy"
    ) as info:
        Tensor([1.0]).init_data()
    assert "already holds data" in str(info.value)


def test_init_data_twice_is_typeerror() -> None:
    t = _lazy_normal().init_data()
    values = t.asnumpy().copy()
    with pytest.raises(TypeError, match=r"For 'init_data', the Tensor should be lazy"):
        t.init_data()
    assert np.array_equal(t.asnumpy(), values)


def test_init_data_with_all_arguments_none_gives_the_full_tensor() -> None:
    from spore.common.initializer import initializer

    v = initializer("zeros", [2, 2], mstype.float32)
    r = v.init_data(slice_index=None, shape=None, opt_shard_group=None)
    assert r.tolist() == [[0.0, 0.0], [0.0, 0.0]]


def test_init_data_slice_of_a_constant() -> None:
    from spore.common.initializer import Constant, initializer

    t = initializer(Constant(5), [4, 2], mstype.float32)
    out = t.init_data(0, [2, 2])
    assert (out is t, t.shape, t.has_init, t.tolist()) == (
        True,
        (2, 2),
        False,
        [[5.0, 5.0], [5.0, 5.0]],
    )


def test_init_data_shape_only_of_ones() -> None:
    from spore.common.initializer import initializer

    u = initializer("ones", [6], mstype.int32)
    assert u.init_data(shape=[3]).tolist() == [1, 1, 1]


def test_init_data_non_tiling_shape_allowed_for_constants() -> None:
    from spore.common.initializer import Constant, initializer

    t = initializer(Constant(5), [4, 2], mstype.float32)
    assert t.init_data(0, [3]).tolist() == [5.0, 5.0, 5.0]


def test_pickle_of_lazy_is_lazy() -> None:
    lazy = _lazy_normal()
    twin = pickle.loads(pickle.dumps(lazy))
    assert (type(twin), twin.has_init, twin._data, twin.shape, twin.dtype) == (
        Tensor,
        True,
        None,
        (4, 6),
        mstype.float32,
    )
    assert lazy.has_init


def test_pickle_of_lazy_keeps_the_key() -> None:
    lazy = _lazy_normal()
    twin_values = _full_values_of_twin(lazy)
    assert np.array_equal(lazy.init_data().asnumpy(), twin_values)


def test_random_init_is_not_constant() -> None:
    values = _lazy_normal().init_data().asnumpy()
    assert np.unique(values).size == values.size


@pytest.mark.parametrize(
    ("slice_index", "block", "rows", "cols"),
    [
        (0, (2, 6), slice(0, 2), slice(None)),
        (1, (2, 6), slice(2, 4), slice(None)),
        (0, (4, 3), slice(None), slice(0, 3)),
        (1, (4, 3), slice(None), slice(3, 6)),
        (0, (2, 3), slice(0, 2), slice(0, 3)),
        (1, (2, 3), slice(0, 2), slice(3, 6)),
        (2, (2, 3), slice(2, 4), slice(0, 3)),
        (3, (2, 3), slice(2, 4), slice(3, 6)),
        (5, (1, 2), slice(1, 2), slice(4, 6)),
    ],
)
def test_init_data_slice_is_the_block_of_the_full_tensor(
    slice_index: int, block, rows: slice, cols: slice
) -> None:
    lazy = _lazy_normal((4, 6))
    full = _full_values_of_twin(lazy)
    lazy.init_data(slice_index, block)
    assert lazy.shape == block
    assert np.array_equal(lazy.asnumpy(), full[rows, cols])


def test_init_data_slice_of_a_3d_tensor() -> None:
    lazy = _lazy_normal((2, 4, 6))
    full = _full_values_of_twin(lazy)
    lazy.init_data(3, (1, 2, 6))  # grid (2, 2, 1): index 3 is (1, 1, 0)
    assert np.array_equal(lazy.asnumpy(), full[1:2, 2:4, :])


def test_init_data_non_tiling_shape_refused_for_random_init() -> None:
    lazy = _lazy_normal((4, 6))
    with pytest.raises(
        ValueError, match=r"For 'init_data', the 'shape' .* should tile"
    ):
        lazy.init_data(0, (3, 6))
    assert lazy.has_init and lazy._data is None


def test_init_data_slice_index_outside_the_grid_is_valueerror() -> None:
    lazy = _lazy_normal((4, 6))
    with pytest.raises(
        ValueError, match=r"For 'init_data', the 'slice_index' should be"
    ):
        lazy.init_data(2, (2, 6))
    assert lazy.has_init


def test_init_data_with_invalid_shape_is_valueerror() -> None:
    lazy = _lazy_normal((4, 6))
    with pytest.raises(
        ValueError, match=r"For 'init_data', every dimension of 'shape'"
    ):
        lazy.init_data(0, (0, 6))
    assert lazy.has_init


def test_asnumpy_of_lazy_materialises_in_place() -> None:
    from spore.common.initializer import initializer

    t = initializer("ones", [2, 3], mstype.float16)
    a = t.asnumpy()
    assert (a.dtype, a.tolist()) == (np.dtype(np.float16), [[1.0] * 3, [1.0] * 3])
    assert (t.has_init, t.init) == (False, None)


def test_asnumpy_of_lazy_equals_init_data() -> None:
    lazy = _lazy_normal()
    full = _full_values_of_twin(lazy)
    assert np.array_equal(lazy.asnumpy(), full)


def test_str_of_lazy_says_uninitialized_and_stays_lazy() -> None:
    from spore.common.initializer import initializer

    t = initializer("ones", [2, 3], mstype.float32)
    assert str(t) == "Tensor(shape=[2, 3], dtype=Float32, value=\n<uninitialized>)"
    assert t.has_init


def test_repr_of_lazy_stays_lazy() -> None:
    t = _lazy_normal()
    assert "<uninitialized>" in repr(t) and t.has_init


def test_operator_on_lazy_materialises() -> None:
    from spore.common.initializer import initializer

    t = initializer("ones", [2], mstype.float32)
    r = t + 1
    assert (r.tolist(), t.has_init, t.tolist()) == ([2.0, 2.0], False, [1.0, 1.0])


def test_indexing_lazy_materialises_the_whole_tensor() -> None:
    lazy = _lazy_normal((4, 6))
    full = _full_values_of_twin(lazy)
    row = lazy[1]
    assert not lazy.has_init
    assert np.array_equal(row.asnumpy(), full[1])


def test_tensor_of_lazy_tensor_materialises_the_source() -> None:
    from spore.common.initializer import initializer

    lazy = initializer("ones", [2], mstype.float32)
    t = Tensor(lazy)
    assert (t.tolist(), lazy.has_init) == ([1.0, 1.0], False)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_a_tensor_on_the_gpu_reads_back_to_the_host() -> None:
    # MindSpore's asnumpy copies device memory to the host; so does spore's for a
    # Tensor made from a CUDA tensor, and printing and pickling use the same copy
    # (a Parameter prints MindSpore's summary, without values).
    values = torch.arange(6, dtype=torch.float32, device="cuda").reshape(2, 3)
    tensor = Tensor.from_torch(values)
    param = Parameter(Tensor.from_torch(values.clone()), name="w")
    expected = np.arange(6, dtype=np.float32).reshape(2, 3)
    for item in (tensor, param):
        assert np.array_equal(item.asnumpy(), expected)
        assert np.array_equal(np.asarray(item), expected)
    assert "5." in repr(tensor) and "5." in str(tensor)
    assert np.array_equal(pickle.loads(pickle.dumps(tensor)).asnumpy(), expected)
    assert tensor.to_torch().is_cuda  # reading it did not move it
