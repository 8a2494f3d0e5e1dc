"""Tensor-parallel layers on ``torch.distributed``: column/row-parallel Dense, an
embedding split by vocabulary.

Each layer splits over a group of ranks (``group``: a torch ProcessGroup, a name
from ``spore.communication.create_group``, or None for the world) and declares its
weight's layout over the device matrix that group is one axis of (``[dp, tp]`` for
a block of consecutive ranks), so a lazy Parameter materialises only this rank's
slice, bit-exact to the same block of the unsharded tensor (Note [sharded init]).
``shard`` takes MindSpore's strategies instead, e.g. ``((dp, 1), (mp, 1))`` for a
column-parallel Dense on ``dp * mp`` ranks: the layer then splits over its block of
``mp`` consecutive ranks, and the ``dp`` ranks holding each slice are replicas
whose gradients ``nn.DistributedGradReducer`` averages (data and tensor parallel on
one device matrix; Note [groups from layouts]).

With ``tp == 1`` (or no process group) the layers compute exactly what
``nn.Dense``/``nn.Embedding`` do, so the same script runs in one process. The
collectives are autograd functions (forward and backward are each one collective),
as in Megatron-LM's design.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F

from spore.common import dtype as mstype
from spore.common.tensor import Tensor
from spore.nn import _validate
from spore.nn.layer.basic import Dense
from spore.nn.layer.embedding import Embedding

__all__ = ["ColumnParallelDense", "RowParallelDense", "VocabParallelEmbedding"]


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def _group_ranks(group: Any, api: str) -> tuple[Any, list[int]]:
    """(torch ProcessGroup or None for the world, its world ranks in group order)."""
    if group is None:
        return None, list(range(dist.get_world_size()))
    if isinstance(group, str):
        from spore.communication import management

        process_group = management._process_group(group, api)
        return process_group, list(management._group_ranks(group, api))
    if not isinstance(group, dist.ProcessGroup):
        raise TypeError(
            f"For '{api}', the 'group' should be None, a group name (str) or a "
            f"torch.distributed ProcessGroup, but got {type(group).__name__}."
        )
    return group, list(dist.get_process_group_ranks(group))


def _axis_of(ranks: list[int], world: int, api: str) -> tuple[list[int], int]:
    """The device matrix whose axis ``ranks`` is, and that axis (counted from the
    right): consecutive ranks ``[q*tp, (q+1)*tp)`` are the last axis of
    ``[world/tp, tp]``; ranks ``s`` apart the middle axis of ``[., tp, s]``."""
    size = len(ranks)
    stride = ranks[1] - ranks[0]
    spaced = stride > 0 and all(
        b - a == stride for a, b in zip(ranks, ranks[1:], strict=False)
    )
    span = stride * size
    if not spaced or world % span or ranks[0] % span >= stride:
        raise ValueError(
            f"For '{api}', the group's world ranks {ranks} should be one axis of a "
            f"device matrix over the {world} ranks: ascending, evenly spaced ranks "
            "such as [0, 1] or [1, 3] (a block of consecutive ranks, or every s-th "
            "rank of a block of s * group-size ranks)."
        )
    outer = world // span
    dev_mat = ([outer] if outer > 1 else []) + [size] + ([stride] if stride > 1 else [])
    return dev_mat, (1 if stride > 1 else 0)


def _check_pair(strategy: Any, api: str, form: str) -> tuple[tuple[int, ...], ...]:
    """Two strategies of two positive ints each."""
    ok = isinstance(strategy, (tuple, list)) and len(strategy) == 2
    ok = ok and all(
        isinstance(part, (tuple, list))
        and len(part) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in part)
        for part in strategy
    )
    if not ok:
        raise ValueError(
            f"For '{api}', the strategy should be {form}, two pairs of positive "
            f"ints, but got {strategy!r}."
        )
    return tuple(tuple(part) for part in strategy)


def _form_text(form: tuple[tuple[Any, ...], ...]) -> str:
    """``(("dp", 1), ("mp", 1))`` as MindSpore writes it: ``((dp, 1), (mp, 1))``."""
    return "(" + ", ".join(f"({', '.join(map(str, part))})" for part in form) + ")"


def _match_form(
    pairs: tuple[tuple[int, ...], ...], form: tuple[tuple[Any, ...], ...]
) -> dict[str, int] | None:
    """The size each name of ``form`` takes in ``pairs``, or None where a number
    differs or a name (``mp`` twice) would take two sizes."""
    sizes: dict[str, int] = {}
    for part, want in zip(pairs, form, strict=True):
        for value, slot in zip(part, want, strict=True):
            expected = sizes.setdefault(slot, value) if isinstance(slot, str) else slot
            if value != expected:
                return None
    return sizes


class _CopyToParallel(torch.autograd.Function):
    """Identity forward; gradients of the (replicated) input summed over the group."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, group: Any) -> torch.Tensor:
        ctx.group = group
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        grad = grad.contiguous()
        dist.all_reduce(grad, group=ctx.group)
        return grad, None


