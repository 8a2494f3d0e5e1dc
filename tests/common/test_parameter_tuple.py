"""Tests for spore.ParameterTuple (spec §5): validation, names, clone(prefix, init),
prefix rules and tuple behaviour. Expected outputs come from the cases 150-163.
"""

from __future__ import annotations

import numpy as np
import pytest

from spore import Parameter, ParameterTuple, Tensor
from spore import dtype as mstype


def _param(name: str | None = None, *values: float) -> Parameter:
    data = np.array(values or (1.0,), np.float32)
    return Parameter(Tensor(data), name=name)


# ---- construction (spec §5.1) --------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [list, tuple, lambda ps: (p for p in ps), iter],
    ids=["list", "tuple", "generator", "iterator"],
)
def test_built_from_any_iterable_of_parameters(make) -> None:
    x, y = _param("x"), _param("y")
    pt = ParameterTuple(make([x, y]))
    assert (type(pt), len(pt), pt[0] is x, pt[1] is y) == (
        ParameterTuple,
        2,
        True,
        True,
    )


def test_is_a_tuple() -> None:
    assert isinstance(ParameterTuple([_param("x")]), tuple)


def test_rebuild_from_a_parameter_tuple() -> None:
    x, y = _param("x"), _param("y")
    pt = ParameterTuple([x, y])
    again = ParameterTuple(pt)
    assert (type(again), again == pt, again[0] is x) == (ParameterTuple, True, True)


@pytest.mark.parametrize(("bad", "typename"), [(5, "int"), (None, "NoneType")])
def test_non_iterable_is_typeerror(bad, typename: str) -> None:
    with pytest.raises(TypeError, match=r"object is not iterable") as info:
        ParameterTuple(bad)
    assert f"'{typename}' object" in str(info.value)


def test_missing_argument_is_typeerror() -> None:
    with pytest.raises(
        TypeError, match=r"missing 1 required positional argument"
    ) as info:
        ParameterTuple()  # type: ignore[call-arg]
    assert "'iterable'" in str(info.value)


ELEMENT = r"For 'ParameterTuple', every element should be a Parameter"


@pytest.mark.parametrize(
    ("extra", "index", "typename"),
    [
        ([Tensor([1.0])], 1, "Tensor"),
        (["a"], 1, "str"),
        ([_param("y"), 3], 2, "int"),
        ([None], 1, "NoneType"),
        ([np.ones(2)], 1, "ndarray"),
    ],
)
def test_non_parameter_element_is_named_by_index(
    extra, index: int, typename: str
) -> None:
    with pytest.raises(TypeError, match=ELEMENT) as info:
        ParameterTuple([_param("x"), *extra])
    assert f"but element {index} is a {typename}." in str(info.value)


def test_a_string_is_iterated_and_rejected() -> None:
    with pytest.raises(TypeError, match=ELEMENT) as info:
        ParameterTuple("ab")
    assert "but element 0 is a str." in str(info.value)


def test_a_bare_parameter_is_iterated_and_rejected() -> None:
    with pytest.raises(TypeError, match=ELEMENT) as info:
        ParameterTuple(_param("x", 1.0, 2.0))
    assert "but element 0 is a Tensor." in str(info.value)


def test_failed_construction_renames_nothing() -> None:
    a, b = _param(), _param()
    with pytest.raises(TypeError, match=r"element 2 is a int"):
        ParameterTuple([a, b, 3])
    assert (a.name, b.name) == ("Parameter", "Parameter")


def test_same_object_twice_is_allowed() -> None:
    x, y = _param("x"), _param("y")
    pt = ParameterTuple([x, y, x])
    assert (len(pt), pt[0] is pt[2], [p.name for p in pt]) == (3, True, ["x", "y", "x"])


def test_same_unnamed_object_twice_keeps_its_name() -> None:
    u = _param()
    pt = ParameterTuple([u, u])
    assert [p.name for p in pt] == ["Parameter", "Parameter"]


def test_explicit_duplicate_names_are_valueerror() -> None:
    a, b = _param("w"), _param("w", 0.0)
    with pytest.raises(
        ValueError, match=r"For 'ParameterTuple', the name 'w' is used by two"
    ):
        ParameterTuple([a, b])
    assert (a.name, b.name) == ("w", "w")


def test_after_renaming_a_duplicate_the_tuple_builds() -> None:
    a, b = _param("w"), _param("w")
    with pytest.raises(ValueError, match=r"the name 'w' is used by two"):
        ParameterTuple([a, b])
    b.name = "w2"
    assert [p.name for p in ParameterTuple([a, b])] == ["w", "w2"]


def test_default_named_parameters_are_renamed_in_order() -> None:
    ps = [_param(None, float(i)) for i in range(3)]
    pt = ParameterTuple(ps)
    assert [p.name for p in pt] == ["Parameter_0", "Parameter_1", "Parameter_2"]
    assert [p.name for p in ps] == ["Parameter_0", "Parameter_1", "Parameter_2"]


