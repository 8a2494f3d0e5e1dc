"""Parameter broadcast from rank 0 when data-parallel training starts.

MindSpore broadcasts ``cell.parameters_broadcast_dict()`` (every Parameter except
``layerwise_parallel`` ones) once, before the first step, when
``parameter_broadcast=True``. Here the Parameters' bytes are packed into a few flat
``uint8`` buffers (at most ``bucket_mb`` each) and each buffer is broadcast with one
``torch.distributed.broadcast``; the receiving ranks copy the bytes back into the
Parameters' own torch tensors in place (so optimizers and autograd hooks keep
pointing at them). Packing bytes rather than values keeps every dtype exact (MindSpore
casts to float32 and loses int64 precision above 2**24) and needs one buffer for all
dtypes.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
import torch.distributed as dist

from spore import context as _context
from spore.common.parameter import Parameter

__all__ = ["broadcast_parameters", "parameter_broadcast"]

DEFAULT_BUCKET_MB = 64


def _as_bytes(data: torch.Tensor) -> torch.Tensor:
    flat = data.detach().reshape(-1)
    if flat.is_complex():
        flat = torch.view_as_real(flat).reshape(-1)
    return flat.view(torch.uint8)


def broadcast_parameters(
    params: Iterable[Parameter],
    src: int = 0,
    process_group: Any = None,
    bucket_mb: float = DEFAULT_BUCKET_MB,
) -> int:
    """Broadcast ``params`` from rank ``src`` in packed byte buffers.

    Args:
        params: The Parameters (lazy ones are materialised first).
        src: The rank whose values everyone takes.
        process_group: A torch ProcessGroup, None for the world.
        bucket_mb: The largest buffer, in MiB (a Parameter larger than that is
            sent alone).

    Returns:
        The number of broadcast calls made.
    """
    tensors = [param._materialized() for param in params]
    by_device: dict[torch.device, list[torch.Tensor]] = {}
    for tensor in tensors:
        if tensor.numel():
            by_device.setdefault(tensor.device, []).append(tensor)
    limit = max(1, int(bucket_mb * 2**20))
    is_source = dist.get_rank() == src
    calls = 0
    for device, group in by_device.items():
        chunk: list[torch.Tensor] = []
        size = 0
        for tensor in group + [None]:  # type: ignore[list-item]
            nbytes = 0 if tensor is None else tensor.numel() * tensor.element_size()
            if chunk and (tensor is None or size + nbytes > limit):
                _broadcast_chunk(chunk, size, device, src, process_group, is_source)
                calls += 1
                chunk, size = [], 0
            if tensor is not None:
                chunk.append(tensor)
                size += nbytes
    return calls


def _broadcast_chunk(
    chunk: list[torch.Tensor],
    size: int,
    device: torch.device,
    src: int,
    process_group: Any,
    is_source: bool,
) -> None:
    with torch.no_grad():
        if is_source:
            buffer = torch.cat([_as_bytes(t) for t in chunk])
        else:
            buffer = torch.empty(size, dtype=torch.uint8, device=device)
        dist.broadcast(buffer, src=src, group=process_group)
        if is_source:
            return
        offset = 0
        for tensor in chunk:
            count = tensor.numel() * tensor.element_size()
            piece = buffer[offset : offset + count]
            offset += count
            if tensor.is_contiguous():
                _as_bytes(tensor).copy_(piece)
            else:  # reshape(-1) would copy: fill a contiguous twin, copy it back
                twin = torch.empty_like(tensor, memory_format=torch.contiguous_format)
                _as_bytes(twin).copy_(piece)
                tensor.copy_(twin)


def parameter_broadcast(cell: Any) -> int:
    """Broadcast ``cell.parameters_broadcast_dict()`` from rank 0 when the context
    asks for it (``parameter_broadcast=True`` in data or hybrid parallel).

    Returns:
        The number of broadcast calls made (0 when nothing was sent).

    Raises:
        RuntimeError: If the communication service is not initialized.
    """
    if not (
        _context.get_auto_parallel_context("parameter_broadcast")
        and _context._is_data_parallel()
    ):
        return 0
    from spore.communication.management import _require_init

    _require_init("parameter_broadcast")
    params = cell.parameters_broadcast_dict()
    if not params or dist.get_world_size() == 1:
        return 0
    return broadcast_parameters(params.values())
