"""Tests for spore.Parameter (spec §4): inputs, names, attributes, printing, init_data,
set_data, autograd, clone/copy/pickle, arithmetic, hashing and set_param_ps.

Expected outputs come from the spec, the seed and the MindSpore cases 100-138.
Tests that need ``initializer`` import it inside the test.
"""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest
import torch

import spore
from spore import Parameter, Tensor
from spore import dtype as mstype
from spore.common import seed as seed_module


def _f32(*values: float) -> Tensor:
    return Tensor(np.array(values, np.float32))


@pytest.fixture
def restore_seed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Put the global seed and key counter back after a test that calls set_seed."""
    monkeypatch.setattr(seed_module, "_global_seed", seed_module._global_seed)
    monkeypatch.setattr(seed_module, "_key_counter", seed_module._key_counter)


@pytest.fixture
def ps_mode(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("MS_ROLE", "MS_WORKER")  # r1.3: PS mode needs a role
    spore.set_ps_context(enable_ps=True)
    yield
    spore.reset_ps_context()


@pytest.fixture
def parallel_mode(request: pytest.FixtureRequest):
    spore.set_auto_parallel_context(parallel_mode=request.param)
    yield request.param
    spore.reset_auto_parallel_context()


def _state(p: Parameter) -> tuple:
    """Everything a failing call must leave unchanged."""
    return (
        p.asnumpy().tolist(),
        p.shape,
        p.dtype,
        p.name,
        p.requires_grad,
        p.layerwise_parallel,
        p.parallel_optimizer,
        p.sliced,
        p.has_init,
        p.to_torch().requires_grad,
    )


# ---- default_input (spec §4.2) -----------------------------------------------------


def test_int_gives_0d_int32() -> None:
    p = Parameter(2)
    assert (p.shape, p.dtype, p.item()) == ((), mstype.int32, 2)


def test_float_gives_0d_float32() -> None:
    p = Parameter(2.0)
    assert (p.shape, p.dtype, p.item()) == ((), mstype.float32, 2.0)


@pytest.mark.parametrize("value", [True, False])
def test_bool_is_valueerror(value: bool) -> None:
    with pytest.raises(
        ValueError, match=r"For 'Parameter', the 'default_input' can not"
    ) as info:
        Parameter(value)
    assert "can not be a bool" in str(info.value)


def test_bool_is_checked_before_the_name() -> None:
    with pytest.raises(
        ValueError, match=r"the 'default_input' can not be a bool"
    ) as info:
        Parameter(True, name=3)
    assert "'name'" not in str(info.value)


@pytest.mark.parametrize(
    "value",
    [
        np.float32(2.0),
        np.float64(2.0),
        np.int64(2),
        "abc",
        None,
        (1.0, 2.0),
        {"a": 1},
        {1.0},
        1 + 2j,
    ],
    ids=repr,
)
def test_unsupported_input_is_typeerror(value) -> None:
    with pytest.raises(
        TypeError, match=r"For 'Parameter', the 'default_input' should"
    ) as info:
        Parameter(value)
    assert f"but got {type(value).__name__}." in str(info.value)


def test_tensor_input_is_copied() -> None:
    t = Tensor(np.array([[1, 2], [3, 4]], np.int32))
    p = Parameter(t, name="w")
    t.asnumpy()[0, 0] = 9
    assert (p.shape, p.dtype, p.asnumpy().tolist()) == (
        (2, 2),
        mstype.int32,
        [[1, 2], [3, 4]],
    )
    assert p.to_torch().data_ptr() != t.to_torch().data_ptr()


def test_two_parameters_from_one_tensor_are_independent() -> None:
    t = Tensor(np.zeros((2,), np.float32))
    p, q = Parameter(t, name="p"), Parameter(t, name="q")
    p.set_data(_f32(1.0, 1.0))
    assert (q.tolist(), t.tolist()) == ([0.0, 0.0], [0.0, 0.0])


def test_parameter_from_parameter_copies_data_not_flags() -> None:
    p = Parameter(_f32(1.0, 2.0), name="p", requires_grad=False)
    q = Parameter(p, name="q")
    q.set_data(_f32(3.0, 4.0))
    assert (p.tolist(), q.tolist(), q.requires_grad, p.name) == (
        [1.0, 2.0],
        [3.0, 4.0],
        True,
        "p",
    )


@pytest.mark.parametrize(
    ("array", "dtype"),
    [
        (np.array([[1.0, 2.0]], np.float32), mstype.float32),
        (np.arange(4, dtype=np.int16), mstype.int16),
        (np.array(2.0), mstype.float64),
    ],
)
def test_ndarray_input_keeps_dtype_and_shape(array: np.ndarray, dtype) -> None:
    p = Parameter(array, name="a")
    assert (p.shape, p.dtype, p.asnumpy().tolist()) == (
        array.shape,
        dtype,
        array.tolist(),
    )


def test_ndarray_input_is_copied() -> None:
    arr = np.zeros((2,), np.float32)
    p = Parameter(arr, name="a")
    arr[0] = 5.0
    assert p.tolist() == [0.0, 0.0]


@pytest.mark.parametrize(
    ("data", "dtype", "shape"),
    [([1, 2, 3], mstype.int64, (3,)), ([[0.5], [1.5]], mstype.float32, (2, 1))],
)
def test_list_input_uses_tensor_defaults(data, dtype, shape) -> None:
    p = Parameter(data, name="c")
    assert (p.dtype, p.shape, p.tolist()) == (dtype, shape, data)


def test_lazy_input_outside_lazy_scope_materialises_both() -> None:
    from spore.common.initializer import initializer

    lazy = initializer("ones", [2, 3], mstype.float16)
    p = Parameter(lazy, name="p")
    assert (p.has_init, p.init_mode, p.inited_param, lazy.has_init) == (
        False,
        None,
        None,
        False,
    )
    assert (p.dtype, p.tolist()) == (mstype.float16, [[1.0] * 3, [1.0] * 3])


def test_is_a_tensor_subclass_named_parameter() -> None:
    p = Parameter(1.0)
    assert isinstance(p, Tensor) and type(p).__name__ == "Parameter"


def test_positional_argument_order() -> None:
    p = Parameter(_f32(1.0), "pos", False, True, False)
    assert (p.name, p.requires_grad, p.layerwise_parallel, p.parallel_optimizer) == (
        "pos",
        False,
        True,
        False,
    )


def test_unknown_keyword_is_typeerror() -> None:
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'foo'") as info:
        Parameter(1.0, name="k", foo=1)
    assert "Parameter.__init__()" in str(info.value)


def test_missing_default_input_is_typeerror() -> None:
    with pytest.raises(
        TypeError, match=r"missing 1 required positional argument"
    ) as info:
        Parameter()
    assert "'default_input'" in str(info.value)


@pytest.mark.parametrize(
    "flag", ["requires_grad", "layerwise_parallel", "parallel_optimizer"]
)
@pytest.mark.parametrize("bad", [None, 1, 0, "True", [True], np.ones(1)], ids=repr)
def test_constructor_flag_must_be_bool(flag: str, bad) -> None:
    with pytest.raises(
        TypeError, match=rf"For 'Parameter', the '{flag}' should be bool"
    ) as info:
        Parameter(_f32(1.0), name="p", **{flag: bad})
    assert f"but got {type(bad).__name__}." in str(info.value)


# ---- names (spec §4.3) ---------------------------------------------------------------


@pytest.mark.parametrize("name", [None, "", "    ", "\t\n"])
def test_default_name(name) -> None:
    assert Parameter(_f32(1.0), name=name).name == "Parameter"


def test_unnamed_parameter_is_named_parameter() -> None:
    assert Parameter(_f32(1.0)).name == "Parameter"


def test_name_is_stripped() -> None:
    assert Parameter(_f32(1.0), name="  \tw \n").name == "w"


@pytest.mark.parametrize("name", ["a.b$c d", "encoder.w", "ä", "a..b", ".leading"])
def test_name_characters_are_kept(name: str) -> None:
    assert Parameter(_f32(1.0), name=name).name == name


def test_name_of_1024_characters_is_allowed() -> None:
    assert Parameter(_f32(1.0), name="x" * 1024).name == "x" * 1024


def test_name_length_is_counted_after_stripping() -> None:
    assert Parameter(_f32(1.0), name=" " + "x" * 1024 + " ").name == "x" * 1024


def test_name_of_1025_characters_is_valueerror() -> None:
    with pytest.raises(
        ValueError, match=r"For 'Parameter', the 'name' should be at most 1024"
    ) as info:
        Parameter(_f32(1.0), name="x" * 1025)
    assert "but got 1025" in str(info.value)


NON_STR_NAMES = [3, 2.5, True, ["a"], ("a",), Tensor([1]), np.array(["a"])]


@pytest.mark.parametrize("bad", NON_STR_NAMES, ids=lambda v: type(v).__name__)
def test_non_str_name_is_valueerror(bad) -> None:
    with pytest.raises(
        ValueError, match=r"For 'Parameter', the 'name' should be str or None"
    ) as info:
        Parameter(_f32(1.0), name=bad)
    assert f"but got {type(bad).__name__}." in str(info.value)


@pytest.mark.parametrize(
    "bad", [*NON_STR_NAMES, "x" * 1025], ids=lambda v: type(v).__name__
)
def test_name_setter_error_keeps_the_name(bad) -> None:
    p = Parameter(_f32(1.0), name="w")
    with pytest.raises(ValueError, match=r"For 'Parameter', the 'name' should be"):
        p.name = bad
    assert p.name == "w"


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        ("encoder.w", "encoder.w"),
        ("\tspaced\n", "spaced"),
        (None, "Parameter"),
        ("", "Parameter"),
    ],
)
def test_name_setter(value, stored: str) -> None:
    p = Parameter(_f32(1.0), name="w")
    p.name = value
    assert p.name == stored and str(p).startswith(f"Parameter (name={stored},")


# ---- attributes (spec §4.4) ----------------------------------------------------------


@pytest.mark.parametrize(
    ("attr", "default"),
    [
        ("requires_grad", True),
        ("layerwise_parallel", False),
        ("parallel_optimizer", True),
        ("sliced", False),
        ("is_init", False),
        ("inited_param", None),
        ("unique", False),
        ("comm_fusion", 1),
        ("cache_enable", False),
        ("key", -1),
        ("has_init", False),
        ("init_mode", None),
        ("init", None),
        ("is_param_ps", False),
        ("init_in_server", False),
    ],
)
def test_attribute_default(attr: str, default) -> None:
    assert getattr(Parameter(_f32(1.0), name="w"), attr) == default


def test_cache_shape_default_is_empty() -> None:
    assert list(Parameter(_f32(1.0), name="w").cache_shape) == []


def test_tensor_properties_of_parameter() -> None:
    p = Parameter(Tensor(np.ones((2, 3), np.float32)), name="w")
    assert (p.shape, p.dtype, p.size, p.ndim, p.itemsize, p.nbytes) == (
        (2, 3),
        mstype.float32,
        6,
        2,
        4,
        24,
    )


SETTER_ERRORS = [
    ("requires_grad", 1, TypeError, r"the 'requires_grad' should be bool"),
    ("requires_grad", None, TypeError, r"the 'requires_grad' should be bool"),
    (
        "layerwise_parallel",
        "yes",
        TypeError,
        r"the 'layerwise_parallel' should be bool",
    ),
    ("parallel_optimizer", 0, TypeError, r"the 'parallel_optimizer' should be bool"),
    ("cache_enable", 1, TypeError, r"the 'cache_enable' should be bool"),
    ("cache_shape", 3, TypeError, r"the 'cache_shape' should be tuple or list"),
    ("key", "a", TypeError, r"the 'key' should be int"),
    ("key", 1.5, TypeError, r"the 'key' should be int"),
    ("comm_fusion", -1, ValueError, r"the 'comm_fusion' should be >= 0"),
    ("comm_fusion", 1.5, TypeError, r"the 'comm_fusion' should be int"),
    ("comm_fusion", True, TypeError, r"the 'comm_fusion' should be int"),
]


@pytest.mark.parametrize(("attr", "value", "exc", "match"), SETTER_ERRORS)
def test_setter_check_keeps_the_value(attr: str, value, exc, match: str) -> None:
    p = Parameter(_f32(1.0), name="w")
    before = getattr(p, attr)
    with pytest.raises(exc, match=rf"For 'Parameter', {match}, but got "):
        setattr(p, attr, value)
    assert getattr(p, attr) == before


@pytest.mark.parametrize(
    ("attr", "value"),
    [
        ("requires_grad", False),
        ("layerwise_parallel", True),
        ("parallel_optimizer", False),
        ("cache_enable", True),
        ("cache_shape", (2, 3)),
        ("cache_shape", [4]),
        ("key", 5),
        ("comm_fusion", 0),
        ("comm_fusion", 7),
        ("sliced", "anything"),
        ("is_init", True),
        ("unique", True),
    ],
)
def test_setter_stores_valid_values(attr: str, value) -> None:
    p = Parameter(_f32(1.0), name="w")
    setattr(p, attr, value)
    assert getattr(p, attr) == value


def test_inited_param_is_read_only() -> None:
    p = Parameter(_f32(1.0), name="w")
    with pytest.raises(AttributeError, match=r"inited_param"):
        p.inited_param = p  # type: ignore[misc]
    assert p.inited_param is None


def test_flags_do_not_leak_between_parameters() -> None:
    a, b = Parameter(_f32(1.0), name="a"), Parameter(_f32(1.0), name="b")
    a.requires_grad, a.layerwise_parallel, a.comm_fusion, a.sliced = (
        False,
        True,
        9,
        True,
    )
    assert (b.requires_grad, b.layerwise_parallel, b.comm_fusion, b.sliced) == (
        True,
        False,
        1,
        False,
    )


# ---- str / repr / data / value (spec §4.4-4.5) ---------------------------------------


@pytest.mark.parametrize(
    ("param", "text"),
    [
        (
            Parameter(Tensor(np.zeros((3,), np.float16)), name="vec"),
            "Parameter (name=vec, shape=(3,), dtype=Float16, requires_grad=True)",
        ),
        (
            Parameter(
                Tensor(np.zeros((2, 1, 4), np.uint8)), name="cube", requires_grad=False
            ),
            "Parameter (name=cube, shape=(2, 1, 4), dtype=UInt8, requires_grad=False)",
        ),
        (
            Parameter(Tensor(np.array(True)), name="flag"),
            "Parameter (name=flag, shape=(), dtype=Bool, requires_grad=True)",
        ),
        (
            Parameter(Tensor([1, 2], mstype.int16), name="i16"),
            "Parameter (name=i16, shape=(2,), dtype=Int16, requires_grad=True)",
        ),
    ],
)
def test_str_and_repr(param: Parameter, text: str) -> None:
    assert (str(param), repr(param)) == (text, text)


def test_str_follows_requires_grad() -> None:
    p = Parameter(_f32(1.0), name="bias")
    p.requires_grad = False
    assert (
        str(p)
        == "Parameter (name=bias, shape=(1,), dtype=Float32, requires_grad=False)"
    )


def test_data_is_the_parameter_itself() -> None:
    p = Parameter(_f32(1.0, 2.0), name="w")
    assert p.data is p


def test_value_is_a_plain_tensor_sharing_storage() -> None:
    p = Parameter(_f32(1.0, 2.0), name="w")
    v = p.value()
    assert type(v) is Tensor and v.to_torch().data_ptr() == p.to_torch().data_ptr()
    assert v.tolist() == [1.0, 2.0]


# ---- init_data (spec §4.6) -----------------------------------------------------------


def _layout(dev_mat, tensor_map, slice_shape) -> tuple:
    """MindSpore's 6-item layout: dev_mat, tensor_map, slice_shape, then 3 unused."""
    return (dev_mat, tensor_map, slice_shape, 0, True, "")


