"""Whole tensors from sliced Parameters: what ``save_checkpoint(integrated_save=True)``
writes in (semi-)auto parallel training.

Every rank holds the slice its layout gives it; `gather_whole` all-gathers the
slices of one Parameter over the world group and puts each distinct slice (from
the lowest rank holding it) where its layout says it sits in the full tensor.
Every rank must call it for the same Parameters in the same order (it is one
collective per Parameter), as MindSpore's integrated save does. The slices travel
as bytes, so every dtype works on every backend (gloo has no bfloat16 or uint64).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist

from spore.parallel._layout import Layout, get_layout


def _box(offsets: tuple[int, ...], shape: tuple[int, ...]) -> tuple[slice, ...]:
    return tuple(slice(o, o + s) for o, s in zip(offsets, shape, strict=True))


def gather_whole(param: Any) -> torch.Tensor:
    """The full tensor of the sliced Parameter ``param``, on every rank (CPU).

    Raises:
        RuntimeError: If torch.distributed is not initialised.
        ValueError: If the Parameter's layout does not span the world, or its
            data is not the layout's slice.
    """
    layout = get_layout(param)
    assert isinstance(layout, Layout)
    if not dist.is_available() or not dist.is_initialized():
        raise RuntimeError(
            f"For 'save_checkpoint', Parameter '{param.name}' holds a slice of "
            f"shape {tuple(param.shape)} of {layout.full_shape}, and integrated_save "
            "merges slices across ranks, but torch.distributed is not initialised; "
            "call spore.communication.init() first, or pass integrated_save=False "
            "to save this rank's slices."
        )
    world = dist.get_world_size()
    if layout.device_num != world:
        raise ValueError(
            f"For 'save_checkpoint', Parameter '{param.name}' is laid out on "
            f"{layout.device_num} devices (device matrix {list(layout.dev_mat)}), "
            f"but the world has {world} ranks; integrated_save gathers over the "
            "world."
        )
    local = param._materialized().detach()
    if tuple(local.shape) != layout.slice_shape:
        raise ValueError(
            f"For 'save_checkpoint', Parameter '{param.name}' has shape "
            f"{tuple(local.shape)}, but its layout's slice shape is "
            f"{layout.slice_shape}."
        )
    flat = local.contiguous().reshape(-1).view(torch.uint8)
    parts = [torch.empty_like(flat) for _ in range(world)]
    dist.all_gather(parts, flat)
    whole = torch.empty(layout.full_shape, dtype=local.dtype)
    for rank in layout.first_holders():
        piece = parts[rank].cpu().view(local.dtype).reshape(layout.slice_shape)
        whole[_box(layout.offsets(rank), layout.slice_shape)] = piece
    return whole
