"""``check_replicas``: are the data-parallel replicas still equal?

Each rank reduces every Parameter (except ``layerwise_parallel`` ones) to three
numbers: a bit-exact checksum of its bytes (int64 sum of the bytes read as int32
words, weighted by position modulo a prime, so a swap of two elements also shows),
and the float64 sum and sum of absolute values of its values. One ``all_gather``
of an ``(n, 3)`` int64 table (floats travel as their bits) brings every rank's
table to every rank, which compares them. The cost is one pass over the
Parameters and a few kilobytes on the wire.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
import torch.distributed as dist

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
            lists; or on a mismatch with ``on_mismatch="raise"``.
        ValueError: If ``on_mismatch`` or a tolerance is invalid.
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
    # Row 0 describes the list itself, so ranks with different networks are told so.
    table[0, 0] = len(params)
    table[0, 1] = _name_hash(names)
    for row, param in enumerate(params, start=1):
        checksum, total, absolute = _fingerprint(param._materialized())
        table[row, 0] = checksum
        table[row, 1:] = torch.tensor([total, absolute], dtype=torch.float64).view(
            torch.int64
        )
    if dist.get_backend(group) == "nccl":  # NCCL moves only CUDA tensors
        table = table.to(torch.device("cuda", torch.cuda.current_device()))
    world = dist.get_world_size(group)
    gathered = [torch.empty_like(table) for _ in range(world)]
    dist.all_gather(gathered, table, group=group)
    if any(not torch.equal(t[0], gathered[0][0]) for t in gathered):
        raise RuntimeError(
            "For 'check_replicas', the ranks hold different Parameter lists (count or "
            f"names differ; this rank has {len(params)}). Call it on the same network "
            "on every rank."
        )
    stacked = torch.stack(gathered).cpu()[:, 1:]  # (world, n, 3)
    if rtol == 0 and atol == 0:
        same = (stacked == stacked[0]).all(dim=2).all(dim=0)
    else:
        sums = stacked[:, :, 1:].contiguous().view(torch.float64)
        reference = sums[0]
        close = (sums - reference).abs() <= atol + rtol * reference.abs()
        same = close.all(dim=2).all(dim=0)
    diverged = [name for name, ok in zip(names, same.tolist(), strict=True) if not ok]
    if diverged and on_mismatch != "ignore":
        message = (
            f"For 'check_replicas', {len(diverged)} of {len(params)} Parameters differ "
            f"across the {world} ranks: {diverged[:10]}"
            + (" ..." if len(diverged) > 10 else "")
            + ". Broadcast them from rank 0 (parameter_broadcast=True) or check "
            "that every rank's gradients are reduced; mark per-rank Parameters "
            "layerwise_parallel=True."
        )
        if on_mismatch == "raise":
            raise RuntimeError(message)
        warnings.warn(message, RuntimeWarning, stacklevel=2)
    return diverged


def _name_hash(names: list[str]) -> int:
    """A hash of the names that is equal on every rank (Python's hash() is salted)."""
    import zlib

    return zlib.crc32("\0".join(names).encode())
