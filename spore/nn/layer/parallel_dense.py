"""Tensor-parallel layers on ``torch.distributed``: column/row-parallel Dense, an
embedding split by vocabulary.

Each layer declares its weight's layout (``spore.parallel`` semantics: device
matrix ``[dp, tp]``, the tensor-parallel axis rightmost) so a lazy Parameter
materialises only this rank's slice, bit-exact to the same block of the unsharded
tensor (Note [sharded init]). With ``tp == 1`` (or no process group) the layers
compute exactly what ``nn.Dense``/``nn.Embedding`` do, so the same script runs in
one process. The collectives are autograd functions (forward and backward are each
one collective), as in Megatron-LM's design.
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


def _group_info(group: Any) -> tuple[int, int, int]:
    """(rank in group, group size, world size); (0, 1, 1) without torch.distributed."""
    if not (dist.is_available() and dist.is_initialized()):
        return 0, 1, 1
    return dist.get_rank(group), dist.get_world_size(group), dist.get_world_size()


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


class _GatherLastDim(torch.autograd.Function):
    """Concatenate the group's pieces along the last dim; backward keeps our piece."""

    @staticmethod
    def forward(
        ctx: Any, x: torch.Tensor, group: Any, rank: int, size: int
    ) -> torch.Tensor:
        ctx.rank, ctx.size = rank, size
        pieces = [torch.empty_like(x) for _ in range(size)]
        dist.all_gather(pieces, x.contiguous(), group=group)
        return torch.cat(pieces, -1)

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
        pieces = [torch.empty_like(grad) for _ in range(ctx.size)]
        dist.all_gather(pieces, grad.contiguous(), group=ctx.group)
        return torch.cat(pieces, -1), None, None, None


def _shard(param: Any, dev_mat: list[int], tensor_map: list[int], rank: int) -> None:
    """Declare the layout; a Parameter already holding all its data is cut now."""
    from spore.parallel._layout import Layout, set_layout

    if param.has_init:
        set_layout(param, dev_mat, tensor_map)
        return
    layout = Layout.create(param.shape, dev_mat, tensor_map)
    block = tuple(
        slice(o, o + s) for o, s in zip(layout.offsets(rank), layout.slice_shape)
    )
    data = param.to_torch().detach()[block].clone()
    param.set_data(Tensor.from_torch(data), slice_shape=True)
    param._layout = layout


class _TensorParallel:
    """The group a layer splits over, and where this rank sits in the device matrix."""

    def _setup_parallel(self, group: Any) -> tuple[list[int], int]:
        self.group = group
        self.tp_rank, self.tp_size, world = _group_info(group)
        self.parallel = self.tp_size > 1
        rank = dist.get_rank() if self.parallel else 0
        dp = world // self.tp_size
        return ([dp, self.tp_size] if dp > 1 else [self.tp_size]), rank


class ColumnParallelDense(Dense, _TensorParallel):
    """`nn.Dense` whose weight rows (output channels) are split over ``group``.

    Each rank computes its share of the outputs. ``gather_output=False`` leaves
    them split (feed a `RowParallelDense` with ``input_is_parallel=True``).
    Same arguments as `nn.Dense`, plus:

    Args:
        gather_output: Gather the outputs to full width. Default: True.
        group: A torch.distributed process group (None: the world).
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
        dev_mat, rank = self._setup_parallel(group)
        if out_channels % self.tp_size:
            raise ValueError(
                f"For 'ColumnParallelDense', the 'out_channels' {out_channels} should be "
                f"divisible by the {self.tp_size} ranks of the group."
            )
        self.gather_output = gather_output
        if self.parallel:
            _shard(self.weight, dev_mat, [0, -1], rank)
            if self.bias is not None:
                _shard(self.bias, dev_mat, [0], rank)

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
        group: A torch.distributed process group (None: the world).
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
        dev_mat, rank = self._setup_parallel(group)
        if in_channels % self.tp_size:
            raise ValueError(
                f"For 'RowParallelDense', the 'in_channels' {in_channels} should be "
                f"divisible by the {self.tp_size} ranks of the group."
            )
        self.input_is_parallel = input_is_parallel
        if self.parallel:
            _shard(self.weight, dev_mat, [-1, 0], rank)
            if self.bias is not None:
                _shard(self.bias, dev_mat, [-1], rank)  # replicated

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
    no ``use_one_hot``), plus ``group``.
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
        dev_mat, rank = self._setup_parallel(group)
        if vocab_size % self.tp_size:
            raise ValueError(
                f"For 'VocabParallelEmbedding', the 'vocab_size' {vocab_size} should be "
                f"divisible by the {self.tp_size} ranks of the group."
            )
        self.rows = vocab_size // self.tp_size
        if self.parallel:
            _shard(self.embedding_table, dev_mat, [0, -1], rank)

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