@pytest.mark.parametrize(
    "layout", [None, "garbage", (1, 2), _layout([2], [0, -1], [9, 9])], ids=repr
)
def test_init_data_on_concrete_returns_self_untouched(layout) -> None:
    p = Parameter(_f32(1.0, 2.0), name="p")
    raw = p.to_torch()
    r = p.init_data(layout, set_sliced=True)
    assert (r is p, p.sliced, p.to_torch() is raw, p.tolist()) == (
        True,
        False,
        True,
        [1.0, 2.0],
    )


def _lazy_parameter(shape=(4, 6), name="w") -> Parameter:
    from spore.common.initializer import Normal, initializer

    with spore.lazy_init():
        return Parameter(
            initializer(Normal(sigma=1.0), shape, mstype.float32), name=name
        )


def _twin_full_values(p: Parameter) -> np.ndarray:
    """Full values of an identically keyed copy of a lazy Parameter's source."""
    return pickle.loads(pickle.dumps(p.init_mode)).init_data().asnumpy()


def test_lazy_scope_keeps_parameter_lazy_without_storage() -> None:
    from spore.common.initializer import initializer

    with spore.lazy_init():
        source = initializer("normal", (8, 8), mstype.float32)
        p = Parameter(source, name="w")
    assert (p.has_init, p.init_mode is source, p.is_default_input_init) == (
        True,
        True,
        True,
    )
    assert p._data is None and (p.shape, p.dtype) == ((8, 8), mstype.float32)
    assert source.has_init