class _ReduceFromParallel(torch.autograd.Function):
    """Sum of partial results over the group; the gradient passes through."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, group: Any) -> torch.Tensor:
        out = x.contiguous().clone()
        dist.all_reduce(out, group=group)
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return grad, None


def _all_gather_last_dim(x: torch.Tensor, group: Any, size: int) -> torch.Tensor:
    """The group's pieces of ``x``, concatenated along the last dim."""
    pieces = [torch.empty_like(x) for _ in range(size)]
    dist.all_gather(pieces, x.contiguous(), group=group)
    return torch.cat(pieces, -1)


class _GatherLastDim(torch.autograd.Function):
    """Concatenate the group's pieces along the last dim; backward keeps our piece."""

    @staticmethod
    def forward(
        ctx: Any, x: torch.Tensor, group: Any, rank: int, size: int
    ) -> torch.Tensor:
        ctx.rank, ctx.size = rank, size
        return _all_gather_last_dim(x, group, size)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None, None]:
        return grad.chunk(ctx.size, -1)[ctx.rank].contiguous(), None, None, None


class _SplitLastDim(torch.autograd.Function):
    """Keep our piece of the last dim; backward gathers the gradient."""

    @staticmethod
    def forward(
        ctx: Any, x: torch.Tensor, group: Any, rank: int, size: int
    ) -> torch.Tensor:
        ctx.group, ctx.size = group, size
        return x.chunk(size, -1)[rank].contiguous()

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None, None]:
        return _all_gather_last_dim(grad, ctx.group, ctx.size), None, None, None


def _shard(param: Any, dev_mat: list[int], tensor_map: list[int], rank: int) -> None:
    """Declare the layout; a Parameter already holding all its data is cut now."""
    from spore.parallel._layout import Layout, set_layout

    if param.has_init:
        set_layout(param, dev_mat, tensor_map)
        return
    layout = Layout.create(param.shape, dev_mat, tensor_map)
    block = tuple(
        slice(o, o + s)
        for o, s in zip(layout.offsets(rank), layout.slice_shape, strict=True)
    )
    data = param.to_torch().detach()[block].clone()
    param.set_data(Tensor.from_torch(data), slice_shape=True)
    param._layout = layout


