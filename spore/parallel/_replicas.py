"""``check_replicas``: are the data-parallel replicas still equal?

Each rank reduces every Parameter (except ``layerwise_parallel`` ones) to three
numbers: a bit-exact checksum of its bytes (int64 sum of the bytes read as int32
words, weighted by position modulo a prime, so a swap of two elements also shows),
and the float64 sum and sum of absolute values of its values. One ``all_gather``
of an ``(n, 3)`` int64 table (floats travel as their bits) brings every rank's
table to every rank, which compares them. The cost is one pass over the
Parameters and a few kilobytes on the wire.

Sliced Parameters (semi/auto parallel: a layout that splits the tensor, and this
rank holding its slice) legitimately differ between ranks. Each rank already has
every rank's row, so no further communication is needed: a sliced Parameter's rows
are compared only within each group of ranks that hold the same slice (its
replicas, `replica_partition` of `spore/parallel/_groups.py`: the groups the
gradient reducer sums it over, See Note [groups from layouts]); any other
Parameter across all ranks. No group is created here. Row 0 also carries a hash of
these partitions, so ranks that disagree on the layouts are told so instead of
comparing differently.
"""

from __future__ import annotations

import warnings
import zlib
from typing import Any

import torch
import torch.distributed as dist

from spore.parallel._groups import Partition, replica_partition
from spore.parallel._layout import get_layout

__all__ = ["check_replicas"]

_PRIME = 65521
_ACTIONS = ("warn", "raise", "ignore")


_CHUNK = 1 << 20  # elements per pass: bounds the temporaries to a few MiB


def _fingerprint(data: torch.Tensor) -> tuple[int, float, float]:
    flat = data.detach().reshape(-1)
    raw = torch.view_as_real(flat).reshape(-1) if flat.is_complex() else flat
    words = raw.contiguous().view(torch.uint8)
    if words.numel() % 4 == 0:
        words = words.view(torch.int32)
    checksum = torch.zeros((), dtype=torch.int64, device=raw.device)
    total = torch.zeros((), dtype=torch.float64, device=raw.device)
    absolute = torch.zeros((), dtype=torch.float64, device=raw.device)
    for start in range(0, max(words.numel(), 1), _CHUNK):
        part = words[start : start + _CHUNK].to(torch.int64)
        weights = torch.arange(start, start + part.numel(), device=raw.device)
        checksum += (part * (weights % _PRIME + 1)).sum()
    for start in range(0, raw.numel(), _CHUNK):
        values = raw[start : start + _CHUNK].to(torch.float64)
        total += values.sum()
        absolute += values.abs().sum()
    return int(checksum), float(total), float(absolute)


def _slice_partition(param: Any, world: int) -> Partition | None:
    """The replicas of each slice of ``param`` (world ranks), None if not sliced.

    A Parameter is compared per slice when its layout splits it and it holds its
    slice (``sliced``, or the slice's shape); one holding the whole tensor, or
    without a layout, is replicated on every rank.

    Raises:
        ValueError: If the layout's device matrix does not match the world size.
    """
    layout = get_layout(param)
    if layout is None or layout.slice_count == 1:
        return None
    if not (param.sliced or tuple(param.shape) == layout.slice_shape):
        return None
    if layout.device_num != world:
        raise ValueError(
            f"For 'check_replicas', the device matrix {list(layout.dev_mat)} of "
            f"Parameter '{param.name}' has {layout.device_num} devices, but the world "
            f"size is {world}."
        )
    return replica_partition(layout)


def _reference_rows(
    partitions: list[Partition | None], members: list[int]
) -> torch.Tensor:
    """``(n, len(members))``: the gathered row each rank's row is compared with.

    That is the lowest rank of ``group`` holding the same slice (the lowest rank
    of ``group`` for a replicated Parameter), as an index into ``members``.
    """
    position = {rank: i for i, rank in enumerate(members)}
    replicated = [0] * len(members)
    cache: dict[Partition, list[int]] = {}
    rows = []
    for partition in partitions:
        if partition is None:
            rows.append(replicated)
            continue
        if partition not in cache:
            ref = list(range(len(members)))
            for ranks in partition:
                mine = [position[r] for r in ranks if r in position]
                for i in mine:
                    ref[i] = mine[0]
            cache[partition] = ref
        rows.append(cache[partition])
    return torch.tensor(rows, dtype=torch.int64).reshape(len(partitions), len(members))


def _describe(
    name: str, column: list[bool], ref: list[int], members: list[int], sliced: bool
) -> str:
    """``w: rank 3 differs from rank 1 holding the same slice``."""
    by_reference: dict[int, list[int]] = {}
    for i, differs in enumerate(column):
        if differs:
            by_reference.setdefault(members[ref[i]], []).append(members[i])
    where = " holding the same slice" if sliced else ""
    parts = [
        (f"rank {ranks[0]} differs" if len(ranks) == 1 else f"ranks {ranks} differ")
        + f" from rank {first}{where}"
        for first, ranks in by_reference.items()
    ]
    return f"{name}: {', '.join(parts)}"