@pytest.mark.parametrize(
    "parallel_mode", ["semi_auto_parallel", "auto_parallel"], indirect=True
)
def test_lazy_input_in_auto_parallel_modes_stays_lazy(parallel_mode: str) -> None:
    from spore.common.initializer import initializer

    source = initializer("ones", (2, 3), mstype.float32)
    p = Parameter(source, name="w")
    assert (p.has_init, p.init_mode is source, p.is_default_input_init) == (
        True,
        True,
        True,
    )
    assert (p._data, source.has_init) == (None, True)


@pytest.mark.parametrize(
    "parallel_mode", ["stand_alone", "data_parallel", "hybrid_parallel"], indirect=True
)
def test_lazy_input_in_other_parallel_modes_materialises(parallel_mode: str) -> None:
    from spore.common.initializer import initializer

    p = Parameter(initializer("ones", (2,), mstype.float32), name="w")
    assert (p.has_init, p.init_mode, p.tolist()) == (False, None, [1.0, 1.0])


def test_lazy_parameter_prints_without_materialising() -> None:
    p = _lazy_parameter()
    assert (
        str(p) == "Parameter (name=w, shape=(4, 6), dtype=Float32, requires_grad=True)"
    )
    assert p.has_init


def test_lazy_scope_does_not_affect_concrete_inputs() -> None:
    with spore.lazy_init():
        p = Parameter(_f32(1.0), name="w")
        q = Parameter(2.0, name="q")
    assert (p.has_init, q.has_init, p.tolist(), q.item()) == (False, False, [1.0], 2.0)