class _TensorParallel:
    """The group a layer splits over, and where this rank sits in the device matrix.

    Subclasses declare how they split, and `_check_divisible` and `_shard_by`
    (their ``shard``) work from that:

    - ``_api``: the layer's name in messages (a user's subclass keeps it);
    - ``_maps``: (Parameter attribute, tensor map with ``"tp"`` at the split
      dimension);
    - ``_split_arg``: the constructor argument split over the group;
    - ``_form``: MindSpore's strategy for the split, with names for the sizes
      (``(("dp", 1), ("mp", 1))``), and ``_other_form``: why another form is
      refused, with ``{strategy}`` for the one given.
    """

    _api = ""
    _maps: tuple[tuple[str, tuple[Any, ...]], ...] = ()
    _split_arg = ""
    _form: tuple[tuple[Any, ...], ...] = ()
    _other_form = ""

    def _setup_parallel(self, group: Any) -> None:
        """Split over ``group``; declare (or cut) the Parameters' slices."""
        api = type(self).__name__
        process_group, ranks, rank = None, [0], 0
        dev_mat, axis = [1], 0
        if _distributed():
            process_group, ranks = _group_ranks(group, api)
            rank, world = dist.get_rank(), dist.get_world_size()
            if rank not in ranks:
                raise ValueError(
                    f"For '{api}', this process (world rank {rank}) is not in the "
                    f"group {ranks}; give each rank the group it belongs to."
                )
            self._check_divisible(len(ranks))
            if len(ranks) > 1:
                dev_mat, axis = _axis_of(ranks, world, api)
        self.group, self.group_ranks = process_group, tuple(ranks)
        self.tp_rank, self.tp_size = ranks.index(rank), len(ranks)
        self.parallel = self.tp_size > 1
        if self.parallel:
            for attr, tensor_map in self._maps:
                param = getattr(self, attr, None)
                if param is not None:
                    tmap = [axis if k == "tp" else k for k in tensor_map]
                    _shard(param, dev_mat, tmap, rank)

    def _check_divisible(self, size: int) -> None:
        count = getattr(self, self._split_arg)
        if count % size:
            raise ValueError(
                f"For '{self._api}', the '{self._split_arg}' {count} should be "
                f"divisible by the {size} ranks of the group."
            )

    def _shard_by(self, in_strategy: Any, parameter_plan: Any) -> Any:
        """``shard``: check ``in_strategy`` against ``_form``, then split."""
        api, form = f"{self._api}.shard", _form_text(self._form)
        if parameter_plan is not None:
            raise ValueError(f"For '{api}', 'parameter_plan' is not supported.")
        sizes = _match_form(_check_pair(in_strategy, api, form), self._form)
        if sizes is None:
            reason = self._other_form.format(strategy=repr(in_strategy))
            raise ValueError(f"For '{api}', the strategy should be {form}: {reason}")
        return self._split_blocks(sizes["dp"], sizes["mp"], in_strategy)

    def _split_blocks(self, dp: int, mp: int, strategy: Any) -> Any:
        """Split over blocks of ``mp`` consecutive ranks (``dp`` x ``mp`` device
        matrix, repeated over any ranks left); return self."""
        api = f"{type(self).__name__}.shard"
        if not _distributed():
            self.in_strategy = strategy
            return self  # one process: the strategy is recorded, the layer is whole
        world, rank = dist.get_world_size(), dist.get_rank()
        if world % (dp * mp):
            raise ValueError(
                f"For '{api}', the strategy {strategy!r} uses dp * mp = {dp * mp} "
                f"devices, which does not divide the world size {world}."
            )
        self._check_divisible(mp)
        block = tuple(range(rank - rank % mp, rank - rank % mp + mp))
        current = [getattr(self, attr, None) for attr, _ in self._maps]
        if not (self.parallel and self.group_ranks == block):  # not split this way
            for param in current:
                if param is not None and not param.has_init and param.sliced:
                    raise ValueError(
                        f"For '{api}', Parameter '{param.name}' already holds its "
                        f"slice for group {list(self.group_ranks)}; call shard() "
                        "before the Parameters are materialised (they stay lazy in "
                        "'semi_auto_parallel' mode), or build the layer with group=..."
                    )
            from spore.parallel._groups import ensure_partition

            blocks = tuple(tuple(range(s, s + mp)) for s in range(0, world, mp))
            name, _ = ensure_partition(blocks, api)
            if name is None:  # mp == 1: data parallel only, the layer stays whole
                for param in current:
                    if param is not None:
                        param._layout = None
                self.group, self.group_ranks = None, (rank,)
                self.tp_rank, self.tp_size, self.parallel = 0, 1, False
            else:
                self._setup_parallel(name)
        self.in_strategy = strategy
        return self