def test_only_default_named_parameters_are_renamed() -> None:
    a, u, b, v = _param("a"), _param(), _param("b"), _param()
    ParameterTuple([a, u, b, v])
    assert [p.name for p in (a, u, b, v)] == ["a", "Parameter_0", "b", "Parameter_1"]


def test_a_single_default_named_parameter_keeps_its_name() -> None:
    u = _param()
    ParameterTuple([_param("a"), u])
    assert u.name == "Parameter"


def test_renaming_that_would_clash_is_valueerror_and_renames_nothing() -> None:
    u, v, taken = _param(), _param(), _param("Parameter_0")
    with pytest.raises(ValueError, match=r"For 'ParameterTuple', renaming unnamed"):
        ParameterTuple([u, v, taken])
    assert (u.name, v.name) == ("Parameter", "Parameter")


def test_elements_are_the_original_objects() -> None:
    w = _param("w", 0.0, 0.0)
    pt = ParameterTuple([w])
    pt[0].set_data(Tensor(np.array([1.0, 2.0], np.float32)))
    pt[0].name = "renamed"
    assert (w.tolist(), w.name) == ([1.0, 2.0], "renamed")


# ---- str / repr ----------------------------------------------------------------------


def test_str_is_tuple_of_parameter_strs() -> None:
    x = _param("x", 1.0, 1.0)
    y = Parameter(Tensor(np.ones((3,), np.int32)), name="y")
    assert str(ParameterTuple([x, y])) == (
        "(Parameter (name=x, shape=(2,), dtype=Float32, requires_grad=True), "
        "Parameter (name=y, shape=(3,), dtype=Int32, requires_grad=True))"
    )


def test_repr_equals_str() -> None:
    pt = ParameterTuple([_param("x")])
    assert repr(pt) == str(pt)


def test_empty_prints_as_empty_tuple() -> None:
    e = ParameterTuple([])
    assert (str(e), len(e), bool(e), type(e)) == ("()", 0, False, ParameterTuple)


def test_single_element_has_trailing_comma() -> None:
    one = ParameterTuple([Parameter(Tensor(np.zeros((1,), np.float32)), name="only")])
    assert str(one) == (
        "(Parameter (name=only, shape=(1,), dtype=Float32, requires_grad=True),)"
    )


# ---- tuple behaviour -----------------------------------------------------------------


def test_slicing_gives_a_plain_tuple() -> None:
    pt = ParameterTuple([_param("a"), _param("b")])
    assert type(pt[0:1]) is tuple


def test_concatenation_gives_a_plain_tuple() -> None:
    a = _param("a")
    pt = ParameterTuple([a, _param("b")])
    assert (type(pt + (a,)), len(pt + pt)) == (tuple, 4)


def test_unpacking_and_reversed() -> None:
    a, b = _param("a"), _param("b")
    first, second = ParameterTuple([a, b])
    assert (first is a, second is b) == (True, True)
    assert [p.name for p in reversed(ParameterTuple([a, b]))] == ["b", "a"]


def test_equals_the_plain_tuple_of_its_elements() -> None:
    a, b = _param("a"), _param("b")
    pt = ParameterTuple([a, b])
    assert (pt == (a, b), tuple(pt) == (a, b)) == (True, True)


def test_membership_by_identity() -> None:
    # `c in pt` would compare values element-wise (Tensor ==); identity is explicit.
    a, b, c = _param("a"), _param("b"), _param("c")
    pt = ParameterTuple([a, b])
    assert (any(p is b for p in pt), any(p is c for p in pt)) == (True, False)


def test_a_thousand_parameters() -> None:
    params = [_param(f"layer{i}.weight", float(i)) for i in range(1000)]
    pt = ParameterTuple(params)
    assert (len(pt), pt[999].name, len({p.name for p in pt})) == (
        1000,
        "layer999.weight",
        1000,
    )


# ---- clone (spec §5.2) ---------------------------------------------------------------


def _pair() -> ParameterTuple:
    x = Parameter(
        Tensor(np.array([1.0, 2.0], np.float32)), name="x", requires_grad=False
    )
    y = Parameter(Tensor(np.array([3, 4], np.int32)), name="layer.y")
    return ParameterTuple([x, y])


def test_clone_prefixes_names() -> None:
    c = _pair().clone("moments")
    assert (type(c), [p.name for p in c]) == (
        ParameterTuple,
        ["moments.x", "moments.layer.y"],
    )


def test_clone_str() -> None:
    assert str(_pair().clone("moments")) == (
        "(Parameter (name=moments.x, shape=(2,), dtype=Float32, requires_grad=False), "
        "Parameter (name=moments.layer.y, shape=(2,), dtype=Int32, requires_grad=True))"
    )