def test_lazy_init_data_matches_eager_parameter_after_same_seed(restore_seed) -> None:
    from spore.common.initializer import initializer

    spore.set_seed(11)
    with spore.lazy_init():
        lazy = Parameter(initializer("normal", (8, 8), mstype.float32), name="w")
    spore.set_seed(11)
    eager = Parameter(initializer("normal", (8, 8), mstype.float32), name="w")
    r = lazy.init_data()
    assert (r is lazy, lazy.has_init, lazy.init_mode) == (True, False, None)
    assert np.array_equal(lazy.asnumpy(), eager.asnumpy())


def test_lazy_asnumpy_matches_eager_parameter_after_same_seed(restore_seed) -> None:
    from spore.common.initializer import initializer

    spore.set_seed(12)
    with spore.lazy_init():
        lazy = Parameter(initializer("uniform", (5, 3), mstype.float32), name="w")
    spore.set_seed(12)
    eager = Parameter(initializer("uniform", (5, 3), mstype.float32), name="w")
    assert np.array_equal(lazy.asnumpy(), eager.asnumpy())
    assert not lazy.has_init


def test_materialised_lazy_parameter_tracks_gradients() -> None:
    p = _lazy_parameter()
    p.init_data()
    assert p.to_torch().requires_grad and p.to_torch().is_leaf


def test_requires_grad_set_while_lazy_applies_on_materialisation() -> None:
    p = _lazy_parameter()
    p.requires_grad = False
    p.init_data()
    assert p.to_torch().requires_grad is False


@pytest.mark.parametrize(
    ("dev_mat", "tensor_map", "block", "rows", "cols"),
    [
        ([2, 1], [1, -1], [2, 6], slice(0, 2), slice(None)),
        ([2], [-1, 0], [4, 3], slice(None), slice(0, 3)),
        ([2, 2], [1, 0], [2, 3], slice(0, 2), slice(0, 3)),
        ([4], [0, -1], [1, 6], slice(0, 1), slice(None)),
        ([2, 3], [-1, 0], [4, 2], slice(None), slice(0, 2)),
    ],
)
def test_init_data_layout_gives_rank0_block(
    dev_mat, tensor_map, block, rows, cols
) -> None:
    p = _lazy_parameter((4, 6))
    full = _twin_full_values(p)
    r = p.init_data(_layout(dev_mat, tensor_map, block), set_sliced=True)
    assert (r is p, p.shape, p.sliced, p.has_init) == (True, tuple(block), True, False)
    assert np.array_equal(p.asnumpy(), full[rows, cols])


def test_init_data_layout_without_set_sliced_leaves_sliced_false() -> None:
    p = _lazy_parameter((4, 6))
    p.init_data(_layout([2, 1], [1, -1], [2, 6]))
    assert (p.shape, p.sliced) == ((2, 6), False)


@pytest.mark.parametrize(
    ("layout", "exc", "match"),
    [
        (
            [[2, 1], [1, -1], [2, 6], 0, True, ""],
            TypeError,
            r"For 'Parameter.init_data', the 'layout' should be a tuple",
        ),
        (
            ([2, 1], [1, -1], [2, 6]),
            ValueError,
            r"For 'Parameter.init_data', the 'layout' should have at least 6",
        ),
        (
            _layout([2, 1], [1, -1], [4, 6]),
            ValueError,
            r"For 'Parameter.init_data', the layout's slice shape \(4, 6\) does not",
        ),
        (
            _layout([2, 1], [1, -1, -1], [2, 6]),
            ValueError,
            r"For 'init_data', the layout's tensor map",
        ),
    ],
)
def test_bad_layout_leaves_the_parameter_lazy(layout, exc, match: str) -> None:
    p = _lazy_parameter((4, 6))
    with pytest.raises(exc, match=match):
        p.init_data(layout)
    assert (p.has_init, p._data is None, p.shape, p.sliced) == (
        True,
        True,
        (4, 6),
        False,
    )


# ---- set_data (spec §4.7) ------------------------------------------------------------


def test_set_data_returns_self_and_copies_values() -> None:
    p = Parameter(Tensor(np.zeros((2, 2), np.float32)), name="p")
    source = Tensor(np.array([[1, 2], [3, 4]], np.float32))
    r = p.set_data(source)
    source.asnumpy()[0, 0] = 9.0
    assert (r is p, p.tolist()) == (True, [[1.0, 2.0], [3.0, 4.0]])


def test_set_data_keyword_and_flags_unchanged() -> None:
    p = Parameter(Tensor(np.zeros((2, 2), np.float32)), name="p")
    p.set_data(data=Tensor(np.full((2, 2), 0.5, np.float32)))
    assert (p.tolist(), p.sliced, p.name, p.requires_grad) == (
        [[0.5, 0.5], [0.5, 0.5]],
        False,
        "p",
        True,
    )


def test_set_data_is_in_place_on_the_same_torch_tensor() -> None:
    p = Parameter(_f32(0.0, 0.0, 0.0), name="p")
    raw, ptr = p.to_torch(), p.to_torch().data_ptr()
    p.set_data(Tensor(np.array([1.0, 2.0, 3.0])))  # float64 in: cast, still in place
    assert (p.to_torch() is raw, p.to_torch().data_ptr(), raw.tolist()) == (
        True,
        ptr,
        [1.0, 2.0, 3.0],
    )


def test_optimizer_keeps_working_after_set_data() -> None:
    p = Parameter(_f32(0.0, 0.0, 0.0), name="p")
    optimizer = torch.optim.SGD([p.to_torch()], lr=0.25)
    p.set_data(_f32(1.0, 2.0, 3.0))
    (p * p).to_torch().sum().backward()  # grad 2p; p - 0.25 * 2p = p / 2
    optimizer.step()
    assert p.tolist() == [0.5, 1.0, 1.5]


