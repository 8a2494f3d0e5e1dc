"""Tests for spore.nn.Cell and the containers (spec §a): registration, naming,
iteration, the unique-name decision, modes, calls and lazy materialisation.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest

import spore
from spore import Parameter, ParameterTuple, Tensor, nn
from spore.common.initializer import initializer


def _p(*shape: int, name: str | None = None, requires_grad: bool = True) -> Parameter:
    return Parameter(
        Tensor(np.zeros(shape or (1,), np.float32)),
        name=name,
        requires_grad=requires_grad,
    )


def _keys(cell: nn.Cell) -> list[tuple[str, str]]:
    return [(key, p.name) for key, p in cell.parameters_and_names()]


class _Holder(nn.Cell):
    def __init__(self, **attrs) -> None:
        super().__init__()
        for name, value in attrs.items():
            setattr(self, name, value)


# ---- registration and names ----------------------------------------------------------


def test_default_named_parameter_takes_attribute_name() -> None:
    assert _keys(_Holder(w=_p())) == [("w", "w")]


def test_user_named_parameter_keeps_its_name() -> None:
    assert _keys(_Holder(w=_p(name="given"))) == [("w", "given")]


def test_sub_cell_parameters_are_named_by_path() -> None:
    outer = _Holder(layer1=_Holder(conv=nn.Dense(2, 2)))
    assert _keys(outer) == [
        ("layer1.conv.weight", "layer1.conv.weight"),
        ("layer1.conv.bias", "layer1.conv.bias"),
    ]


def test_registered_parameter_is_an_attribute_not_in_dict() -> None:
    p = _p()
    cell = _Holder(w=p)
    assert (cell.w is p, "w" in cell.__dict__) == (True, False)


def test_auto_prefix_false_keeps_child_names() -> None:
    class NoPrefix(nn.Cell):
        def __init__(self) -> None:
            super().__init__(auto_prefix=False)
            self.sub = nn.Dense(2, 2)

    assert _keys(NoPrefix()) == [("sub.weight", "weight"), ("sub.bias", "bias")]


def test_same_parameter_twice_is_listed_once() -> None:
    p = _p()
    cell = _Holder(a=p, b=p)
    assert _keys(cell) == [("a", "a")]


def test_tied_parameter_across_children_is_listed_once() -> None:
    outer = _Holder(enc=nn.Dense(2, 2), dec=nn.Dense(2, 2))
    outer.dec.weight = outer.enc.weight
    assert [k for k, _ in outer.parameters_and_names()] == [
        "enc.weight",
        "enc.bias",
        "dec.bias",
    ]


def test_two_parameters_with_one_name_are_refused_naming_both_paths() -> None:
    cell = _Holder(a=_p(name="w"))
    with pytest.raises(
        ValueError, match=r"Parameters at 'a' and 'b' are both named 'w'"
    ):
        cell.b = _p(name="w")
    assert _keys(cell) == [("a", "w")]


def test_refused_parameter_keeps_its_name_and_cell_unchanged() -> None:
    cell = _Holder(w=_p(name="b"))
    fresh = _p()
    with pytest.raises(ValueError, match=r"both named 'b'"):
        cell.b = fresh
    assert (fresh.name, "b" in cell._params, hasattr(cell, "b")) == (
        "Parameter",
        False,
        False,
    )


def test_reassigning_an_attribute_replaces_without_clash() -> None:
    cell = _Holder(a=_p(name="w"))
    cell.a = _p(2, name="w")
    assert [p.shape for p in cell.get_parameters()] == [(2,)]


def test_child_bringing_a_clash_is_refused_and_names_restored() -> None:
    cell = _Holder(x=_p(name="fc.weight"))
    dense = nn.Dense(2, 2)
    with pytest.raises(
        ValueError, match=r"'x' and 'fc.weight' are both named 'fc.weight'"
    ):
        cell.fc = dense
    assert (dense.weight.name, "fc" in cell._cells) == ("weight", False)


def test_hand_renamed_clash_is_refused_at_first_call() -> None:
    class Net(nn.Cell):
        def __init__(self) -> None:
            super().__init__()
            self.a = _p(name="a")
            self.b = _p(name="b")

        def construct(self, x):
            return x

    net = Net()
    net.b.name = "a"
    with pytest.raises(
        ValueError, match=r"Parameters at 'a' and 'b' are both named 'a'"
    ):
        net(1)
    assert net.b.name == "a"


def test_parameter_tuple_items_registered_under_their_names() -> None:
    pt = ParameterTuple([_p(name="x.y"), _p(name="z")])
    cell = _Holder(pt=pt)
    assert (_keys(cell), cell.pt is pt) == ([("x.y", "x.y"), ("z", "z")], True)


def test_parameter_tuple_unnamed_items_named_as_parameter_tuple_does() -> None:
    cell = _Holder(pt=ParameterTuple([_p(), _p()]))
    assert [k for k, _ in cell.parameters_and_names()] == ["Parameter_0", "Parameter_1"]


def test_parameter_tuple_over_a_different_parameter_is_refused() -> None:
    class Opt(nn.Cell):
        def __init__(self, params) -> None:
            super().__init__(auto_prefix=False)
            self.learning_rate = _p(name="learning_rate")
            self.parameters = ParameterTuple(params)

    with pytest.raises(ValueError, match=r"'learning_rate' is already a different"):
        Opt([_p(name="learning_rate")])
    assert True


def test_plain_list_of_parameters_is_not_registered() -> None:
    cell = _Holder(w=_p(), plist=[_p(), _p(name="in_list")])
    assert ([k for k, _ in cell.parameters_and_names()], cell.plist[1].name) == (
        ["w"],
        "in_list",
    )


def test_plain_lists_with_one_name_twice_are_refused() -> None:
    cell = _Holder(l1=[_p(name="x")])
    with pytest.raises(
        ValueError, match=r"the name 'x' already exists in list attribute 'l1'"
    ):
        cell.l2 = [_p(name="x")]
    assert not hasattr(cell, "l2")


def test_same_parameter_in_two_lists_is_accepted() -> None:
    p = _p(name="x")
    cell = _Holder(l1=[p], l2=[p])
    assert cell.l2[0] is p


def test_reassigning_a_list_attribute_frees_its_names() -> None:
    cell = _Holder(l1=[_p(name="x")])
    cell.l1 = [_p(name="x")]
    assert cell.l1[0].name == "x"


def test_tensor_assigned_to_parameter_attribute_sets_data_in_place() -> None:
    p = _p(2)
    cell = _Holder(w=p)
    cell.w = Tensor(np.ones(2, np.float32))
    assert (cell.w is p, p.asnumpy().tolist()) == (True, [1.0, 1.0])


def test_other_type_assigned_to_parameter_attribute_is_type_error() -> None:
    cell = _Holder(w=_p())
    with pytest.raises(TypeError, match=r"'w' is a Parameter attribute"):
        cell.w = 3
    assert isinstance(cell.w, Parameter)


def test_none_assigned_to_parameter_attribute_unlists_it() -> None:
    cell = _Holder(w=_p())
    cell.w = None
    assert (cell.w, list(cell.parameters_and_names())) == (None, [])


def test_non_cell_assigned_to_cell_attribute_is_type_error() -> None:
    cell = _Holder(sub=nn.ReLU())
    with pytest.raises(TypeError, match=r"'sub' is a sub-cell attribute"):
        cell.sub = 1
    assert isinstance(cell.sub, nn.ReLU)


def test_parameter_before_cell_init_is_attribute_error() -> None:
    class Early(nn.Cell):
        def __init__(self) -> None:
            self.w = _p()

    with pytest.raises(AttributeError, match=r"call Cell.__init__\(\) before"):
        Early()
    assert True


def test_delattr_unregisters_a_parameter() -> None:
    cell = _Holder(w=_p())
    del cell.w
    assert list(cell.get_parameters()) == []


# ---- insert_param_to_cell / insert_child_to_cell -------------------------------------


def test_insert_param_renames_default_name_to_key() -> None:
    cell = nn.Cell()
    cell.insert_param_to_cell("extra", _p())
    assert _keys(cell) == [("extra", "extra")]


def test_insert_param_into_attached_child_is_not_prefixed() -> None:
    outer = _Holder(child=nn.Dense(2, 2))
    outer.child.insert_param_to_cell("late", _p())
    assert _keys(outer)[-1] == ("child.late", "late")


@pytest.mark.parametrize(
    ("name", "param", "error", "match"),
    [
        ("", _p(), KeyError, r"should not be empty"),
        ("a.b", _p(), KeyError, r"should not contain '\.'"),
        ("training", _p(), KeyError, r"already exists in the network"),
        ("w", 3, TypeError, r"'param' should be a Parameter or None"),
        (5, _p(), TypeError, r"'param_name' should be str"),
    ],
)
def test_insert_param_refuses_bad_input(name, param, error, match) -> None:
    cell = nn.Cell()
    with pytest.raises(error, match=match):
        cell.insert_param_to_cell(name, param)
    assert list(cell.get_parameters()) == []


def test_insert_param_dotted_key_allowed_when_unchecked() -> None:
    cell = nn.Cell()
    cell.insert_param_to_cell("a.b", _p(), check_name_contain_dot=False)
    assert _keys(cell) == [("a.b", "a.b")]


def test_insert_child_does_not_rename() -> None:
    cell = nn.Cell()
    cell.insert_child_to_cell("fc", nn.Dense(2, 2))
    assert _keys(cell) == [("fc.weight", "weight"), ("fc.bias", "bias")]


@pytest.mark.parametrize(
    ("name", "child", "error", "match"),
    [
        (1, nn.ReLU(), TypeError, r"'child_name' should be str"),
        ("a.b", nn.ReLU(), KeyError, r"contain no '\.'"),
        ("", nn.ReLU(), KeyError, r"should be non-empty"),
        ("training", nn.ReLU(), KeyError, r"already exists in the network"),
        ("c", 3, TypeError, r"'child_cell' should be a Cell or None"),
    ],
)
def test_insert_child_refuses_bad_input(name, child, error, match) -> None:
    cell = nn.Cell()
    with pytest.raises(error, match=match):
        cell.insert_child_to_cell(name, child)
    assert list(cell.name_cells()) == []


# ---- update_parameters_name ----------------------------------------------------------


def test_update_parameters_name_uses_paths_not_names() -> None:
    outer = _Holder(head=_p(name="given"), fc=nn.Dense(2, 2))
    outer.update_parameters_name("net.")
    assert [n for _, n in _keys(outer)] == ["net.head", "net.fc.weight", "net.fc.bias"]


def test_update_parameters_name_empty_resets_to_paths() -> None:
    outer = _Holder(head=_p(name="given"))
    outer.update_parameters_name("")
    assert _keys(outer) == [("head", "head")]


def test_update_parameters_name_refuses_non_str() -> None:
    cell = _Holder(w=_p())
    with pytest.raises(TypeError, match=r"'prefix' should be str, but got int"):
        cell.update_parameters_name(1)
    assert cell.w.name == "w"


# ---- iteration -----------------------------------------------------------------------


def test_parameters_and_names_order_own_then_children() -> None:
    outer = _Holder(fc=nn.Dense(1, 1))
    outer.own = _p()
    assert [k for k, _ in outer.parameters_and_names()] == [
        "own",
        "fc.weight",
        "fc.bias",
    ]


def test_parameters_and_names_with_prefix() -> None:
    assert [k for k, _ in nn.Dense(1, 1).parameters_and_names("m")] == [
        "m.weight",
        "m.bias",
    ]


def test_get_parameters_without_expand_is_own_only() -> None:
    outer = _Holder(own=_p(), fc=nn.Dense(1, 1))
    assert [p.name for p in outer.get_parameters(expand=False)] == ["own"]


def test_trainable_and_untrainable_split_by_requires_grad() -> None:
    cell = _Holder(a=_p(), b=_p(requires_grad=False))
    assert (
        [p.name for p in cell.trainable_params()],
        [p.name for p in cell.untrainable_params()],
    ) == (
        ["a"],
        ["b"],
    )


def test_trainable_params_without_recurse() -> None:
    outer = _Holder(own=_p(), fc=nn.Dense(1, 1))
    assert [p.name for p in outer.trainable_params(recurse=False)] == ["own"]


def test_parameters_dict_is_keyed_by_name() -> None:
    outer = _Holder(head=_p(name="given"))
    assert list(outer.parameters_dict()) == ["given"]


def test_parameters_broadcast_dict_skips_layerwise_parallel() -> None:
    p = Parameter(Tensor(np.zeros(1, np.float32)), layerwise_parallel=True)
    cell = _Holder(a=_p(), lw=p)
    assert list(cell.parameters_broadcast_dict()) == ["a"]


def test_parameters_broadcast_dict_empty_is_none() -> None:
    assert nn.ReLU().parameters_broadcast_dict() is None


def test_cells_and_names_depth_first_each_cell_once() -> None:
    shared = nn.ReLU()
    outer = _Holder(a=_Holder(x=shared), b=shared)
    assert [k for k, _ in outer.cells_and_names()] == ["", "a", "a.x"]


def test_name_cells_are_direct_children() -> None:
    outer = _Holder(a=_Holder(x=nn.ReLU()), b=nn.ReLU())
    assert list(outer.name_cells()) == ["a", "b"]


def test_cells_returns_children() -> None:
    relu = nn.ReLU()
    assert list(_Holder(r=relu).cells()) == [relu]


# ---- modes, flags, calls -------------------------------------------------------------


def test_training_is_false_by_default() -> None:
    assert nn.Dense(1, 1).training is False


def test_set_train_is_recursive_and_returns_self() -> None:
    outer = _Holder(a=_Holder(b=nn.ReLU()))
    out = outer.set_train()
    assert (out is outer, outer.a.b.training) == (True, True)


def test_set_train_false_switches_back() -> None:
    outer = _Holder(a=nn.ReLU()).set_train()
    outer.set_train(False)
    assert outer.a.training is False


def test_set_train_refuses_non_bool() -> None:
    with pytest.raises(TypeError, match=r"'mode' should be bool, but got int"):
        nn.ReLU().set_train(1)
    assert True


def test_cell_refuses_non_bool_auto_prefix() -> None:
    with pytest.raises(TypeError, match=r"'auto_prefix' should be bool, but got str"):
        nn.Cell(auto_prefix="yes")
    assert True


def test_flags_are_stored() -> None:
    cell = nn.Cell(flags={"fast": True})
    assert cell.get_flags() == {"fast": True}


def test_base_construct_is_attribute_error() -> None:
    with pytest.raises(AttributeError, match=r"'construct' is not defined"):
        nn.Cell()(1)
    assert True


def test_call_runs_construct() -> None:
    class Double(nn.Cell):
        def construct(self, x):
            return x * 2

    assert Double()(3) == 6


def test_parameters_materialise_on_first_call() -> None:
    class Net(nn.Cell):
        def __init__(self) -> None:
            super().__init__()
            self.w = Parameter(initializer("ones", (2,)), name="w")

        def construct(self, x):
            return x

    with spore.lazy_init():
        net = Net()
    lazy_before = net.w.has_init
    net(0)
    assert (lazy_before, net.w.has_init, net.w.asnumpy().tolist()) == (
        True,
        False,
        [1.0, 1.0],
    )


def test_repr_lists_children() -> None:
    assert "(fc): Dense<" in repr(_Holder(fc=nn.Dense(1, 1)))


# ---- containers ----------------------------------------------------------------------


def test_sequential_cell_keys_are_positions() -> None:
    seq = nn.SequentialCell([nn.Dense(3, 4), nn.ReLU(), nn.Dense(4, 2)])
    assert [k for k, _ in seq.parameters_and_names()] == [
        "0.weight",
        "0.bias",
        "2.weight",
        "2.bias",
    ]


def test_sequential_cell_from_varargs() -> None:
    seq = nn.SequentialCell(nn.Dense(1, 1), nn.ReLU())
    assert len(seq) == 2


def test_sequential_cell_from_ordered_dict_uses_keys() -> None:
    seq = nn.SequentialCell(OrderedDict([("fc", nn.Dense(1, 1)), ("act", nn.ReLU())]))
    assert list(seq.name_cells()) == ["fc", "act"]


def test_sequential_cell_runs_cells_in_order() -> None:
    class Add(nn.Cell):
        def __init__(self, v) -> None:
            super().__init__()
            self.v = v

        def construct(self, x):
            return x * 10 + self.v

    assert nn.SequentialCell([Add(1), Add(2)])(0) == 12


def test_sequential_cell_negative_index() -> None:
    relu = nn.ReLU()
    assert nn.SequentialCell([nn.Dense(1, 1), relu])[-1] is relu


def test_sequential_cell_index_out_of_range() -> None:
    with pytest.raises(
        IndexError, match=r"index should be in range \[-1, 1\), but got 1"
    ):
        nn.SequentialCell([nn.ReLU()])[1]
    assert True


def test_sequential_cell_refuses_non_cell() -> None:
    with pytest.raises(TypeError, match=r"item 1 should be a Cell, but got int"):
        nn.SequentialCell([nn.ReLU(), 3])
    assert True


def test_sequential_cell_append_after_attach_gets_full_path() -> None:
    outer = _Holder(features=nn.SequentialCell([nn.Dense(1, 1)]))
    outer.features.append(nn.Dense(1, 1))
    assert _keys(outer)[-1] == ("features.1.bias", "features.1.bias")


def test_sequential_cell_slice_keeps_names() -> None:
    seq = nn.SequentialCell([nn.ReLU(), nn.Dense(1, 1)])
    part = seq[1:]
    assert (len(part), part[0].weight.name) == (1, "1.weight")


def test_cell_list_append_after_attach_gets_full_path() -> None:
    outer = _Holder(blocks=nn.CellList([nn.Dense(1, 1)]))
    outer.blocks.append(nn.Dense(1, 2))
    assert _keys(outer)[-1] == ("blocks.1.bias", "blocks.1.bias")


def test_cell_list_auto_prefix_false_renamed_by_prefixing_parent() -> None:
    outer = _Holder(raw=nn.CellList([nn.Dense(1, 1)], auto_prefix=False))
    assert _keys(outer)[0] == ("raw.0.weight", "raw.0.weight")


def test_cell_list_insert_renumbers_and_renames() -> None:
    blocks = nn.CellList([nn.Dense(1, 1)])
    blocks.insert(0, nn.Dense(1, 2))
    assert [n for _, n in _keys(blocks)] == ["0.weight", "0.bias", "1.weight", "1.bias"]


def test_cell_list_extend_and_len() -> None:
    blocks = nn.CellList()
    blocks.extend([nn.ReLU(), nn.Tanh()])
    assert (len(blocks), type(blocks[1]).__name__) == (2, "Tanh")


def test_cell_list_setitem_replaces() -> None:
    blocks = nn.CellList([nn.ReLU()])
    blocks[0] = nn.Dense(1, 1)
    assert _keys(blocks) == [("0.weight", "0.weight"), ("0.bias", "0.bias")]


def test_cell_list_delitem_renumbers() -> None:
    blocks = nn.CellList([nn.ReLU(), nn.Dense(1, 1)])
    del blocks[0]
    assert _keys(blocks) == [("0.weight", "0.weight"), ("0.bias", "0.bias")]


def test_cell_list_iterates_cells() -> None:
    relu, tanh = nn.ReLU(), nn.Tanh()
    assert list(nn.CellList([relu, tanh])) == [relu, tanh]


def test_cell_list_append_refuses_non_cell() -> None:
    blocks = nn.CellList()
    with pytest.raises(TypeError, match=r"For 'CellList', the 'cell' should be a Cell"):
        blocks.append(1)
    assert len(blocks) == 0


def test_cell_list_without_prefix_refuses_clashing_children() -> None:
    # Decision (issue 3): two Denses both named 'weight' clash at registration.
    blocks = nn.CellList([nn.Dense(1, 1)], auto_prefix=False)
    with pytest.raises(
        ValueError, match=r"'0.weight' and '1.weight' are both named 'weight'"
    ):
        blocks.append(nn.Dense(1, 1))
    assert len(blocks) == 1


def test_deleting_a_parameter_tuple_attribute_unregisters_its_items() -> None:
    cell = _Holder(pt=ParameterTuple([_p(name="x")]), w=_p())
    del cell.pt
    assert [k for k, _ in cell.parameters_and_names()] == ["w"]