def test_clone_makes_new_parameters_with_copied_values_and_flags() -> None:
    pt = _pair()
    c = pt.clone("m")
    assert (c[0] is pt[0], c[1] is pt[1]) == (False, False)
    assert ([p.tolist() for p in c], [p.requires_grad for p in c]) == (
        [[1.0, 2.0], [3, 4]],
        [False, True],
    )


def test_clone_keeps_original_names() -> None:
    pt = _pair()
    pt.clone("m")
    assert [p.name for p in pt] == ["x", "layer.y"]


def test_clone_is_independent_of_the_source() -> None:
    pt = _pair()
    c = pt.clone("c")
    c[0].set_data(Tensor(np.array([9.0, 9.0], np.float32)))
    c[1].name = "other"
    assert (pt[0].tolist(), pt[1].name) == ([1.0, 2.0], "layer.y")


def test_clone_twice_nests_prefixes() -> None:
    c2 = _pair().clone("moments").clone("m2")
    assert [p.name for p in c2] == ["m2.moments.x", "m2.moments.layer.y"]


def test_clone_prefix_keyword() -> None:
    assert [p.name for p in _pair().clone(prefix="a.b")] == ["a.b.x", "a.b.layer.y"]


def test_clone_with_zeros_init_keeps_dtype_and_source() -> None:
    pt = _pair()
    c = pt.clone("adam_m", init="zeros")
    assert ([p.tolist() for p in c], [p.dtype for p in c]) == (
        [[0.0, 0.0], [0, 0]],
        [mstype.float32, mstype.int32],
    )
    assert [p.tolist() for p in pt] == [[1.0, 2.0], [3, 4]]


def test_clone_of_unnamed_parameters_gives_distinct_names() -> None:
    pt = ParameterTuple([_param(None, float(i), float(i)) for i in range(3)])
    c = pt.clone("moment", init="zeros")
    names = [p.name for p in c]
    assert (len(set(names)), all(n.startswith("moment.") for n in names)) == (3, True)
    assert [p.tolist() for p in c] == [[0.0, 0.0]] * 3


def test_clone_with_invalid_init_leaves_the_source_untouched() -> None:
    pt = _pair()
    with pytest.raises(ValueError, match=r"For 'initializer', the alias 'nope'"):
        pt.clone("m", init="nope")
    assert ([p.name for p in pt], [p.tolist() for p in pt]) == (
        ["x", "layer.y"],
        [[1.0, 2.0], [3, 4]],
    )


@pytest.mark.parametrize(
    ("prefix", "name"),
    [
        ("ok", "ok.w"),
        ("_a1", "_a1.w"),
        ("1a", "1a.w"),
        ("a.", "a..w"),
        ("a.b.c", "a.b.c.w"),
        ("A_B", "A_B.w"),
        ("a\n", "a\n.w"),  # MindSpore parity: re.match with `$` accepts a final newline
    ],
)
def test_valid_prefix(prefix: str, name: str) -> None:
    pt = ParameterTuple([_param("w")])
    assert pt.clone(prefix)[0].name == name


@pytest.mark.parametrize("prefix", [".a", "a$b", "a b", "", "a-b", "ä", "a/b", " a"])
def test_invalid_prefix_is_valueerror(prefix: str) -> None:
    pt = ParameterTuple([_param("w")])
    with pytest.raises(
        ValueError, match=r"For 'ParameterTuple.clone', the 'prefix' should"
    ) as info:
        pt.clone(prefix)
    assert f"but got {prefix!r}." in str(info.value)


@pytest.mark.parametrize("prefix", [1, None, b"ab", ["a"]], ids=repr)
def test_non_str_prefix_is_typeerror(prefix) -> None:
    pt = ParameterTuple([_param("w")])
    with pytest.raises(
        TypeError, match=r"For 'ParameterTuple.clone', the 'prefix' should be str"
    ) as info:
        pt.clone(prefix)
    assert f"but got {type(prefix).__name__}." in str(info.value)


def test_missing_prefix_is_typeerror() -> None:
    pt = ParameterTuple([_param("w")])
    with pytest.raises(
        TypeError, match=r"missing 1 required positional argument"
    ) as info:
        pt.clone()  # type: ignore[call-arg]
    assert "'prefix'" in str(info.value)


def test_clone_of_a_thousand_with_zeros() -> None:
    pt = ParameterTuple(
        [_param(f"layer{i}.weight", float(i), float(i)) for i in range(1000)]
    )
    c = pt.clone("adam_m", init="zeros")
    assert (len(c), c[0].name, c[999].name, c[999].tolist(), pt[999].tolist()) == (
        1000,
        "adam_m.layer0.weight",
        "adam_m.layer999.weight",
        [0.0, 0.0],
        [999.0, 999.0],
    )