def test_set_data_keeps_requires_grad_on_the_torch_tensor() -> None:
    p = Parameter(_f32(0.0), name="p")
    p.set_data(_f32(1.0))
    assert p.to_torch().requires_grad and p.to_torch().is_leaf


@pytest.mark.parametrize(
    ("param_array", "data_array", "expected"),
    [
        (
            np.zeros(2, np.float32),
            np.array([0.25, 1e-3]),
            [0.25, 0.0010000000474974513],
        ),
        (np.zeros(2, np.float16), np.array([1.0, 2.0], np.float32), [1.0, 2.0]),
        (np.zeros(2, np.int32), np.array([1.7, -2.7], np.float32), [1, -2]),
        (np.zeros(2, np.float32), np.array([3, 4], np.int64), [3.0, 4.0]),
    ],
)
def test_set_data_casts_to_the_parameter_dtype(
    param_array, data_array, expected
) -> None:
    p = Parameter(Tensor(param_array), name="p")
    dtype = p.dtype
    p.set_data(Tensor(data_array))
    assert (p.dtype, p.tolist()) == (dtype, expected)


@pytest.mark.parametrize(
    ("initial", "value", "dtype", "expected"),
    [
        (0.5, 0.8, mstype.float32, 0.800000011920929),
        (0.5, 1, mstype.float32, 1.0),
        (0.5, True, mstype.float32, 1.0),
        (1, 2, mstype.int32, 2),
        (1, True, mstype.int32, 1),
    ],
)
def test_set_data_with_python_numbers(initial, value, dtype, expected) -> None:
    p = Parameter(initial, name="s")
    p.set_data(value)
    assert (p.dtype, p.shape, p.item()) == (dtype, (), expected)


def test_set_data_float_into_int_parameter_is_typeerror() -> None:
    p = Parameter(1, name="i")
    with pytest.raises(
        TypeError, match=r"For 'Parameter.set_data', a float can not be set"
    ) as info:
        p.set_data(1.2)
    assert "of dtype Int32; got 1.2" in str(info.value) and p.item() == 1


def test_set_data_shape_change_is_valueerror() -> None:
    p = Parameter(Tensor(np.zeros((2, 3), np.float32)), name="p")
    with pytest.raises(
        ValueError, match=r"can not change the shape of Parameter 'p'"
    ) as info:
        p.set_data(Tensor(np.ones((3, 2), np.float32)))
    assert "from (2, 3) to (3, 2)" in str(info.value) and p.shape == (2, 3)


def test_set_data_slice_shape_allows_a_new_shape_and_marks_sliced() -> None:
    p = Parameter(Tensor(np.zeros((4, 2), np.float32)), name="p")
    r = p.set_data(Tensor(np.ones((2, 2), np.float32)), slice_shape=True)
    assert (r is p, p.shape, p.sliced, p.tolist()) == (
        True,
        (2, 2),
        True,
        [[1.0] * 2] * 2,
    )


def test_set_data_positional_slice_shape() -> None:
    p = Parameter(Tensor(np.zeros((4, 2), np.float32)), name="p")
    p.set_data(Tensor(np.full((2, 2), 3.0, np.float32)), True)
    assert (p.shape, p.sliced) == ((2, 2), True)


def test_set_data_resets_sliced() -> None:
    p = Parameter(Tensor(np.zeros((4, 2), np.float32)), name="p")
    p.set_data(Tensor(np.ones((2, 2), np.float32)), slice_shape=True)
    p.set_data(Tensor(np.full((2, 2), 4.0, np.float32)))
    assert (p.shape, p.sliced, p.tolist()) == ((2, 2), False, [[4.0] * 2] * 2)


def test_set_data_after_slice_checks_against_the_new_shape() -> None:
    p = Parameter(Tensor(np.zeros((4, 2), np.float32)), name="p")
    p.set_data(Tensor(np.ones((2, 2), np.float32)), slice_shape=True)
    with pytest.raises(ValueError, match=r"from \(2, 2\) to \(4, 2\)") as info:
        p.set_data(Tensor(np.ones((4, 2), np.float32)))
    assert "slice_shape=True" in str(info.value) and p.shape == (2, 2)


def test_set_data_slice_shape_with_a_new_shape_keeps_requires_grad() -> None:
    p = Parameter(Tensor(np.zeros((4, 2), np.float32)), name="p")
    p.set_data(Tensor(np.ones((2, 2), np.float64)), slice_shape=True)
    assert (p.dtype, p.to_torch().requires_grad) == (mstype.float32, True)


def test_set_data_with_an_initializer() -> None:
    from spore.common.initializer import initializer

    p = Parameter(Tensor(np.zeros((2, 3), np.float32)), name="p")
    p.set_data(initializer("ones", [2, 3], mstype.float32))
    assert (p.has_init, p.dtype, p.tolist()) == (False, mstype.float32, [[1.0] * 3] * 2)


def test_set_data_with_a_float64_initializer_keeps_float32() -> None:
    from spore.common.initializer import initializer

    p = Parameter(Tensor(np.zeros((2, 3), np.float32)), name="p")
    p.set_data(initializer(2, [2, 3], mstype.float64))
    assert (p.has_init, p.dtype, p.tolist()) == (False, mstype.float32, [[2.0] * 3] * 2)


def test_set_data_lazy_into_lazy_stays_lazy() -> None:
    from spore.common.initializer import initializer

    p = _lazy_parameter((2, 2))
    p.set_data(initializer("ones", (2, 2), mstype.float64))
    assert (p.has_init, p._data is None, p.dtype) == (True, True, mstype.float32)
    assert p.tolist() == [[1.0, 1.0], [1.0, 1.0]]


def test_set_data_concrete_into_lazy_makes_it_concrete() -> None:
    p = _lazy_parameter((2, 2))
    p.set_data(Tensor(np.full((2, 2), 3.0, np.float32)))
    assert (p.has_init, p.init_mode, p.tolist()) == (
        False,
        None,
        [[3.0, 3.0], [3.0, 3.0]],
    )


