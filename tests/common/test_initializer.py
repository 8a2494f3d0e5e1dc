"""Initializers: aliases, attributes, exact maths, slices, validation, initializer()."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from scipy import stats

from spore.common import dtype as mstype
from spore.common import initializer as init_module
from spore.common.initializer import (
    Constant,
    Dirac,
    HeNormal,
    HeUniform,
    Identity,
    Initializer,
    Normal,
    One,
    Orthogonal,
    Sparse,
    TruncatedNormal,
    Uniform,
    VarianceScaling,
    XavierNormal,
    XavierUniform,
    Zero,
    initializer,
)

KEY = (77, 5)


def _fill(init, full, offsets=None, shape=None, dtype: Any = np.float32, key=KEY):
    shape = full if shape is None else shape
    out = np.empty(shape, dtype)
    init._fill(out, tuple(full), tuple(offsets or (0,) * len(full)), key)
    return out


# ---- registry and attributes -----------------------------------------------------

ALIASES = {
    "zeros": Zero, "zero": Zero, "ones": One, "one": One, "normal": Normal,
    "uniform": Uniform, "truncatednormal": TruncatedNormal,
    "xavier_uniform": XavierUniform, "xavieruniform": XavierUniform,
    "he_uniform": HeUniform, "heuniform": HeUniform, "he_normal": HeNormal,
    "henormal": HeNormal, "xavier_normal": XavierNormal, "xaviernormal": XavierNormal,
    "identity": Identity, "sparse": Sparse, "dirac": Dirac, "orthogonal": Orthogonal,
    "variancescaling": VarianceScaling,
}  # fmt: skip


def test_alias_table_is_exactly_the_spec_table():
    assert init_module._INITIALIZER_ALIAS == ALIASES


def test_register_adds_the_lower_cased_class_name_and_aliases_without_overriding():
    @init_module._register("my_alias", "ones")
    class MyInit(Initializer):
        pass

    table = init_module._INITIALIZER_ALIAS
    try:
        assert (
            table["myinit"] is MyInit
            and table["my_alias"] is MyInit
            and table["ones"] is One
        )
    finally:
        del table["myinit"], table["my_alias"]


@pytest.mark.parametrize(
    "obj,attrs",
    [
        (Normal(), {"sigma": 0.01, "mean": 0.0}),
        (Uniform(), {"scale": 0.07}),
        (TruncatedNormal(), {"sigma": 0.01, "mean": 0.0, "a": -2.0, "b": 2.0}),
        (XavierUniform(), {"gain": 1}),
        (XavierNormal(gain=0.5), {"gain": 0.5}),
        (
            HeUniform(),
            {"negative_slope": 0, "mode": "fan_in", "nonlinearity": "leaky_relu"},
        ),
        (HeNormal(0.2, "fan_out"), {"negative_slope": 0.2, "mode": "fan_out"}),
        (Constant(4), {"value": 4}),
        (Sparse(0.1), {"sparsity": 0.1, "sigma": 0.01}),
        (Dirac(), {"groups": 1}),
        (Orthogonal(), {"gain": 1.0}),
        (
            VarianceScaling(),
            {"scale": 1.0, "mode": "fan_in", "distribution": "truncated_normal"},
        ),
    ],
)
def test_arguments_are_kept_as_attributes_and_kwargs(obj, attrs):
    assert {k: getattr(obj, k) for k in attrs} == attrs
    assert {k: obj._kwargs[k] for k in attrs} == attrs


def test_only_constant_fills_are_position_independent():
    flags = {
        cls: cls.position_independent for cls in set(ALIASES.values()) | {Constant}
    }
    assert {cls for cls, flag in flags.items() if flag} == {Zero, One, Constant}


# ---- Initializer base and __call__ -----------------------------------------------


def test_base_initialize_is_not_implemented():
    with pytest.raises(NotImplementedError, match=r"'_initialize' must be overridden"):
        Initializer()(np.zeros(3))


def test_call_fills_the_array_in_place_and_returns_none():
    arr = np.zeros((4, 5), np.float32)
    assert One()(arr) is None and arr.sum() == 20


def test_call_fills_a_non_contiguous_array():
    arr = np.zeros((6, 6), np.float64)
    Uniform(1.0)(arr[:, ::2])
    assert np.all(arr[:, 1::2] == 0) and np.all(arr[:, ::2] != 0)


def test_call_draws_a_fresh_key_each_time():
    a, b = np.empty(100), np.empty(100)
    Normal()(a)
    Normal()(b)
    assert not np.array_equal(a, b)


def test_user_initializer_with_only_initialize_fills_a_block_of_its_whole():
    class Ramp(Initializer):
        def _initialize(self, arr):
            arr[...] = np.arange(arr.size).reshape(arr.shape)

    out = _fill(Ramp(), (4, 5), (1, 2), (2, 3))
    assert out.tolist() == [[7, 8, 9], [12, 13, 14]]


def test_seed_property_follows_the_set_value():
    init = Normal()
    init.seed = 41
    assert init.seed == (42, 0)


# ---- constants -------------------------------------------------------------------


def test_constant_fills_big_integers_exactly():
    assert _fill(Constant(2**62 + 1), (3,), dtype=np.int64).tolist() == [2**62 + 1] * 3


def test_constant_fills_complex_and_rounds_to_float16():
    c = _fill(Constant(1 + 2j), (2,), dtype=np.complex64)
    h = _fill(Constant(0.1), (1,), dtype=np.float16)
    assert c.tolist() == [1 + 2j, 1 + 2j] and h.tolist() == [0.0999755859375]


def test_constant_fills_large_and_small_float_arrays_alike():
    # Large float arrays go through torch's fill, small ones through numpy's.
    big = _fill(Constant(0.1), (1 << 17,), dtype=np.float16)
    small = _fill(Constant(0.1), (3,), dtype=np.float16)
    assert np.all(big == small[0]) and small[0] == np.float16(0.1)


def test_constant_wraps_negative_values_into_unsigned_types():
    assert _fill(Constant(-1), (2,), dtype=np.uint8).tolist() == [255, 255]


def test_constant_rejects_an_array_value():
    with pytest.raises(
        ValueError, match=r"For 'Constant', the 'value' should be a number"
    ):
        _fill(Constant(np.ones(3)), (3,))


def test_zero_and_one_fill_any_dtype():
    assert _fill(Zero(), (2,), dtype=np.bool_).tolist() == [False, False] and _fill(
        One(), (2,), dtype=np.int8
    ).tolist() == [1, 1]


# ---- slices: fans from the full shape, bits from the full tensor -----------------

RANDOM_INITS = [
    Normal(0.5, 1.0), Uniform(0.3), TruncatedNormal(1.0, 0.0, -1.5, 2.0),
    XavierUniform(), XavierNormal(), HeUniform(), HeNormal(mode="fan_out"),
    Sparse(0.3, 1.0),
    VarianceScaling(), VarianceScaling(2.0, "fan_avg", "uniform"),
    VarianceScaling(distribution="untruncated_normal"),
]  # fmt: skip


@pytest.mark.parametrize("init", RANDOM_INITS, ids=lambda i: type(i).__name__)
@pytest.mark.parametrize(
    "offsets,shape", [((0, 0), (60, 77)), ((0, 40), (120, 37)), ((30, 11), (45, 50))]
)
def test_blocks_equal_the_same_block_of_the_full_tensor(init, offsets, shape):
    whole = _fill(init, (120, 77))
    block = _fill(init, (120, 77), offsets, shape)
    index = tuple(slice(o, o + n) for o, n in zip(offsets, shape, strict=True))
    assert np.array_equal(block.view(np.uint32), whole[index].view(np.uint32))


@pytest.mark.parametrize(
    "init",
    [XavierUniform(), HeNormal(), Dirac(groups=2), Orthogonal()],
    ids=lambda i: type(i).__name__,
)
def test_conv_kernel_blocks_equal_the_full_tensor(init):
    whole = _fill(init, (8, 4, 3, 3))
    block = _fill(init, (8, 4, 3, 3), (4, 2, 0, 1), (4, 2, 3, 2))
    assert np.array_equal(block, whole[4:8, 2:4, :, 1:3])


def test_fans_come_from_the_full_shape_when_filling_a_slice():
    column = _fill(XavierUniform(), (400, 300), (0, 0), (400, 10))
    bound = math.sqrt(6.0 / 700)
    assert np.abs(column).max() < bound and np.abs(column).max() > 0.99 * bound


def test_identity_block_is_the_block_of_eye():
    assert np.array_equal(
        _fill(Identity(), (5, 7), (1, 2), (3, 4)), np.eye(5, 7)[1:4, 2:6]
    )


def test_identity_is_eye_for_wide_and_tall_shapes():
    assert np.array_equal(_fill(Identity(), (3, 5)), np.eye(3, 5)) and np.array_equal(
        _fill(Identity(), (5, 3)), np.eye(5, 3)
    )


def test_dirac_with_groups_matches_mindspore():
    got = _fill(Dirac(groups=2), (4, 2, 3)).tolist()
    assert got == [[[0, 1, 0], [0, 0, 0]], [[0, 0, 0], [0, 1, 0]]] * 2


def test_orthogonal_rows_are_orthonormal_times_gain():
    q = _fill(Orthogonal(gain=2.0), (6, 3, 4), dtype=np.float64).reshape(6, 12)
    assert np.allclose(q @ q.T, 4.0 * np.eye(6))


def test_sparse_zeroes_the_mindspore_count_in_every_column():
    s = _fill(Sparse(0.25, 1.0), (7, 3))
    assert [int((s[:, j] == 0).sum()) for j in range(3)] == [2, 2, 2]


# ---- statistics ------------------------------------------------------------------


def _values(init, full):
    return _fill(init, full).astype(np.float64).ravel()


@pytest.mark.parametrize(
    "init,full,bound",
    [
        (XavierUniform(), (400, 300), math.sqrt(6.0 / 700)),
        (XavierUniform(gain=3.0), (64, 32, 3, 3), 3.0 * math.sqrt(6.0 / (96 * 9))),
        (HeUniform(), (400, 500), math.sqrt(6.0 / 500)),
        (
            HeUniform(mode="FAN_OUT", nonlinearity="tanh"),
            (400, 500),
            5 / 3 * math.sqrt(3 / 400),
        ),
        (VarianceScaling(2.0, "fan_avg", "uniform"), (200, 300), math.sqrt(6.0 / 250)),
    ],
)
def test_uniform_family_is_uniform_on_its_bound(init, full, bound):
    x = _values(init, full)
    assert stats.kstest(x, stats.uniform(-bound, 2 * bound).cdf).pvalue > 1e-4


@pytest.mark.parametrize(
    "init,full,std",
    [
        (Normal(2.0, 5.0), (200000,), 2.0),
        (XavierNormal(), (400, 500), math.sqrt(2.0 / 900)),
        (HeNormal(), (400, 500), math.sqrt(2.0 / 500)),
        (
            HeNormal(negative_slope=1.0, mode="fan_out"),
            (400, 500),
            math.sqrt(1.0 / 400),
        ),
        (
            VarianceScaling(2.0, "fan_out", "untruncated_normal"),
            (400, 300),
            math.sqrt(2 / 400),
        ),
    ],
)
def test_normal_family_is_normal_with_its_std(init, full, std):
    x = _values(init, full)
    mean = getattr(init, "mean", 0.0)
    assert stats.kstest(x, stats.norm(mean, std).cdf).pvalue > 1e-4


def test_variance_scaling_truncated_normal_is_truncated_at_two_stddev():
    x = _values(VarianceScaling(), (300, 400))
    s = math.sqrt(1.0 / 400) / 0.87962566103423978
    dist = stats.truncnorm(-2.0, 2.0, scale=s)
    assert (
        stats.kstest(x, dist.cdf).pvalue > 1e-4
        and abs(x.std() / math.sqrt(1 / 400) - 1) < 0.01
    )


def test_truncated_normal_uses_absolute_bounds():
    x = _values(TruncatedNormal(sigma=2.0, mean=1.0, a=0.0, b=3.0), (200000,))
    dist = stats.truncnorm(-0.5, 1.0, loc=1.0, scale=2.0)
    assert stats.kstest(x, dist.cdf).pvalue > 1e-4 and x.min() >= 0.0 and x.max() <= 3.0


def test_truncated_normal_defaults_truncate_nothing_in_practice():
    x = _values(TruncatedNormal(), (200000,))
    assert stats.kstest(x, stats.norm(0.0, 0.01).cdf).pvalue > 1e-4


def test_random_values_into_int_dtypes_truncate_toward_zero():
    n = _fill(Normal(), (1000,), dtype=np.int32)
    u = _fill(Uniform(10), (20000,), dtype=np.int32)
    f = _fill(Uniform(10), (20000,), dtype=np.float32)
    assert np.all(n == 0) and np.array_equal(u, np.trunc(f).astype(np.int32))


# ---- validation errors -----------------------------------------------------------


DATA_ERRORS = [
    (HeUniform(mode="x"), (3, 3), r"For 'HeUniform', the 'mode' should be one of "
     r"\['fan_in', 'fan_out'\], but got 'x'\."),
    (HeNormal(nonlinearity="gelu"), (3, 3), r"For 'HeNormal', the 'nonlinearity'"),
    (HeUniform(negative_slope=True), (3, 3), r"'negative_slope' should be int or"),
    (XavierUniform(), (5,), r"For 'XavierUniform', 'fan_in' and 'fan_out' need"),
    (XavierNormal(), (5,), r"For 'XavierNormal', 'fan_in' and 'fan_out' need"),
    (VarianceScaling(), (5,), r"For 'VarianceScaling', 'fan_in' and 'fan_out'"),
    (Identity(), (2, 2, 2), r"For 'Identity', the initialized tensor should be 2-D"),
    (Sparse(0.5), (4,), r"For 'Sparse', the initialized tensor should be 2-D"),
    (Dirac(), (2, 2), r"For 'Dirac', the initialized tensor should have 3, 4 or 5"),
    (Dirac(), (1,) * 6, r"For 'Dirac', the initialized tensor should have 3, 4"),
    (Dirac(groups=3), (4, 2, 3), r"For 'Dirac', the first dimension 4 should be"),
    (Orthogonal(), (4,), r"For 'Orthogonal', the initialized tensor should have"),
    (Normal(sigma=-1.0), (3,), r"For 'Normal', the 'sigma' should be >= 0, but got -1"),
    (TruncatedNormal(sigma=-1.0), (3,), r"For 'TruncatedNormal', the 'sigma' should"),
    (TruncatedNormal(1.0, a=1.0, b=0.0), (3,), r"'a' should be <= 'b', but got a=1"),
    (TruncatedNormal(0.0, 5.0), (3,), r"with 'sigma' 0 the 'mean' 5.0 should lie"),
    (Sparse(0.5, sigma=-1.0), (3, 3), r"For 'Sparse', the 'sigma' should be >= 0"),
]  # fmt: skip


@pytest.mark.parametrize("init,full,match", DATA_ERRORS)
def test_errors_surface_when_the_data_is_produced(init, full, match):
    with pytest.raises(ValueError, match=match):
        _fill(init, full)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (
            {"scale": 0},
            r"For 'VarianceScaling', the 'scale' should be greater than 0, but got 0\.",
        ),
        ({"scale": -1.0}, r"the 'scale' should be greater than 0"),
        (
            {"mode": "fan"},
            r"the 'mode' should be one of \['fan_in', 'fan_out', 'fan_avg'\]",
        ),
        ({"distribution": "normal"}, r"the 'distribution' should be one of"),
        ({"distribution": "truncated_norm"}, r"but got 'truncated_norm'\."),
    ],
)
def test_variance_scaling_validates_at_construction(kwargs, match):
    with pytest.raises(ValueError, match=match):
        VarianceScaling(**kwargs)


def test_truncated_normal_with_zero_sigma_fills_the_mean():
    assert _fill(TruncatedNormal(0.0, 0.5), (3,)).tolist() == [0.5] * 3


# ---- initializer() ---------------------------------------------------------------


@pytest.mark.parametrize("bad", [None, [1, 2], np.ones(2), {}, Normal])
def test_initializer_rejects_other_init_types(bad):
    with pytest.raises(
        TypeError, match=r"For 'initializer', the 'init' should be a Tensor"
    ):
        initializer(bad, [2])


@pytest.mark.parametrize(
    "name", ["nope", "constant", "variance_scaling", "truncated_normal", "", "Ones "]
)
def test_initializer_rejects_unknown_aliases(name):
    with pytest.raises(
        ValueError, match=r"For 'initializer', the alias .* is not registered"
    ):
        initializer(name, [2])


def test_initializer_sparse_alias_needs_arguments():
    with pytest.raises(TypeError, match=r"sparsity"):
        initializer("sparse", [2, 2])


@pytest.mark.parametrize(
    "shape", [[0, 2], [-1, 2], [2.0, 2], 2.0, [np.int64(2), 2], "ab", [2, None]]
)
def test_initializer_rejects_invalid_shapes(shape):
    with pytest.raises(ValueError, match=r"For 'initializer', every item of 'shape'"):
        initializer("ones", shape)


def test_initializer_without_shape_raises_attribute_error():
    with pytest.raises(
        AttributeError, match=r"'shape' is required when 'init' is not a Tensor"
    ):
        initializer("ones")


def test_initializer_returns_a_lazy_tensor_with_the_alias_class():
    t = initializer("XavierUniform", [4, 4, 3], mstype.float16)
    assert (t.has_init, type(t.init), t.shape, t.dtype) == (
        True,
        XavierUniform,
        (4, 4, 3),
        mstype.float16,
    )


@pytest.mark.parametrize(
    "shape,expected", [(3, (3,)), ([2, 3], (2, 3)), ((), ()), ([True, 2], (1, 2))]
)
def test_initializer_normalises_shapes(shape, expected):
    assert initializer("ones", shape).shape == expected


def test_initializer_number_becomes_constant():
    t = initializer(2.5, [3], mstype.int32)
    assert (
        type(t.init) is Constant
        and t.init.value == 2.5
        and t.asnumpy().tolist() == [2, 2, 2]
    )


def test_initializer_returns_a_matching_tensor_itself():
    from spore.common.tensor import Tensor

    t = Tensor(np.ones((2, 2), np.float32))
    assert initializer(t, (2, 2), mstype.int32) is t and initializer(t, [2, 2]) is t


@pytest.mark.parametrize("shape", [[4], (2, 2, 1), None])
def test_initializer_rejects_a_tensor_of_another_shape(shape):
    from spore.common.tensor import Tensor

    with pytest.raises(ValueError, match=r"the shape of the 'init' Tensor \[2, 2\]"):
        initializer(Tensor(np.ones((2, 2), np.float32)), shape)


def test_initializer_dtype_none_is_a_value_error():
    with pytest.raises(ValueError, match=r"dtype"):
        initializer("ones", [2], None)  # pyright: ignore[reportArgumentType]


def test_initializer_dtype_string_is_a_type_error():
    with pytest.raises(TypeError, match=r"dtype"):
        initializer("ones", [2], "float32")  # pyright: ignore[reportArgumentType]


def test_lazy_tensor_slices_match_the_full_tensor():
    full = initializer(Normal(1.0), [8, 6])
    assert full.init is not None
    part = initializer(full.init, [8, 6])
    part._init_key = full._init_key  # the same tensor, materialised twice
    whole = full.init_data().asnumpy()
    assert np.array_equal(part.init_data(1, [4, 6]).asnumpy(), whole[4:])
