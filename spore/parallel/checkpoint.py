"""Sliced checkpoints: per-rank files, strategy files, merging and N -> M resharding.

Each rank writes its own slices with ``spore.save_checkpoint`` (the public API, so
the files are ordinary ``.ckpt``/``.safetensors``); the layouts go to a strategy file
(JSON shaped like MindSpore's ``ParallelStrategyMap``, with the full shape added).
`load_distributed_checkpoint` fills each Parameter of a network laid out for any
number of ranks (1 included) from files written by any other number: for every
local slice it copies, from each source slice that overlaps it, just the overlap,
straight into the local slice. The source files are mapped, not read
(`spore.train._ckpt_boxes`), so a rank holds its own slices and nothing more; only
a source tensor that cannot be mapped as one range (``SPORE_CKPT_MMAP=0``, or a
slice over 512 MiB in a file MindSpore wrote) is read whole, one at a time.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

import torch

from spore.common.parameter import Parameter
from spore.common.tensor import Tensor
from spore.parallel._layout import Layout, get_layout

__all__ = [
    "build_searched_strategy",
    "load_distributed_checkpoint",
    "merge_sliced_parameter",
    "save_sliced_checkpoint",
    "save_strategy",
]

_FORMAT = "spore.parallel_strategy.v1"


def _layouts_of(net: Any) -> dict[str, Layout]:
    return {
        p.name: lay for p in net.get_parameters() if (lay := get_layout(p)) is not None
    }


def save_strategy(net_or_layouts: Any, strategy_file: str | os.PathLike[str]) -> None:
    """Write the layouts of a Cell's Parameters (or a ``{name: Layout}``) as JSON.

    The JSON mirrors MindSpore's ``ParallelStrategyMap`` (``parallel_layout_item``
    with ``dev_matrix``, ``tensor_map``, ``param_split_shape``...) plus
    ``full_shape``, which spore needs to reshard without the network.
    """
    layouts = (
        dict(net_or_layouts)
        if isinstance(net_or_layouts, dict)
        else _layouts_of(net_or_layouts)
    )
    items = []
    for name, layout in layouts.items():
        lay = layout if isinstance(layout, Layout) else Layout.from_tuple(layout)
        items.append({
            "param_name": name,
            "parallel_layouts": {
                "dev_matrix": [{"dim": list(lay.dev_mat)}],
                "tensor_map": [{"dim": list(lay.tensor_map)}],
                "param_split_shape": [],
                "indices_offset": [],
                "field": lay.field_size,
                "opt_weight_shard_step": 0,
                "opt_weight_shard_size": 0,
                "opt_shard_group": lay.opt_shard_group,
                "full_shape": list(lay.full_shape),
            },
        })  # fmt: skip
    tmp = os.fspath(strategy_file) + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(
            {"format": _FORMAT, "current_stage": 0, "parallel_layout_item": items}, f
        )
    os.replace(tmp, strategy_file)


def build_searched_strategy(
    strategy_filename: str | os.PathLike[str],
) -> dict[str, Layout]:
    """Read a strategy file written by `save_strategy`: ``{param_name: Layout}``.

    MindSpore returns its protobuf ``ParallelLayouts``; spore returns `Layout`,
    which carries the same device matrix and tensor map (and the full shape).

    Raises:
        TypeError: If ``strategy_filename`` is not a str or path.
        ValueError: If the file is missing or not a spore strategy file.
    """
    if not isinstance(strategy_filename, (str, os.PathLike)):
        raise TypeError(
            "For 'build_searched_strategy', the 'strategy_filename' should be str, but "
            f"got {type(strategy_filename).__name__}."
        )
    path = os.fspath(strategy_filename)
    if not os.path.isfile(path):
        raise ValueError(
            f"For 'build_searched_strategy', the strategy file '{path}' does not exist."
        )
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
        out = {}
        for item in doc["parallel_layout_item"]:
            lay = item["parallel_layouts"]
            out[item["param_name"]] = Layout.create(
                lay["full_shape"], lay["dev_matrix"][0]["dim"],
                lay["tensor_map"][0]["dim"], lay.get("opt_shard_group", ""),
            )  # fmt: skip
    except (ValueError, KeyError, TypeError, IndexError) as err:
        raise ValueError(
            f"For 'build_searched_strategy', '{path}' is not a strategy file written "
            f"by spore.parallel.save_strategy: {err}"
        ) from err
    return out


def save_sliced_checkpoint(
    net: Any,
    directory: str | os.PathLike[str],
    rank: int | None = None,
    format: str = "ckpt",
) -> str:
    """Save this rank's slices as ``rank_{rank}.{format}`` in ``directory``, and the
    strategy as ``strategy.json`` (written by every rank; they are identical).

    Returns:
        The checkpoint's path.
    """
    from spore.train.serialization import save_checkpoint

    if rank is None:
        rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(os.fspath(directory), f"rank_{rank}.{format}")
    save_checkpoint(net, path, integrated_save=False, format=format)
    strategy = os.path.join(os.fspath(directory), "strategy.json")
    save_strategy(net, f"{strategy}.{rank}")
    os.replace(f"{strategy}.{rank}", strategy)
    return path


def _index(offsets: Sequence[int], shape: Sequence[int]) -> tuple[slice, ...]:
    return tuple(slice(o, o + s) for o, s in zip(offsets, shape, strict=True))


def merge_sliced_parameter(
    sliced_parameters: list[Parameter], strategy: dict[str, Any] | None = None
) -> Parameter:
    """Put the slices of one Parameter (in rank order) back into the whole.

    Args:
        sliced_parameters: One Parameter per rank, in rank order.
        strategy: ``{name: Layout or layout tuple}`` (e.g. from
            `build_searched_strategy`); None concatenates along axis 0, as
            MindSpore does.

    Returns:
        A Parameter with the full tensor, the name and flags of the first slice.

    Raises:
        TypeError: If ``sliced_parameters`` is not a list of Parameters.
        ValueError: If it is empty, the names, ranks or shapes disagree, or the
            count is not the device matrix's.
        KeyError: If the name is not in ``strategy``.
    """
    if not isinstance(sliced_parameters, list):
        raise TypeError(
            "For 'merge_sliced_parameter', the 'sliced_parameters' should be a list, "
            f"but got {type(sliced_parameters).__name__}."
        )
    if not sliced_parameters:
        raise ValueError(
            "For 'merge_sliced_parameter', the 'sliced_parameters' is empty."
        )
    for p in sliced_parameters:
        if not isinstance(p, Parameter):
            raise TypeError(
                "For 'merge_sliced_parameter', every slice should be a Parameter, but "
                f"got {type(p).__name__}."
            )
    first = sliced_parameters[0]
    for p in sliced_parameters[1:]:
        if p.name != first.name:
            raise ValueError(
                "For 'merge_sliced_parameter', all slices should have one name, but "
                f"got {first.name!r} and {p.name!r}."
            )
        if len(p.shape) != len(first.shape) or p.shape[1:] != first.shape[1:]:
            raise ValueError(
                f"For 'merge_sliced_parameter', the slices of {first.name!r} should "
                "agree in rank and trailing shape, but got "
                f"{first.shape} and {p.shape}."
            )
    values = [p.to_torch().detach() for p in sliced_parameters]
    if strategy is None:
        merged = torch.cat(values, 0)
    else:
        if first.name not in strategy:
            raise KeyError(
                f"For 'merge_sliced_parameter', the parameter {first.name!r} is not in "
                "the strategy."
            )
        lay = strategy[first.name]
        if not isinstance(lay, Layout):
            lay = Layout.from_tuple(lay)
        if len(values) != lay.device_num:
            raise ValueError(
                f"For 'merge_sliced_parameter', the device matrix {list(lay.dev_mat)} "
                f"needs {lay.device_num} slices of {first.name!r}, but got "
                f"{len(values)}."
            )
        merged = torch.empty(lay.full_shape, dtype=values[0].dtype)
        for rank in lay.first_holders():
            merged[_index(lay.offsets(rank), lay.slice_shape)] = values[rank]
    out = Parameter(Tensor.from_torch(merged), name=first.name,
                    requires_grad=first.requires_grad,
                    layerwise_parallel=first.layerwise_parallel)  # fmt: skip
    return out


def _source_layout(
    name: str, shape: tuple[int, ...], layouts: dict[str, Layout]
) -> Layout:
    lay = layouts.get(name)
    if lay is None:  # not sharded when saved: every file holds all of it
        return Layout.create(shape, [1], [-1] * len(shape))
    return lay


def _copy_overlap(
    source: Any, name: str, box: tuple[slice, ...], out: torch.Tensor,
    dest: tuple[slice, ...],
) -> None:  # fmt: skip
    """``out[dest] = source tensor name[box]``, reading only that box."""
    source.copy_box(name, box, out, dest)


def _shifted(box: list[tuple[int, int]], origin: Sequence[int]) -> tuple[slice, ...]:
    """``box`` (global [start, stop) per dim) in coordinates starting at ``origin``."""
    return tuple(slice(a - o, b - o) for (a, b), o in zip(box, origin, strict=True))


def load_distributed_checkpoint(
    network: Any,
    checkpoint_filenames: Sequence[str | os.PathLike[str]],
    predict_strategy: dict[str, Any] | None = None,
    train_strategy_filename: str | os.PathLike[str] | None = None,
    strict_load: bool = False,
    rank: int | None = None,
) -> list[str]:
    """Load checkpoints written by N ranks into ``network`` laid out for M ranks.

    For each Parameter the target slice is its layout's block for ``rank``
    (``predict_strategy[name]``, else the layout declared on it, else the whole
    tensor); it is filled from the overlapping slices of the source files, read
    one Parameter of one file at a time. A lazy Parameter is never materialised
    whole. See the module docstring.

    Args:
        network: The Cell to fill.
        checkpoint_filenames: The source files, in rank order (one per training
            rank; ``.ckpt`` or ``.safetensors``).
        predict_strategy: ``{name: Layout or layout tuple}`` for the target.
        train_strategy_filename: The strategy file of the sources; None if they
            hold whole tensors.
        strict_load: Raise if a Parameter of ``network`` is in no checkpoint.
        rank: The target rank (default: torch.distributed's, else 0).

    Returns:
        The names of the network's Parameters that were not in the checkpoints.

    Raises:
        ValueError: If the file count does not match a source layout, or
            ``strict_load`` and a Parameter is missing.
    """
    files = [os.fspath(f) for f in checkpoint_filenames]
    if not files:
        raise ValueError(
            "For 'load_distributed_checkpoint', no checkpoint files given."
        )
    for f in files:
        if not os.path.isfile(f):
            raise ValueError(
                f"For 'load_distributed_checkpoint', the checkpoint file '{f}' does "
                "not exist."
            )
    sources = (
        build_searched_strategy(train_strategy_filename)
        if train_strategy_filename
        else {}
    )
    if rank is None:
        rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
    from spore.train._ckpt_boxes import CheckpointBoxes

    opened: dict[str, CheckpointBoxes] = {}

    def source_file(path: str) -> CheckpointBoxes:
        if path not in opened:
            fmt = "safetensors" if path.endswith(".safetensors") else "ckpt"
            opened[path] = CheckpointBoxes(path, fmt)
        return opened[path]

    try:
        missing = _fill(network, files, predict_strategy, sources, rank, source_file)
    finally:
        for boxes in opened.values():
            boxes.close()
    if strict_load and missing:
        raise ValueError(
            f"For 'load_distributed_checkpoint', the Parameters {missing} are in none "
            "of the checkpoints; pass strict_load=False to skip them."
        )
    return missing


def _fill(
    network: Any,
    files: list[str],
    predict_strategy: dict[str, Any] | None,
    sources: dict[str, Layout],
    rank: int,
    source_file: Any,
) -> list[str]:
    """Fill every Parameter of ``network`` found in ``files``; return the others."""
    names = source_file(files[0]).names()
    missing = []
    for param in network.get_parameters():
        name = param.name
        target = (predict_strategy or {}).get(name) or get_layout(param)
        if target is not None and not isinstance(target, Layout):
            target = Layout.from_tuple(target)
        if name not in names:
            missing.append(name)
            continue
        full = target.full_shape if target is not None else tuple(param.shape)
        src = _source_layout(name, full, sources)
        if src.device_num not in (1, len(files)):
            raise ValueError(
                f"For 'load_distributed_checkpoint', Parameter {name!r} was saved on "
                f"{src.device_num} devices, but {len(files)} files were given."
            )
        sliced = target is not None  # as init_params marks every laid-out Parameter
        if target is None:
            target = Layout.create(src.full_shape, [1], [-1] * len(src.full_shape))
            t_rank = 0
        else:
            t_rank = rank
        t_off, t_shape = target.offsets(t_rank), target.slice_shape
        out: torch.Tensor | None = None
        for s_rank in src.first_holders():
            s_off = src.offsets(s_rank)
            lo = [max(a, b) for a, b in zip(t_off, s_off, strict=True)]
            hi = [min(a + n, b + m) for a, n, b, m in
                  zip(t_off, t_shape, s_off, src.slice_shape, strict=True)]  # fmt: skip
            if any(h <= low for low, h in zip(lo, hi, strict=True)):
                continue
            source = source_file(files[s_rank if src.device_num > 1 else 0])
            if out is None:
                out = torch.empty(t_shape, dtype=source.dtype(name))
            box = list(zip(lo, hi, strict=True))
            _copy_overlap(source, name, _shifted(box, s_off), out, _shifted(box, t_off))
        assert out is not None
        param.set_data(Tensor.from_torch(out), slice_shape=sliced)
    return missing