TYPE_MESSAGE = r"For 'Parameter.set_data', the 'data' should be a Tensor, int or float"
SHAPE_MESSAGE = r"For 'Parameter.set_data', can not change the shape of Parameter 'p'"


@pytest.mark.parametrize(
    ("data", "slice_shape", "exc", "match"),
    [
        ([1.0, 2.0], False, TypeError, TYPE_MESSAGE),
        (np.ones(2, np.float32), False, TypeError, TYPE_MESSAGE),
        (None, False, TypeError, TYPE_MESSAGE),
        ("a", False, TypeError, TYPE_MESSAGE),
        ((1.0, 2.0), False, TypeError, TYPE_MESSAGE),
        (Tensor(np.ones(3, np.float32)), False, ValueError, SHAPE_MESSAGE),
        (Tensor(np.ones(3, np.float32)), 0, ValueError, SHAPE_MESSAGE),
        (5.0, False, ValueError, SHAPE_MESSAGE),
    ],
    ids=repr,
)
def test_failed_set_data_changes_nothing(data, slice_shape, exc, match: str) -> None:
    p = Parameter(_f32(1.0, 2.0), name="p", layerwise_parallel=True)
    p.sliced = True
    before, raw = _state(p), p.to_torch()
    with pytest.raises(exc, match=match):
        p.set_data(data, slice_shape)
    assert (_state(p), p.to_torch() is raw) == (before, True)


def test_failed_float_into_int_set_data_changes_nothing() -> None:
    p = Parameter(Tensor(np.array([2, 3], np.int32)), name="i")
    p.sliced = True
    before = _state(p)
    with pytest.raises(TypeError, match=r"a float can not be set into Parameter 'i'"):
        p.set_data(1.2)
    assert _state(p) == before


def test_failed_set_data_with_a_wrong_shape_initializer_changes_nothing() -> None:
    from spore.common.initializer import initializer

    p = Parameter(_f32(1.0, 2.0), name="p")
    before = _state(p)
    with pytest.raises(ValueError, match=r"can not change the shape"):
        p.set_data(initializer("ones", (3,), mstype.float32))
    assert _state(p) == before


# ---- requires_grad and autograd ------------------------------------------------------


def test_requires_grad_toggles_the_torch_flag() -> None:
    p = Parameter(_f32(1.0), name="p")
    p.requires_grad = False
    off = p.to_torch().requires_grad
    p.requires_grad = True
    assert (off, p.to_torch().requires_grad, p.requires_grad) == (False, True, True)


def test_constructor_requires_grad_false_is_not_tracked() -> None:
    p = Parameter(_f32(1.0), name="p", requires_grad=False)
    assert p.to_torch().requires_grad is False


@pytest.mark.parametrize("array", [np.array([1, 2], np.int32), np.array([True])])
def test_non_float_parameter_keeps_the_flag_but_is_not_tracked(array) -> None:
    p = Parameter(Tensor(array), name="i")
    assert (p.requires_grad, p.to_torch().requires_grad) == (True, False)


def test_int_parameter_accepts_requires_grad_toggle() -> None:
    p = Parameter(2, name="i")
    p.requires_grad = False
    p.requires_grad = True
    assert (p.requires_grad, p.to_torch().requires_grad) == (True, False)


def test_float16_parameter_is_tracked() -> None:
    assert Parameter(Tensor(np.ones(2, np.float16)), name="h").to_torch().requires_grad


def test_autograd_square_gives_twice_the_value() -> None:
    p = Parameter(_f32(1.0, -2.0, 3.0), name="p")
    (p * p).to_torch().sum().backward()
    assert p.to_torch().grad.tolist() == [2.0, -4.0, 6.0]


def test_autograd_sees_operations_through_indexing() -> None:
    p = Parameter(_f32(1.0, 2.0), name="p")
    (p[1] * 3).to_torch().backward()
    assert p.to_torch().grad.tolist() == [0.0, 3.0]


def test_frozen_parameter_gets_no_gradient() -> None:
    p = Parameter(_f32(1.0, 2.0), name="p", requires_grad=False)
    q = Parameter(_f32(3.0, 4.0), name="q")
    (p * q).to_torch().sum().backward()
    assert (p.to_torch().grad, q.to_torch().grad.tolist()) == (None, [1.0, 2.0])


def test_values_readable_after_backward() -> None:
    p = Parameter(_f32(1.0, 2.0), name="p")
    (p * p).to_torch().sum().backward()
    assert (p.tolist(), float(p[0]), str(p[1]), np.array(p).tolist()) == (
        [1.0, 2.0],
        1.0,
        "2.0",
        [1.0, 2.0],
    )


def test_setitem_on_a_tracked_parameter_is_allowed() -> None:
    p = Parameter(_f32(1.0, 2.0), name="p")
    p[0] = 5.0
    assert (p.tolist(), p.to_torch().is_leaf) == ([5.0, 2.0], True)


# ---- clone / copy (spec §4.9) --------------------------------------------------------


def _flagged() -> Parameter:
    p = Parameter(
        _f32(1.0, 2.0),
        name="w",
        requires_grad=False,
        layerwise_parallel=True,
        parallel_optimizer=False,
    )
    p.comm_fusion = 4
    p.cache_enable = True
    p.cache_shape = [8, 2]
    p.sliced = True
    p.is_init = True
    return p


def test_clone_is_a_new_parameter_with_new_storage() -> None:
    p = _flagged()
    c = p.clone()
    assert (c is p, isinstance(c, Parameter)) == (False, True)
    assert c.to_torch().data_ptr() != p.to_torch().data_ptr()


def test_clone_copies_name_flags_and_values() -> None:
    c = _flagged().clone()
    assert (
        c.name,
        c.requires_grad,
        c.layerwise_parallel,
        c.parallel_optimizer,
        c.comm_fusion,
        c.cache_enable,
        list(c.cache_shape),
        c.tolist(),
        c.dtype,
        c.shape,
    ) == ("w", False, True, False, 4, True, [8, 2], [1.0, 2.0], mstype.float32, (2,))


def test_clone_resets_is_init_and_sliced() -> None:
    c = _flagged().clone()
    assert (c.is_init, c.sliced, c.inited_param) == (False, False, None)