class ColumnParallelDense(Dense, _TensorParallel):
    """`nn.Dense` whose weight rows (output channels) are split over ``group``.

    Each rank computes its share of the outputs. ``gather_output=False`` leaves
    them split (feed a `RowParallelDense` with ``input_is_parallel=True``).
    Same arguments as `nn.Dense`, plus:

    Args:
        gather_output: Gather the outputs to full width. Default: True.
        group: The ranks to split over: a name from
            ``spore.communication.create_group``, a torch.distributed
            ProcessGroup, or None (the world). `shard` picks it from a strategy
            instead.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        weight_init: Any = None,
        bias_init: Any = None,
        has_bias: bool = True,
        activation: Any = None,
        dtype: mstype.Type = mstype.float32,
        gather_output: bool = True,
        group: Any = None,
    ) -> None:
        super().__init__(in_channels, out_channels, weight_init, bias_init, has_bias,
                         activation, dtype)  # fmt: skip
        self.gather_output = gather_output
        self._setup_parallel(group)

    _api = "ColumnParallelDense"
    _maps = (("weight", ("tp", -1)), ("bias", ("tp",)))
    _split_arg = "out_channels"
    _form = (("dp", 1), ("mp", 1))
    _other_form = (
        "a column-parallel layer splits out_channels (the weight's rows) and keeps "
        "in_channels whole, but got {strategy}. Use RowParallelDense with "
        "((dp, mp), (1, mp)) to split in_channels."
    )

    def shard(self, in_strategy: Any, parameter_plan: Any = None) -> Any:
        """Split by MindSpore's ``MatMul(transpose_b=True)`` strategy
        ``((dp, 1), (mp, 1))``: the batch over ``dp``, the weight's rows (output
        channels) over ``mp``; on ``dp * mp`` ranks (repeated over any ranks left)
        the layer splits over its block of ``mp`` consecutive ranks. Return self.

        Raises:
            ValueError: For another strategy form (in_channels split: use
                `RowParallelDense`), devices that do not divide the world size, or
                Parameters already materialised for another split.
        """
        return self._shard_by(in_strategy, parameter_plan)

    def construct(self, x: Any) -> Tensor:
        data = _validate.to_torch(x, "x", self.cls_name)
        if self.parallel:
            data = _CopyToParallel.apply(data, self.group)
        bias = self.bias.to_torch() if self.bias is not None else None
        out = F.linear(data, self.weight.to_torch(), bias)
        if self.parallel and self.gather_output:
            out = _GatherLastDim.apply(out, self.group, self.tp_rank, self.tp_size)
        result = _validate.wrap(out)
        return self.activation(result) if self.activation is not None else result


class RowParallelDense(Dense, _TensorParallel):
    """`nn.Dense` whose weight columns (input channels) are split over ``group``.

    Each rank multiplies its share of the inputs; the partial outputs are summed
    over the group, then the (replicated) bias is added. Same arguments as
    `nn.Dense`, plus:

    Args:
        input_is_parallel: The input is already split along its last dim (the
            output of a `ColumnParallelDense` with ``gather_output=False``).
        group: As for `ColumnParallelDense`.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        weight_init: Any = None,
        bias_init: Any = None,
        has_bias: bool = True,
        activation: Any = None,
        dtype: mstype.Type = mstype.float32,
        input_is_parallel: bool = False,
        group: Any = None,
    ) -> None:
        super().__init__(in_channels, out_channels, weight_init, bias_init, has_bias,
                         activation, dtype)  # fmt: skip
        self.input_is_parallel = input_is_parallel
        self._setup_parallel(group)

    _api = "RowParallelDense"
    _maps = (("weight", (-1, "tp")), ("bias", (-1,)))  # the bias is replicated
    _split_arg = "in_channels"
    _form = (("dp", "mp"), (1, "mp"))  # the input and the weight split alike
    _other_form = (
        "a row-parallel layer splits in_channels (the input's last dimension and "
        "the weight's columns) the same way, but got {strategy}. Use "
        "ColumnParallelDense with ((dp, 1), (mp, 1)) to split out_channels."
    )

    def shard(self, in_strategy: Any, parameter_plan: Any = None) -> Any:
        """Split by MindSpore's ``MatMul(transpose_b=True)`` strategy
        ``((dp, mp), (1, mp))``: the batch over ``dp``, in_channels (the weight's
        columns) over ``mp``; on ``dp * mp`` ranks the layer splits over its block
        of ``mp`` consecutive ranks. Return self.

        Raises:
            ValueError: For another strategy form (out_channels split: use
                `ColumnParallelDense`), devices that do not divide the world size,
                or Parameters already materialised for another split.
        """
        return self._shard_by(in_strategy, parameter_plan)

    def construct(self, x: Any) -> Tensor:
        data = _validate.to_torch(x, "x", self.cls_name)
        if self.parallel and not self.input_is_parallel:
            data = _SplitLastDim.apply(data, self.group, self.tp_rank, self.tp_size)
        out = F.linear(data, self.weight.to_torch())
        if self.parallel:
            out = _ReduceFromParallel.apply(out, self.group)
        if self.bias is not None:
            out = out + self.bias.to_torch()
        result = _validate.wrap(out)
        return self.activation(result) if self.activation is not None else result