def check_replicas(
    net: Any,
    *,
    rtol: float = 0.0,
    atol: float = 0.0,
    on_mismatch: str = "warn",
    group: Any = None,
) -> list[str]:
    """Compare the Parameters of ``net`` across ranks; return the names that differ.

    ``layerwise_parallel`` Parameters are skipped: they are meant to differ. With
    ``rtol == atol == 0`` (the default) replicas must be bit-identical, which
    data-parallel training keeps them; otherwise the float64 sums are compared as
    ``|a - b| <= atol + rtol * |b|`` (for replicas trained on different hardware).

    Sliced Parameters (semi_auto_parallel/auto_parallel: a layout, from
    ``set_layout`` or a layer's ``shard``, splits the tensor and this rank holds
    its slice) are compared only among the ranks that hold the same slice, the
    ranks their gradient is summed over (on a ``[dp, mp]`` device matrix, a weight
    split over ``mp`` is compared among its ``dp`` replicas); a slice held by one
    rank alone is compared with nothing. Every other Parameter is compared across
    all ranks. Each rank's values are compared with those of the lowest rank
    holding the same slice (the lowest rank for a replicated Parameter), and the
    message names the ranks that differ. With ``group``, only its ranks are
    compared, each with the lowest rank of ``group`` holding the same slice.

    Args:
        net: A Cell (its ``parameters_and_names``), or an iterable of Parameters.
        rtol: Relative tolerance on the sums. Default: 0.
        atol: Absolute tolerance on the sums. Default: 0.
        on_mismatch: ``"warn"`` (a RuntimeWarning naming them), ``"raise"``
            (RuntimeError) or ``"ignore"``. Default: ``"warn"``.
        group: A spore group name or a torch ProcessGroup; None: the world.

    Returns:
        The names of the Parameters that differ on some rank, in order (the same
        list on every rank).

    Raises:
        RuntimeError: Before ``init``; if the ranks hold different Parameter
            lists (or different layouts); or on a mismatch with
            ``on_mismatch="raise"``.
        ValueError: If ``on_mismatch`` or a tolerance is invalid, or a sliced
            Parameter's device matrix does not match the world size.
    """
    from spore.communication import management

    if on_mismatch not in _ACTIONS:
        raise ValueError(
            f"For 'check_replicas', the 'on_mismatch' should be one of "
            f"{list(_ACTIONS)}, but got {on_mismatch!r}."
        )
    if rtol < 0 or atol < 0:
        raise ValueError(
            f"For 'check_replicas', 'rtol' and 'atol' should be >= 0, but got "
            f"{rtol} and {atol}."
        )
    management._require_init("check_replicas")
    if isinstance(group, str):
        group = management._process_group(group, "check_replicas")
    params = list(net.get_parameters()) if hasattr(net, "get_parameters") else list(net)
    params = [p for p in params if not p.layerwise_parallel]
    names = [p.name for p in params]
    table = torch.zeros((len(params) + 1, 3), dtype=torch.int64)
    for row, param in enumerate(params, start=1):
        checksum, total, absolute = _fingerprint(param._materialized())
        table[row, 0] = checksum
        table[row, 1:] = torch.tensor([total, absolute], dtype=torch.float64).view(
            torch.int64
        )
    # After materialising: a lazy Parameter with a layout becomes its slice.
    partitions = [_slice_partition(p, dist.get_world_size()) for p in params]
    # Row 0 describes the list itself, so ranks with different networks are told so.
    table[0, 0] = len(params)
    table[0, 1] = _name_hash(names)
    table[0, 2] = zlib.crc32(repr(partitions).encode())
    if dist.get_backend(group) == "nccl":  # NCCL moves only CUDA tensors
        table = table.to(torch.device("cuda", torch.cuda.current_device()))
    world = dist.get_world_size(group)
    members = [
        dist.get_global_rank(group, i) if group is not None else i for i in range(world)
    ]
    gathered = [torch.empty_like(table) for _ in range(world)]
    dist.all_gather(gathered, table, group=group)
    if any(not torch.equal(t[0], gathered[0][0]) for t in gathered):
        raise RuntimeError(
            "For 'check_replicas', the ranks hold different Parameter lists (count, "
            f"names or layouts differ; this rank has {len(params)}). Call it on the "
            "same network, sharded the same way, on every rank."
        )
    stacked = torch.stack(gathered).cpu()[:, 1:]  # (world, n, 3)
    ref = _reference_rows(partitions, members)  # (n, world)
    reference = stacked[ref.T, torch.arange(len(params))]  # (world, n, 3)
    if rtol == 0 and atol == 0:
        differs = (stacked != reference).any(dim=2)
    else:
        sums = stacked[:, :, 1:].contiguous().view(torch.float64)
        ref_sums = reference[:, :, 1:].contiguous().view(torch.float64)
        close = (sums - ref_sums).abs() <= atol + rtol * ref_sums.abs()
        differs = ~close.all(dim=2)
    bad = differs.any(dim=0).tolist()
    diverged = [name for name, b in zip(names, bad, strict=True) if b]
    if diverged and on_mismatch != "ignore":
        details = [
            _describe(
                names[j],
                differs[:, j].tolist(),
                ref[j].tolist(),
                members,
                partitions[j] is not None,
            )
            for j, b in enumerate(bad)
            if b
        ]
        more = " ..." if len(diverged) > 10 else ""
        message = (
            f"For 'check_replicas', {len(diverged)} of {len(params)} Parameters differ "
            f"across the {world} ranks: {diverged[:10]}{more} "
            f"({'; '.join(details[:10])}{more})"
            + ". Broadcast them from rank 0 (parameter_broadcast=True) or check "
            "that every rank's gradients are reduced (a sliced Parameter's over the "
            "ranks holding its slice); mark per-rank Parameters "
            "layerwise_parallel=True."
        )
        if on_mismatch == "raise":
            raise RuntimeError(message)
        warnings.warn(message, RuntimeWarning, stacklevel=2)
    return diverged


def _name_hash(names: list[str]) -> int:
    """A hash of the names that is equal on every rank (Python's hash() is salted)."""
    return zlib.crc32("\0".join(names).encode())
