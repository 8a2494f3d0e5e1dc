"""Layout: MindSpore's layout tuple, slice-index maths, declaring shardings."""

from __future__ import annotations

import pytest

import spore
from spore import Parameter, nn
from spore.common.initializer import initializer
from spore.parallel import Layout, get_layout, set_layout, shard


# MindSpore 2.10 [E] on a (4, 8) tensor (spec §(f)): strategy and slice index per rank.
@pytest.mark.parametrize(
    ("dev_mat", "tensor_map", "strategy", "indices", "slice_shape"),
    [
        ([2], [-1, 0], (1, 2), [0, 1], (4, 4)),
        ([2], [0, -1], (2, 1), [0, 1], (2, 8)),
        ([2, 2], [1, 0], (2, 2), [0, 1, 2, 3], (2, 4)),
        ([2, 2], [0, -1], (2, 1), [0, 1, 0, 1], (2, 8)),
        ([4, 2], [1, -1], (4, 1), [0, 0, 1, 1, 2, 2, 3, 3], (1, 8)),
    ],
)
def test_slice_index_matches_mindspore(
    dev_mat, tensor_map, strategy, indices, slice_shape
):
    lay = Layout.create((4, 8), dev_mat, tensor_map)
    got = [lay.slice_index(r) for r in range(lay.device_num)]
    assert (lay.strategy, got, lay.slice_shape) == (strategy, indices, slice_shape)


def test_offsets_follow_the_slice_index():
    lay = Layout.create((4, 8), [2, 2], [1, 0])
    assert [lay.offsets(r) for r in range(4)] == [(0, 0), (0, 4), (2, 0), (2, 4)]
    assert [lay.slice_offsets(i) for i in range(4)] == [(0, 0), (0, 4), (2, 0), (2, 4)]


def test_replica_helpers():
    lay = Layout.create((4, 8), [4, 2], [1, -1])
    assert (lay.replicas, lay.slice_count, lay.ranks_of_slice(2)) == (2, 4, [4, 5])
    assert lay.first_holders() == [0, 2, 4, 6]


def test_tuple_round_trip_has_mindspore_2_10_entries():
    lay = Layout.create((4, 8), [2, 2], [1, 0], opt_shard_group="g")
    as_tuple = lay.to_tuple()
    assert as_tuple == ([2, 2], [1, 0], [2, 4], 0, True, "g", [4, 8], [2, 4])
    assert Layout.from_tuple(as_tuple) == lay
    assert isinstance(lay, tuple) and lay[0] == (2, 2)


def test_from_six_item_tuple_needs_the_full_shape():
    old = ([2], [0, -1], [2, 8], 0, True, "")
    with pytest.raises(ValueError, match=r"a 6-item layout carries no full shape"):
        Layout.from_tuple(old)
    assert Layout.from_tuple(old, full_shape=(4, 8)).slice_shape == (2, 8)


def test_opt_shard_size_is_the_replica_count():
    assert Layout.create((4, 8), [2, 2], [1, -1], "opt").opt_shard_size == 2
    assert Layout.create((4, 8), [2, 2], [1, -1]).opt_shard_size == 1


@pytest.mark.parametrize(
    ("shape", "dev_mat", "tensor_map", "world", "match"),
    [
        ((4, 8), [2], [-1, 0, -1], None,
         r"tensor map \[-1, 0, -1\] should have one entry per dimension of shape "
         r"\(4, 8\)"),
        ((4, 8), [2], [0], None, r"should have one entry per dimension"),
        ((4, 8), [2, 2], [1, 0], 2, r"has 4 devices, but the world size is 2"),
        ((4, 6), [4], [-1, 0], None,
         r"dimension 6 of shape \(4, 6\) is not divisible by the 4 devices"),
        ((4, 8), [2], [1, -1], None, r"tensor map entry 1 names no axis"),
        ((4, 8), [2, 2], [0, 0], None, r"splits two dimensions over one device axis"),
        ((4, 8), [0, 2], [0, -1], None, r"'dev_mat' should be >= 1"),
        ((4, 8), [2], [-2, 0], None, r"'tensor_map' should be >= -1"),
    ],
)  # fmt: skip
def test_bad_layouts_are_refused(shape, dev_mat, tensor_map, world, match):
    with pytest.raises(ValueError, match=match):
        Layout.create(shape, dev_mat, tensor_map, world_size=world)
    assert True


