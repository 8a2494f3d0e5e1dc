"""``Embedding``: a lookup table of ``vocab_size`` vectors."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from spore.common import dtype as mstype
from spore.common.initializer import initializer
from spore.common.parameter import Parameter
from spore.common.tensor import Tensor
from spore.nn import _validate
from spore.nn.cell import Cell

__all__ = ["Embedding"]


class Embedding(Cell):
    """Map integer ids to rows of ``embedding_table``.

    Args:
        vocab_size: Number of rows.
        embedding_size: Size of each row.
        use_one_hot: Compute by one-hot matmul instead of a gather (same values;
            the table's gradient is then dense). Default: ``False``.
        embedding_table: Initializer of the table. Default: ``'normal'``.
        dtype: The ids' dtype: spore.int32 (or int64). Default: ``spore.int32``.
        padding_idx: A row set to zeros at initialisation, or None.

    Inputs:
        x: Integer ids of any shape.

    Outputs:
        A Tensor of shape ``x.shape + (embedding_size,)``.

    Raises:
        TypeError: If a size is not an int, ``use_one_hot`` not a bool, or
            ``dtype`` not an integer type.
        ValueError: If a size is <= 0 or ``padding_idx`` is outside
            ``[0, vocab_size)``.

    Examples:
        >>> from spore import nn
        >>> nn.Embedding(10, 4).embedding_table.shape
        (10, 4)
    """

    def __init__(
        self,
        vocab_size: int,
        embedding_size: int,
        use_one_hot: bool = False,
        embedding_table: Any = "normal",
        dtype: mstype.Type = mstype.int32,
        padding_idx: int | None = None,
    ) -> None:
        cls = "Embedding"
        v = _validate
        vocab_size = v.check_positive_int(vocab_size, "vocab_size", cls)
        embedding_size = v.check_positive_int(embedding_size, "embedding_size", cls)
        use_one_hot = v.check_bool(use_one_hot, "use_one_hot", cls)
        if dtype not in (mstype.int32, mstype.int64):
            raise TypeError(
                "For 'Embedding', the 'dtype' should be spore.int32 or spore.int64, "
                f"but got {dtype!r}."
            )
        if padding_idx is not None:
            if not v.is_int(padding_idx):
                raise TypeError(
                    "For 'Embedding', the 'padding_idx' should be int or None, but got "
                    f"{type(padding_idx).__name__}."
                )
            if not 0 <= padding_idx < vocab_size:
                raise ValueError(
                    f"For 'Embedding', the 'padding_idx' should be in range [0, "
                    f"{vocab_size}), but got {padding_idx}."
                )
        shape = (vocab_size, embedding_size)
        if padding_idx is None:
            table = v.make_parameter(
                embedding_table, shape, mstype.float32, "embedding_table", cls,
                "embedding_table",
            )  # fmt: skip
        else:
            # MindSpore parity: the table is materialised to zero the padding row.
            values = v.make_parameter(
                embedding_table, shape, mstype.float32, "embedding_table", cls,
                "embedding_table",
            )  # fmt: skip
            data = values.init_data().to_torch().detach().clone()
            data[padding_idx] = 0
            table = Parameter(
                initializer(Tensor.from_torch(data), shape), name="embedding_table"
            )
        super().__init__()
        self.vocab_size, self.embedding_size = vocab_size, embedding_size
        self.use_one_hot, self.dtype, self.padding_idx = use_one_hot, dtype, padding_idx
        self.embedding_table = table

    def shard(self, in_strategy: Any, parameter_plan: Any = None) -> Any:
        """Declare the weight layouts from a MindSpore-style strategy; return self.

        See `spore.parallel.shard` for the strategy forms.
        """
        from spore.parallel.shard import shard  # the processes layer, loaded on use

        return shard(self, in_strategy, parameter_plan)

    def construct(self, ids: Any) -> Tensor:
        data = _validate.to_torch(ids, "ids", self.cls_name)
        if data.is_floating_point() or data.is_complex():
            raise TypeError(
                "For 'Embedding', the input ids should have an integer dtype, but got "
                f"{data.dtype}."
            )
        index = data.long()
        remote = self.embedding_table._ps_remote
        if remote is not None and not remote.local:
            # A table held by the parameter servers: its rows come from them, and
            # the backward pass records a sparse gradient for the push (issue 7).
            return _validate.wrap(remote.lookup(index))
        table = self.embedding_table.to_torch()
        if self.use_one_hot:
            one_hot = F.one_hot(index, self.vocab_size).to(table.dtype)
            out = torch.matmul(one_hot, table)
        else:
            out = F.embedding(index, table)
        return _validate.wrap(out)

    def extend_repr(self) -> str:
        return (
            f"vocab_size={self.vocab_size}, embedding_size={self.embedding_size}, "
            f"use_one_hot={self.use_one_hot}, embedding_table={self.embedding_table}, "
            f"dtype={self.dtype}, padding_idx={self.padding_idx}"
        )
