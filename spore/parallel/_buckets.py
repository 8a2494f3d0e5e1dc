"""Which gradients share an all-reduce: MindSpore's fusion rules as bucket lists.

Note [gradient buckets]: a bucket is a list of positions in the reducer's
``parameters``; its gradients are copied into one flat buffer and all-reduced by one
call. The rules follow MindSpore's ``DistributedGradReducer``:

1. Parameters carrying different ``comm_fusion`` ids: one bucket per id, and every
   parameter with id 0 alone (MindSpore fuses equal ids and never fuses 0).
2. Else split indices (``all_reduce_fusion_config`` or ``comm_fusion`` mode
   "index") with ``fusion_type == 1``: buckets ``[0, i1)``, ``[i1, i2)``, ...,
   counted in parameter order.
3. Else everything is one fusion group, cut into buckets of about the fusion
   threshold (``comm_fusion`` mode "auto"/"size", in MB; 0 or ``fusion_type == 0``:
   every parameter alone). MindSpore's backend cuts its fused AllReduce the same way.

A bucket also holds a single buffer dtype, device and group. Buckets are listed in the
order they become complete when backward runs through the network from its last
layer to its first (descending lowest position), and are always *launched* in that
order on every rank, whatever order their gradients arrive in: collectives must be
issued in the same order everywhere.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import torch

__all__ = ["BucketPlan", "plan_buckets", "reduce_dtype"]

_HALF = (torch.float16, torch.bfloat16)


def reduce_dtype(dtype: torch.dtype, fp32_sync: bool) -> torch.dtype:
    """The dtype gradients of ``dtype`` are summed in (MindSpore casts to float32)."""
    return torch.float32 if fp32_sync and dtype in _HALF else dtype


class BucketPlan:
    """The buckets, each a list of positions in ascending order, in launch order."""

    __slots__ = ("buckets", "rule")

    def __init__(self, buckets: list[list[int]], rule: str) -> None:
        self.buckets = buckets
        self.rule = rule  # "comm_fusion", "index", "size": which rule made them

    def __repr__(self) -> str:
        return f"BucketPlan(rule={self.rule!r}, buckets={self.buckets})"


def _groups_by_fusion_id(positions: list[int], ids: list[int]) -> list[list[int]]:
    by_id: dict[int, list[int]] = {}
    singles: list[list[int]] = []
    for position, fusion_id in zip(positions, ids, strict=True):
        if fusion_id == 0:
            singles.append([position])
        else:
            by_id.setdefault(fusion_id, []).append(position)
    return list(by_id.values()) + singles


def _groups_by_index(positions: list[int], split: Sequence[int]) -> list[list[int]]:
    groups: list[list[int]] = [[] for _ in range(len(split) + 1)]
    for position in positions:
        groups[sum(1 for cut in split if position >= cut)].append(position)
    return [group for group in groups if group]


def _cut_by_size(
    group: list[int], nbytes: Sequence[int], threshold: float
) -> list[list[int]]:
    """Cut walking backward (last parameter first), so the first bucket completes
    early in the backward pass."""
    out: list[list[int]] = []
    current: list[int] = []
    size = 0
    for position in reversed(group):
        current.append(position)
        size += nbytes[position]
        if size >= threshold:
            out.append(sorted(current))
            current, size = [], 0
    if current:
        out.append(sorted(current))
    return out


def plan_buckets(
    reduced: Sequence[int],
    fusion_ids: Sequence[int],
    keys: Sequence[Hashable],
    nbytes: Sequence[int],
    *,
    fusion_type: int = 1,
    split_indices: Sequence[int] = (),
    threshold_mb: float = 25,
) -> BucketPlan:
    """Bucket the positions in ``reduced`` (See Note [gradient buckets]).

    Args:
        reduced: Positions of the parameters whose gradients are all-reduced.
        fusion_ids: ``comm_fusion`` of every parameter (indexed by position).
        keys: What a bucket's members must share, for every parameter: its
            buffer dtype and device (and, in the reducer, its group).
        nbytes: Buffer bytes of every parameter's gradient.
        fusion_type: The reducer's ``fusion_type``.
        split_indices: Parameter indices where a new bucket starts.
        threshold_mb: Bucket size for the size rule.

    Returns:
        The buckets in launch order.
    """
    positions = sorted(reduced)
    ids = [fusion_ids[p] for p in positions]
    if len(set(ids)) > 1:
        rule, groups = "comm_fusion", _groups_by_fusion_id(positions, ids)
    elif split_indices and fusion_type == 1:
        rule, groups = "index", _groups_by_index(positions, split_indices)
    else:
        rule, groups = "size", ([positions] if positions else [])
    buckets: list[list[int]] = []
    for group in groups:
        by_key: dict[Hashable, list[int]] = {}
        for position in group:
            by_key.setdefault(keys[position], []).append(position)
        for same_key in by_key.values():
            if rule != "size":
                buckets.append(same_key)
            elif fusion_type == 0 or threshold_mb <= 0:
                buckets.extend([p] for p in same_key)
            else:
                buckets.extend(_cut_by_size(same_key, nbytes, threshold_mb * 2**20))
    buckets.sort(key=lambda bucket: -bucket[0])
    return BucketPlan(buckets, rule)