def test_set_layout_refuses_a_bad_layout_and_leaves_the_parameter_alone():
    spore.set_auto_parallel_context(parallel_mode="semi_auto_parallel")
    p = Parameter(initializer("normal", (4, 6)), name="w")
    with pytest.raises(ValueError, match=r"not divisible"):
        set_layout(p, [4], [-1, 0])
    assert get_layout(p) is None and p.has_init


def test_set_layout_checks_the_world_size():
    p = Parameter(initializer("normal", (4, 6)), name="w")
    with pytest.raises(ValueError, match=r"world size is 4"):
        set_layout(p, [2], [0, -1], world_size=4)
    assert get_layout(p) is None


def test_set_layout_takes_a_mindspore_tuple():
    p = Parameter(initializer("normal", (4, 6)), name="w")
    lay = set_layout(p, ([2], [0, -1], [2, 6], 0, True, ""))
    assert get_layout(p) == lay and lay.full_shape == (4, 6)


def test_set_layout_refuses_a_non_parameter():
    with pytest.raises(TypeError, match=r"the 'param' should be a Parameter"):
        set_layout(spore.Tensor([1.0]), [1], [-1])  # pyright: ignore[reportArgumentType]
    assert True


def test_dense_column_parallel_strategy():
    net = shard(nn.Dense(6, 4), ((1, 1), (2, 1)), world=2)
    w, b = get_layout(net.weight), get_layout(net.bias)
    assert w is not None and b is not None
    assert (w.dev_mat, w.tensor_map, w.slice_shape) == ((1, 2, 1), (1, 0), (2, 6))
    assert b.slice_shape == (2,)


def test_dense_row_parallel_strategy_replicates_the_bias():
    net = shard(nn.Dense(6, 4), ((1, 2), (1, 2)), world=2)
    w, b = get_layout(net.weight), get_layout(net.bias)
    assert w is not None and b is not None
    assert (w.slice_shape, b.slice_shape, b.replicas) == ((4, 3), (4,), 2)


def test_dense_strategy_repeats_over_spare_devices():
    net = shard(nn.Dense(6, 4), ((1, 1), (2, 1)), world=4)
    w = get_layout(net.weight)
    assert w is not None and (w.dev_mat, w.replicas) == ((2, 1, 2, 1), 2)


def test_dense_strategy_in_matmul_without_transpose_form_is_refused_with_the_fix():
    # MindSpore parity: nn.Dense is MatMul(transpose_b=True) over an (out, in)
    # weight; MindSpore's strategy check refuses ((1, 2), (2, 1)) too.
    dense = nn.Dense(6, 4)
    with pytest.raises(
        ValueError,
        match=r"must split in_channels \(k\) the same way, but got 2 and 1 .*"
        r"the same split of Dense's \(out, in\) weight is \(\(1, 2\), \(1, 2\)\)",
    ):
        shard(dense, ((1, 2), (2, 1)), world=2)
    assert get_layout(dense.weight) is None  # unchanged


def test_dense_strategy_suggested_by_the_error_splits_in_channels():
    net = shard(nn.Dense(6, 4), ((1, 2), (1, 2)), world=2)
    w = get_layout(net.weight)
    assert w is not None and w.slice_shape == (4, 3)


def test_embedding_strategy():
    net = shard(nn.Embedding(8, 4), ((2, 1),), world=2)
    lay = get_layout(net.embedding_table)
    assert lay is not None and lay.slice_shape == (4, 4)


def test_parameter_plan_on_any_cell():
    net = nn.SequentialCell([nn.Dense(6, 4), nn.Dense(4, 2)])
    names = [n for n, _ in net.parameters_and_names()]
    shard(net, parameter_plan={names[0]: (2, 1), names[2]: (1, 2)}, world=2)
    first, second = get_layout(net[0].weight), get_layout(net[1].weight)
    assert first is not None and second is not None
    assert (first.slice_shape, second.slice_shape) == ((2, 6), (2, 2))


def test_parameter_plan_with_an_unknown_name_is_a_key_error():
    with pytest.raises(KeyError, match=r"names 'nope'"):
        shard(nn.Dense(6, 4), parameter_plan={"nope": (2, 1)}, world=2)
    assert True


def test_layer_shard_methods():
    dense = nn.Dense(6, 4).shard(((1, 1), (2, 1)))
    table = nn.Embedding(8, 4).shard(((2, 1),))
    w, t = get_layout(dense.weight), get_layout(table.embedding_table)
    assert w is not None and t is not None
    assert (w.slice_shape, t.slice_shape) == ((2, 6), (4, 4))