class VocabParallelEmbedding(Embedding, _TensorParallel):
    """`nn.Embedding` whose rows (the vocabulary) are split over ``group``.

    Each rank looks up the ids in its range (zeros elsewhere); the results are
    summed over the group. Same arguments as `nn.Embedding` (no ``padding_idx``,
    no ``use_one_hot``), plus ``group`` (as for `ColumnParallelDense`).
    """

    def __init__(
        self,
        vocab_size: int,
        embedding_size: int,
        embedding_table: Any = "normal",
        dtype: mstype.Type = mstype.int32,
        group: Any = None,
    ) -> None:
        super().__init__(vocab_size, embedding_size, False, embedding_table, dtype)
        self._setup_parallel(group)

    _api = "VocabParallelEmbedding"
    _maps = (("embedding_table", ("tp", -1)),)
    _split_arg = "vocab_size"
    _form = (("mp", 1), ("dp", 1))  # (table, ids)
    _other_form = (
        "the table is split by vocabulary rows only and the ids by batch only, but "
        "got {strategy}."
    )

    @property
    def rows(self) -> int:
        """Vocabulary rows held by this rank."""
        return self.vocab_size // self.tp_size

    def shard(self, in_strategy: Any, parameter_plan: Any = None) -> Any:
        """Split by MindSpore's Gather strategy ``((mp, 1), (dp, 1))`` (table,
        ids): the vocabulary over ``mp``, the batch over ``dp``; on ``dp * mp``
        ranks the layer splits over its block of ``mp`` consecutive ranks.
        Return self.

        Raises:
            ValueError: For another strategy form (the embedding dimension split),
                devices that do not divide the world size, or a table already
                materialised for another split.
        """
        return self._shard_by(in_strategy, parameter_plan)

    def construct(self, ids: Any) -> Tensor:
        data = _validate.to_torch(ids, "ids", self.cls_name).long()
        table = self.embedding_table.to_torch()
        if not self.parallel:
            return _validate.wrap(F.embedding(data, table))
        start = self.tp_rank * self.rows
        local = data - start
        outside = (local < 0) | (local >= self.rows)
        out = F.embedding(local.masked_fill(outside, 0), table)
        out = out.masked_fill(outside.unsqueeze(-1), 0.0)
        return _validate.wrap(_ReduceFromParallel.apply(out, self.group))
