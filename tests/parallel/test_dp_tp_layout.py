"""Data x tensor parallel without processes: which groups a layout or a layer's
group implies, and the strategies the tensor-parallel layers accept."""

from __future__ import annotations

import numpy as np
import pytest

from spore import Tensor, nn
from spore.nn.layer.parallel_dense import _axis_of
from spore.parallel import Layout, get_layout, shard
from spore.parallel._groups import group_name, replica_partition


def test_replicas_of_a_weight_split_over_mp_are_the_dp_ranks():
    # (dp=2, mp=2): rows split over the last axis; ranks 0 and 2 hold slice 0.
    layout = Layout.create((4, 6), dev_mat=(2, 2), tensor_map=(0, -1))
    assert replica_partition(layout) == ((0, 2), (1, 3))


def test_a_replicated_layout_is_one_group_of_all_ranks():
    layout = Layout.create((6,), dev_mat=(2, 2), tensor_map=(-1,))
    assert replica_partition(layout) == ((0, 1, 2, 3),)


def test_a_fully_split_layout_has_no_replicas():
    layout = Layout.create((4, 6), dev_mat=(2, 2), tensor_map=(1, 0))
    assert replica_partition(layout) == ((0,), (1,), (2,), (3,))


def test_group_names_spell_their_ranks():
    assert group_name((1, 3)) == "spore_ranks_1_3"


def test_a_block_of_consecutive_ranks_is_the_last_axis():
    assert _axis_of([2, 3], 4, "Layer") == ([2, 2], 0)
    assert _axis_of([0, 1, 2, 3], 4, "Layer") == ([4], 0)


def test_every_second_rank_is_the_middle_axis_and_gets_its_own_slice():
    dev_mat, axis = _axis_of([1, 3], 4, "Layer")
    assert (dev_mat, axis) == ([2, 2], 1)
    # The slice a rank holds is its position in the group: rank 3 is second.
    layout = Layout.create((8, 4), dev_mat, (axis, -1))
    assert [layout.offsets(r)[0] for r in range(4)] == [0, 0, 4, 4]


def test_ranks_that_are_not_an_axis_are_refused():
    with pytest.raises(ValueError, match=r"world ranks \[0, 3\] should be one axis"):
        _axis_of([0, 3], 4, "ColumnParallelDense")
    with pytest.raises(ValueError, match=r"world ranks \[1, 2\] should be one axis"):
        _axis_of([1, 2], 4, "ColumnParallelDense")
    assert True


def test_shard_without_processes_records_the_strategy_and_keeps_the_layer_whole():
    layer = nn.ColumnParallelDense(4, 6, gather_output=False)
    assert layer.shard(((2, 1), (2, 1))) is layer
    assert layer.in_strategy == ((2, 1), (2, 1)) and layer.tp_size == 1
    assert get_layout(layer.weight) is None
    x = np.arange(8, dtype=np.float32).reshape(2, 4)
    plain = nn.Dense(4, 6)
    plain.weight.set_data(layer.weight)
    plain.bias.set_data(layer.bias)
    np.testing.assert_array_equal(
        layer(Tensor(x)).asnumpy(), plain(Tensor(x)).asnumpy()
    )


def test_parallel_shard_delegates_to_the_layer():
    layer = nn.RowParallelDense(4, 6, input_is_parallel=True)
    assert shard(layer, ((2, 2), (1, 2))) is layer
    assert layer.in_strategy == ((2, 2), (1, 2))


@pytest.mark.parametrize(
    ("layer", "strategy", "message"),
    [
        (nn.ColumnParallelDense(4, 6), ((2, 2), (2, 2)), r"Use RowParallelDense"),
        (nn.RowParallelDense(4, 6), ((2, 2), (2, 1)), r"Use ColumnParallelDense"),
        (nn.RowParallelDense(4, 6), ((2, 2), (1, 1)), r"\(\(dp, mp\), \(1, mp\)\)"),
        (nn.VocabParallelEmbedding(8, 4), ((2, 2), (2, 1)), r"vocabulary rows only"),
        (nn.ColumnParallelDense(4, 6), ((2, 1),), r"two pairs of positive ints"),
        (nn.ColumnParallelDense(4, 6), ((0, 1), (2, 1)), r"two pairs of positive"),
    ],
)
def test_strategies_of_the_wrong_form_are_refused(layer, strategy, message):
    with pytest.raises(ValueError, match=message):
        layer.shard(strategy)
    assert not hasattr(layer, "in_strategy")  # unchanged
