"""Communication groups that layouts imply: who holds a slice, who splits a layer.

Note [groups from layouts]
~~~~~~~~~~~~~~~~~~~~~~~~~~
A layout partitions the ranks of its device matrix into the *replicas* of each slice
(the ranks that hold the same block). In semi-auto parallel, MindSpore sums the
gradient of a sliced Parameter over exactly those ranks (its "mirror" group): for a
``[dp, mp]`` device matrix, a weight split over ``mp`` is summed over the ``dp``
ranks holding its slice, a replicated one over all ranks. A tensor-parallel layer
splits over the other partition, the ranks of one ``mp`` block.

torch.distributed makes a group only when every process calls ``new_group`` for it,
in the same order. Every rank holds the same network, so every rank lists the same
partitions in the same order; `ensure_partition` creates every group of a partition
(``spore.communication.create_group``, named after its ranks, e.g.
``"spore_ranks_0_2"``) that does not exist yet, on every rank, and returns the one
holding this rank. A partition into one group of all ranks is the world group, and
one into single ranks needs no group at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch.distributed as dist

from spore.parallel._layout import Layout

__all__ = ["ensure_partition", "group_name", "reduce_groups", "replica_partition"]

Partition = tuple[tuple[int, ...], ...]


def replica_partition(layout: Layout) -> Partition:
    """The ranks holding each slice of ``layout``, in slice order."""
    by_slice: dict[int, list[int]] = {}
    for rank in range(layout.device_num):
        by_slice.setdefault(layout.slice_index(rank), []).append(rank)
    return tuple(tuple(by_slice[i]) for i in sorted(by_slice))


def group_name(ranks: Sequence[int]) -> str:
    """The name spore gives the group of ``ranks`` (world ranks, ascending)."""
    return "spore_ranks_" + "_".join(str(r) for r in ranks)


def ensure_partition(partition: Partition, api: str) -> tuple[str | None, int]:
    """Create the groups of ``partition`` on every rank; return this rank's.

    Every rank must call this with the same partitions in the same order (See
    Note [groups from layouts]).

    Returns:
        ``(group name, size)``: the world group's name for one group of all
        ranks, None (size 1) when this rank's group is itself alone.

    Raises:
        RuntimeError: Before ``spore.communication.init()``.
        ValueError: If the partition does not cover the world exactly.
    """
    from spore.communication import management

    management._require_init(api)
    world, rank = dist.get_world_size(), dist.get_rank()
    covered = sorted(r for ranks in partition for r in ranks)
    if covered != list(range(world)):
        raise ValueError(
            f"For '{api}', the groups {[list(g) for g in partition]} should cover the "
            f"ranks 0..{world - 1} once each, but do not."
        )
    mine = next(ranks for ranks in partition if rank in ranks)
    if len(partition) == 1:
        return management.GlobalComm.WORLD_COMM_GROUP, world
    if all(len(ranks) == 1 for ranks in partition):
        return None, 1
    for ranks in partition:
        name = group_name(ranks)
        if name not in management._groups:
            management.create_group(name, list(ranks))
    return group_name(mine), len(mine)


def reduce_groups(
    params: Sequence[Any], flags: Sequence[bool], group: str, api: str
) -> list[tuple[str | None, tuple[int, ...]]]:
    """Where each gradient is summed: ``(group name, world ranks)`` per Parameter.

    A Parameter whose layout splits it is summed over the ranks holding its slice;
    any other one over ``group``. Parameters whose flag is False get
    ``(None, ())``. The groups are created here, collectively (every rank builds
    the same reducer).

    Raises:
        ValueError: If a layout's device matrix does not match the world size, or
            a sliced Parameter is given with a ``group`` other than the world.
    """
    from spore.communication import management
    from spore.parallel._layout import get_layout

    world = dist.get_world_size()
    own = tuple(management._group_ranks(group, api))
    out: list[tuple[str | None, tuple[int, ...]]] = []
    for param, flag in zip(params, flags, strict=True):
        layout = get_layout(param) if flag else None
        if not flag:
            out.append((None, ()))
            continue
        if layout is None or layout.slice_count == 1:
            out.append((group, own))
            continue
        if layout.device_num != world:
            raise ValueError(
                f"For '{api}', the device matrix {list(layout.dev_mat)} of Parameter "
                f"'{param.name}' has {layout.device_num} devices, but the world size "
                f"is {world}."
            )
        if not management._is_world(group):
            raise ValueError(
                f"For '{api}', Parameter '{param.name}' is sliced (device matrix "
                f"{list(layout.dev_mat)}, tensor map {list(layout.tensor_map)}); its "
                "gradient is summed over the ranks that hold its slice, which needs "
                f"the world group, but 'group' is {group!r}."
            )
        partition = replica_partition(layout)
        name, _ = ensure_partition(partition, api)
        ranks = next(r for r in partition if dist.get_rank() in r)
        out.append((name, ranks))
    return out
