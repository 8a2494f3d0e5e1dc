"""Declaring shardings from MindSpore-style strategies, and materialising slices.

Note [sharded init]
A lazy Parameter with a declared layout materialises only its slice: the rank's
offsets come from the layout (`Layout.offsets`), and the initializer fills just
that block of the full tensor (``Initializer._fill(out, full_shape, offsets, key)``).
Random values are a pure function of (key, flat index in the *full* tensor) (Note
[init keys]), and fans come from the full shape, so the slices of every rank put
together are bit for bit the tensor an unsharded ``init_data()`` gives under the same
seed, whatever the layout or rank count. The full tensor is never allocated.
(MindSpore seeds each slice by its index instead, so its values depend on the layout.)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch

from spore import context as _context
from spore.parallel._layout import Layout, _prod, set_layout

__all__ = ["init_params", "shard", "world_size"]


def world_size() -> int:
    """The number of ranks layouts are checked against.

    torch.distributed's world size once initialised, else the context's
    ``device_num``.
    """
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_world_size()
    return int(_context.get_auto_parallel_context("device_num"))


def _check_strategy(strategy: Any, what: str, ndim: int) -> tuple[int, ...]:
    if not isinstance(strategy, (tuple, list)) or len(strategy) != ndim:
        raise ValueError(
            f"For 'shard', the strategy of {what} should be a tuple of {ndim} ints, "
            f"but got {strategy!r}."
        )
    for s in strategy:
        if isinstance(s, bool) or not isinstance(s, int) or s <= 0:
            raise ValueError(
                f"For 'shard', every entry of the strategy of {what} should be an "
                f"int > 0, but got {strategy!r}."
            )
    return tuple(strategy)


def _repeat(used: int, world: int | None, what: str) -> list[int]:
    """Device-matrix prefix for the ranks a strategy leaves over (replicas)."""
    if world is None or world == used:
        return []
    if world % used:
        raise ValueError(
            f"For 'shard', the strategy of {what} uses {used} devices, which does not "
            f"divide the world size {world}."
        )
    return [world // used]


def _strategy_layout(
    shape: Sequence[int], strategy: Sequence[int], world: int | None, what: str
) -> tuple[list[int], list[int]]:
    """(dev_mat, tensor_map) splitting dim d in ``strategy[d]`` pieces."""
    split = [s for s in strategy if s > 1]
    dev_mat = _repeat(_prod(split), world, what) + split
    tensor_map, axis = [], len(split) - 1
    for s in strategy:
        if s > 1:
            tensor_map.append(axis)
            axis -= 1
        else:
            tensor_map.append(-1)
    return (dev_mat or [1]), tensor_map


def _dense_layouts(cell: Any, in_strategy: Any, world: int | None) -> None:
    """MatMul(transpose_b=True) strategy ``((dp, k), (n, k))`` on x and weight."""
    if not isinstance(in_strategy, (tuple, list)) or len(in_strategy) != 2:
        raise ValueError(
            "For 'Dense.shard', the strategy should be ((dp, k), (n, k)) for the input "
            f"and the (out, in) weight, but got {in_strategy!r}."
        )
    x = _check_strategy(in_strategy[0], "the input", 2)
    w = _check_strategy(in_strategy[1], "the weight", 2)
    if x[1] != w[1]:
        # MindSpore parity: nn.Dense multiplies by MatMul(transpose_b=True) with its
        # (out, in) weight, whose strategy check refuses this too (matmul_info.cc,
        # MatMul::CheckStrategy). See docs/architecture.md, Note [sharded init].
        hint = ""
        if x[1] == w[0]:  # the (in, out) weight form of MatMul(transpose_b=False)
            same = ((x[0], x[1]), (w[1], w[0]))
            hint = (
                f" {in_strategy!r} reads as the weight in (in, out) form; the same "
                f"split of Dense's (out, in) weight is {same!r}."
            )
        raise ValueError(
            "For 'Dense.shard', the strategy is MindSpore's for MatMul(transpose_b="
            "True): ((dp, k), (n, k)) for the input (batch, in_channels) and the "
            "weight (out_channels, in_channels), so both must split in_channels (k) "
            f"the same way, but got {x[1]} and {w[1]} in {in_strategy!r}." + hint
        )
    dp, n, k = x[0], w[0], w[1]
    # MindSpore's MatMul device matrix [dp, n, k] (k fastest), replicas in front.
    dev_mat = _repeat(dp * n * k, world, "Dense") + [dp, n, k]
    set_layout(cell.weight, dev_mat, [1, 0])
    if cell.bias is not None:
        set_layout(cell.bias, dev_mat, [1])
    cell.in_strategy = (x, w)


def _embedding_layouts(cell: Any, in_strategy: Any, world: int | None) -> None:
    """Gather strategy ``((v, e), (dp, 1))`` (the ids' part optional)."""
    if not isinstance(in_strategy, (tuple, list)) or len(in_strategy) not in (1, 2):
        raise ValueError(
            "For 'Embedding.shard', the strategy should be ((v, e),) or "
            f"((v, e), (dp, 1)), but got {in_strategy!r}."
        )
    v, e = _check_strategy(in_strategy[0], "the embedding table", 2)
    dp = 1
    if len(in_strategy) == 2:
        dp = _check_strategy(in_strategy[1], "the ids", len(in_strategy[1]))[0]
    dev_mat = _repeat(dp * v * e, world, "Embedding") + [dp, v, e]
    set_layout(cell.embedding_table, dev_mat, [1, 0])
    cell.in_strategy = tuple(in_strategy)


def shard(
    cell: Any,
    in_strategy: Any = None,
    parameter_plan: dict[str, Sequence[int]] | None = None,
    world: int | None = None,
) -> Any:
    """Declare a Cell's parameter layouts from MindSpore-style strategies; return it.

    - ``nn.Dense``: ``in_strategy=((dp, k), (n, k))`` as for MindSpore's
      ``MatMul(transpose_b=True)`` (input ``(batch, in)``, weight ``(out, in)``):
      ``((1, 1), (2, 1))`` splits the weight by rows (column parallel),
      ``((1, 2), (1, 2))`` by columns (row parallel); the bias follows the rows.
    - ``nn.Embedding``: ``in_strategy=((v, e),)`` or ``((v, e), (dp, 1))``.
    - Any Cell: ``parameter_plan={"name": strategy}`` gives one Parameter (by its
      name, or its name relative to ``cell``) ``strategy[d]`` pieces along dim d.

    Ranks the strategy does not use become replicas (a leading device-matrix
    axis), as MindSpore repeats a strategy over the remaining devices.

    Args:
        cell: The Cell.
        in_strategy: The layer's input strategy (see above).
        parameter_plan: Per-Parameter strategies.
        world: The number of ranks; default `world_size()` (if > 1).

    Raises:
        ValueError: For a malformed strategy, one whose devices do not divide the
            world size, or a layout that does not fit a Parameter.
        KeyError: If ``parameter_plan`` names a Parameter the Cell does not have.
        TypeError: If ``in_strategy`` is given for a Cell with no known mapping.
    """
    from spore.nn.layer.basic import Dense
    from spore.nn.layer.embedding import Embedding

    if in_strategy is not None and hasattr(cell, "_split_blocks"):
        # A tensor-parallel layer: its shard() also picks the group it splits over.
        return cell.shard(in_strategy, parameter_plan)
    if world is None:
        world = world_size()
        world = world if world > 1 else None
    if in_strategy is not None:
        if isinstance(cell, Dense):
            _dense_layouts(cell, in_strategy, world)
        elif isinstance(cell, Embedding):
            _embedding_layouts(cell, in_strategy, world)
        else:
            raise TypeError(
                f"For 'shard', 'in_strategy' maps to weights only for Dense and "
                f"Embedding, not {type(cell).__name__}; use parameter_plan."
            )
    for name, strategy in (parameter_plan or {}).items():
        found = None
        for path, param in cell.parameters_and_names():
            if name in (path, param.name):
                found = param
                break
        if found is None:
            raise KeyError(
                f"For 'shard', the parameter_plan names {name!r}, which is not a "
                f"Parameter of {type(cell).__name__}."
            )
        strat = _check_strategy(strategy, repr(name), len(found.shape))
        dev_mat, tensor_map = _strategy_layout(found.shape, strat, world, repr(name))
        set_layout(found, dev_mat, tensor_map)
    return cell


def _parameters(net: Any) -> Iterable[Any]:
    from spore.common.parameter import Parameter

    if isinstance(net, Parameter):
        return [net]
    if hasattr(net, "get_parameters"):
        return list(net.get_parameters())
    return list(net)


def init_params(net: Any, rank: int | None = None, world: int | None = None) -> Any:
    """Materialise every lazy Parameter of ``net`` for ``rank``; return ``net``.

    Parameters with a declared layout get only ``rank``'s slice (``sliced``
    True); the others are materialised whole. ``rank``/``world`` default to
    torch.distributed's; passing them simulates a rank in one process (tests,
    planning, preparing a rank's checkpoint offline). See Note [sharded init].

    Args:
        net: A Cell, a Parameter or an iterable of Parameters.
        rank: The rank whose slices to build.
        world: The number of ranks every layout's device matrix must hold.

    Raises:
        ValueError: If a device matrix does not match ``world``, or ``rank`` is
            outside it.
    """
    if world is None and rank is not None:
        world = world_size() if world_size() > 1 else None
    for param in _parameters(net):
        layout = param._layout
        if not param.has_init:
            continue
        if layout is None:
            param.init_data()
            continue
        layout = (
            layout
            if isinstance(layout, Layout)
            else Layout.from_tuple(layout, param.shape)
        )
        if world is not None and layout.device_num != world:
            raise ValueError(
                f"For 'init_params', the device matrix {list(layout.dev_mat)} of "
                f"Parameter '{param.name}' has {layout.device_num} devices, but the "
                f"world size is {world}."
            )
        if rank is None:
            param.init_data(layout, True)
        else:
            layout._coords(rank)  # a clear error for a rank outside the matrix
            param._init_data_for_rank(layout, True, rank)
    return net