def test_clone_of_unnamed_keeps_default_name() -> None:
    assert Parameter(_f32(1.0)).clone().name == "Parameter"


def test_clone_requires_grad_false_is_not_tracked() -> None:
    assert _flagged().clone().to_torch().requires_grad is False


def test_clone_data_is_independent_both_ways() -> None:
    p = Parameter(_f32(1.0, 2.0), name="w")
    c = p.clone()
    c.set_data(_f32(9.0, 9.0))
    p.set_data(_f32(5.0, 6.0))
    assert (p.tolist(), c.tolist()) == ([5.0, 6.0], [9.0, 9.0])


def test_clone_names_and_flags_are_independent() -> None:
    p = Parameter(_f32(1.0, 2.0), name="w")
    c = p.clone()
    c.name, c.requires_grad = "w_clone", False
    p.name = "w2"
    assert (p.name, p.requires_grad, c.name, c.requires_grad) == (
        "w2",
        True,
        "w_clone",
        False,
    )


def test_clone_cache_shape_is_not_shared() -> None:
    p = _flagged()
    c = p.clone()
    c.cache_shape.append(5)
    assert list(p.cache_shape) == [8, 2]


@pytest.mark.parametrize(
    ("init", "expected"),
    [("ones", [1.0, 1.0]), ("zeros", [0.0, 0.0]), (3, [3.0, 3.0]), (0.5, [0.5, 0.5])],
)
def test_clone_with_init(init, expected) -> None:
    p = Parameter(_f32(1.0, 2.0), name="w")
    c = p.clone(init=init)
    assert (c.tolist(), c.dtype, c.shape, c.name, p.tolist()) == (
        expected,
        mstype.float32,
        (2,),
        "w",
        [1.0, 2.0],
    )


def test_clone_with_init_never_reads_or_copies_the_source_values(monkeypatch) -> None:
    # An optimizer's moments are clone(init="zeros") of every Parameter: the
    # source's data must not be copied just to be overwritten.
    p = Parameter(_f32(1.0, 2.0), name="w")
    read = []
    original = Parameter._materialized

    def spy(self: Parameter) -> torch.Tensor:
        read.append(self)
        return original(self)

    monkeypatch.setattr(Parameter, "_materialized", spy)
    c = p.clone(init="zeros")
    assert not any(r is p for r in read)
    monkeypatch.undo()
    c.asnumpy()[0] = 5.0  # its own storage
    assert (c.tolist(), p.tolist(), c.requires_grad) == ([5.0, 0.0], [1.0, 2.0], True)


def test_clone_with_an_initializer_instance() -> None:
    from spore.common.initializer import One

    p = Parameter(Tensor(np.zeros((2, 2), np.int32)), name="w")
    c = p.clone(init=One())
    assert (c.dtype, c.tolist()) == (mstype.int32, [[1, 1], [1, 1]])


def test_clone_with_a_same_shape_tensor() -> None:
    p = Parameter(_f32(1.0, 2.0), name="w")
    source = _f32(7.0, 8.0)
    c = p.clone(init=source)
    source.asnumpy()[0] = 0.0
    assert c.tolist() == [7.0, 8.0]


@pytest.mark.parametrize(
    ("init", "exc", "match"),
    [
        ("nope", ValueError, r"For 'initializer', the alias 'nope'"),
        (None, TypeError, r"For 'initializer', the 'init' .* but got NoneType"),
        (
            Tensor(np.ones((3,), np.float32)),
            ValueError,
            r"For 'initializer', the shape",
        ),
        ([1.0, 2.0], TypeError, r"For 'initializer', the 'init' .* but got list"),
    ],
    ids=["unknown str", "None", "wrong shape Tensor", "list"],
)
def test_clone_error_leaves_the_source_untouched(init, exc, match: str) -> None:
    p = _flagged()
    before = _state(p)
    with pytest.raises(exc, match=match):
        p.clone(init=init)
    assert _state(p) == before


def test_clone_of_a_lazy_parameter_stays_lazy_with_the_same_values() -> None:
    p = _lazy_parameter((3, 4))
    c = p.clone()
    assert (c.has_init, c._data is None) == (True, True)
    assert np.array_equal(c.asnumpy(), p.asnumpy())


def test_copy_method_is_clone() -> None:
    p = Parameter(
        Tensor(np.array([[1, 2, 3], [2, 3, 4]], np.int32)),
        name="testParameter",
        requires_grad=False,
    )
    q = p.copy()
    q.set_data(Tensor(np.zeros((2, 3), np.int32)))
    assert (q is p, q.name, q.requires_grad, p.tolist()) == (
        False,
        "testParameter",
        False,
        [[1, 2, 3], [2, 3, 4]],
    )


# ---- copy module and pickle (spec §4.10) ---------------------------------------------


@pytest.mark.parametrize(
    "duplicate", [copy.copy, lambda p: pickle.loads(pickle.dumps(p))]
)
def test_copy_and_pickle_keep_four_fields(duplicate) -> None:
    p = _flagged()
    q = duplicate(p)
    assert (
        type(q),
        q is p,
        q.name,
        q.requires_grad,
        q.layerwise_parallel,
        q.tolist(),
    ) == (
        Parameter,
        False,
        "w",
        False,
        True,
        [1.0, 2.0],
    )


@pytest.mark.parametrize(
    "duplicate", [copy.copy, lambda p: pickle.loads(pickle.dumps(p))]
)
def test_copy_and_pickle_reset_the_other_flags(duplicate) -> None:
    q = duplicate(_flagged())
    assert (
        q.parallel_optimizer,
        q.comm_fusion,
        q.sliced,
        q.is_init,
        q.cache_enable,
    ) == (
        True,
        1,
        False,
        False,
        False,
    )


@pytest.mark.parametrize(
    "duplicate", [copy.copy, copy.deepcopy, lambda p: pickle.loads(pickle.dumps(p))]
)
def test_copies_have_independent_data(duplicate) -> None:
    p = Parameter(_f32(1.0, 2.0), name="w")
    q = duplicate(p)
    q.set_data(_f32(9.0, 9.0))
    assert (p.tolist(), q.to_torch().data_ptr() != p.to_torch().data_ptr()) == (
        [1.0, 2.0],
        True,
    )


