"""memory_report: bytes per rank from shapes and layouts, nothing allocated."""

from __future__ import annotations

import pytest

import spore
from spore import nn
from spore.parallel import memory_report, set_layout, shard


def _lazy_net():
    spore.set_auto_parallel_context(parallel_mode="semi_auto_parallel")
    return nn.SequentialCell([nn.Dense(64, 128), nn.Dense(128, 64)])


def test_unsharded_counts_everything_on_one_rank():
    net = _lazy_net()
    report = memory_report(net, "Adam")
    n = 64 * 128 + 128 + 128 * 64 + 64
    assert (report.world, report.parameters, report.gradients, report.optimizer) == (
        1, [4 * n], [4 * n], [8 * n],
    )  # fmt: skip


def test_sharded_layouts_halve_the_split_parameters_and_stay_lazy():
    net = _lazy_net()
    shard(net[0], ((1, 1), (2, 1)), world=2)  # column parallel: weight and bias split
    shard(net[1], ((1, 2), (1, 2)), world=2)  # row parallel: bias replicated
    report = memory_report(net, "Momentum")
    expected = 4 * (64 * 128 // 2 + 128 // 2 + 128 * 64 // 2 + 64)
    assert report.parameters == [expected, expected]
    assert report.optimizer == [expected, expected]
    assert all(p.has_init for p in net.get_parameters())


def test_optimizer_sharding_splits_state_over_replicas():
    net = _lazy_net()
    set_layout(net[0].weight, [2, 2], [1, -1], opt_shard_group="opt")
    report = memory_report(net, 2)
    row = next(r for r in report.rows if r[0] == net[0].weight.name)
    assert row[3:] == (4 * 64 * 64, 4 * 64 * 64, 2 * 4 * 64 * 64 // 2)


def test_frozen_parameters_have_no_gradient_or_state():
    net = _lazy_net()
    net[0].weight.requires_grad = False
    row = next(r for r in memory_report(net).rows if r[0] == net[0].weight.name)
    assert row[4:] == (0, 0)


def test_report_matches_the_materialised_slices():
    net = _lazy_net()
    shard(net[0], ((1, 1), (2, 1)), world=2)
    shard(net[1], ((1, 2), (1, 2)), world=2)
    predicted = memory_report(net, 0).parameters[1]
    spore.parallel.init_params(net, rank=1, world=2)
    actual = sum(p.to_torch().untyped_storage().nbytes() for p in net.get_parameters())
    assert predicted == actual


def test_markdown_has_one_row_per_rank():
    net = _lazy_net()
    shard(net[0], ((1, 1), (2, 1)), world=2)
    shard(net[1], ((1, 2), (1, 2)), world=2)
    text = memory_report(net).to_markdown()
    assert text.count("\n") == 3 and text.splitlines()[3].startswith("| 1 |")


def test_unknown_optimizer_is_refused():
    with pytest.raises(ValueError, match=r"the optimizer 'Nope' is unknown"):
        memory_report(_lazy_net(), "Nope")
    assert True


def test_mixed_device_counts_are_refused():
    net = _lazy_net()
    set_layout(net[0].weight, [2], [0, -1])
    set_layout(net[1].weight, [4], [0, -1])
    with pytest.raises(ValueError, match=r"different device counts \[2, 4\]"):
        memory_report(net)
    assert True