def test_deepcopy_keeps_requires_grad_and_resets_layerwise_parallel() -> None:
    q = copy.deepcopy(_flagged())
    assert (type(q), q.name, q.requires_grad, q.layerwise_parallel, q.tolist()) == (
        Parameter,
        "w",
        False,
        False,
        [1.0, 2.0],
    )


def test_deepcopy_keeps_shared_references_shared() -> None:
    p = Parameter(_f32(1.0), name="w")
    a, b = copy.deepcopy([p, p])
    assert a is b and a is not p


def test_pickle_of_a_tensor_inside_parameter_keeps_dtype() -> None:
    p = Parameter(Tensor(np.array([1, 2], np.int8)), name="i8")
    assert pickle.loads(pickle.dumps(p)).dtype is mstype.int8


# ---- arithmetic and Python protocols (spec §4.11) ------------------------------------


@pytest.mark.parametrize(
    ("op", "expected"),
    [
        (lambda a, b: a + b, [4.0, 6.0]),
        (lambda a, b: a * b, [3.0, 8.0]),
        (lambda a, b: b - a, [2.0, 2.0]),
        (lambda a, b: b / a, [3.0, 2.0]),
        (lambda a, b: a * 2, [2.0, 4.0]),
        (lambda a, b: 2 - a, [1.0, 0.0]),
        (lambda a, b: -a, [-1.0, -2.0]),
        (lambda a, b: a + _f32(1.0, 1.0), [2.0, 3.0]),
    ],
)
def test_arithmetic_returns_a_plain_tensor(op, expected) -> None:
    a, b = Parameter(_f32(1.0, 2.0), name="a"), Parameter(_f32(3.0, 4.0), name="b")
    r = op(a, b)
    assert (type(r), r.dtype, r.tolist()) == (Tensor, mstype.float32, expected)
    assert (a.tolist(), b.tolist()) == ([1.0, 2.0], [3.0, 4.0])


def test_comparisons_are_elementwise_tensors() -> None:
    a, b = Parameter(_f32(1.0, 2.0), name="a"), Parameter(_f32(3.0, 4.0), name="b")
    assert ((a > 1.5).tolist(), (a == b).tolist(), type(a == b)) == (
        [False, True],
        [False, False],
        Tensor,
    )


def test_int_parameter_plus_float_promotes() -> None:
    r = Parameter(Tensor(np.array([1, 2], np.int32)), name="i") + 0.5
    assert (r.dtype, r.tolist()) == (mstype.float32, [1.5, 2.5])


def test_len_indexing_and_iteration() -> None:
    a = Parameter(Tensor(np.array([[1.0, 2.0], [3.0, 4.0]], np.float32)), name="a")
    assert (len(a), type(a[0]), a[0].tolist(), a[1, 1].item()) == (
        2,
        Tensor,
        [1.0, 2.0],
        4.0,
    )
    assert [r.tolist() for r in a] == [[1.0, 2.0], [3.0, 4.0]]


def test_scalar_conversions() -> None:
    assert (
        float(Parameter(2.5, name="s")),
        int(Parameter(3, name="i")),
        bool(Parameter(1.0, name="t")),
    ) == (2.5, 3, True)


def test_np_array_of_parameter_is_a_copy() -> None:
    a = Parameter(_f32(1.0, 2.0), name="a")
    arr = np.array(a)
    arr[0] = 9.0
    assert (arr.tolist(), a.tolist()) == ([9.0, 2.0], [1.0, 2.0])


def test_asnumpy_writes_reach_the_parameter() -> None:
    p = Parameter(Tensor(np.zeros((3,), np.float32)), name="p")
    p.asnumpy()[1] = 5.0
    assert p.tolist() == [0.0, 5.0, 0.0]


def test_hash_is_by_identity() -> None:
    a = Parameter(_f32(1.0), name="w")
    b = Parameter(_f32(1.0), name="w")
    assert (len({a, b, a}), hash(a) == object.__hash__(a)) == (2, True)


def test_parameter_works_as_dict_key() -> None:
    a, b = Parameter(_f32(1.0), name="w"), Parameter(_f32(1.0), name="w")
    table = {a: "a", b: "b"}
    assert (table[a], table[b]) == ("a", "b")


# ---- set_param_ps (spec §4.8) --------------------------------------------------------


def test_set_param_ps_outside_ps_mode_is_runtimeerror() -> None:
    p = Parameter(_f32(1.0), name="embedding_table")
    with pytest.raises(
        RuntimeError, match=r"For 'Parameter.set_param_ps', parameter-server"
    ):
        p.set_param_ps()
    assert (p.is_param_ps, p.init_in_server) == (False, False)


def test_set_param_ps_init_in_server_outside_ps_mode_is_runtimeerror() -> None:
    p = Parameter(_f32(1.0), name="embedding_table")
    with pytest.raises(RuntimeError, match=r"parameter-server mode is off"):
        p.set_param_ps(init_in_server=True)
    assert p.is_param_ps is False


def test_set_param_ps_in_ps_mode(ps_mode) -> None:
    p = Parameter(_f32(1.0), name="w")
    p.set_param_ps()
    assert (p.is_param_ps, p.init_in_server) == (True, False)


def test_set_param_ps_init_in_server_needs_embedding_table_name(ps_mode) -> None:
    p = Parameter(_f32(1.0), name="w")
    with pytest.raises(
        RuntimeError, match=r"'init_in_server' needs a name ending with"
    ):
        p.set_param_ps(init_in_server=True)
    assert (p.is_param_ps, p.init_in_server) == (False, False)


def test_set_param_ps_init_in_server_with_embedding_table_name(ps_mode) -> None:
    p = Parameter(_f32(1.0), name="net.embedding_table")
    p.set_param_ps(init_in_server=True)
    assert (p.is_param_ps, p.init_in_server) == (True, True)


def test_ps_flags_do_not_leak_to_other_parameters(ps_mode) -> None:
    p, q = Parameter(_f32(1.0), name="p"), Parameter(_f32(1.0), name="q")
    p.set_param_ps()
    assert q.is_param_ps is False
