"""Copying parts of checkpoint tensors: what a resharding load reads.

`CheckpointBoxes` opens one ``.ckpt`` or ``.safetensors`` file and copies a box
(a block of indices) of a named tensor into a destination, reading only that
box: ``.ckpt`` tensors are mapped (Note [mapped loads]) and viewed as bytes, so
even tensors whose bytes are not aligned for their dtype (files MindSpore wrote)
need no copy of the whole; safetensors tensors are mapped by the library. Only a
tensor that cannot be mapped as one range (mapping off, or the chunks of a
sliced tensor that MindSpore wrote) is read whole first.
"""

from __future__ import annotations

import torch

from spore.common import dtype as mstype
from spore.train import _ckpt_format, _ckpt_mmap
from spore.train._ckpt_file import CheckpointFile

Box = tuple[slice, ...]


class CheckpointBoxes(CheckpointFile):
    """The tensors of one checkpoint file, read box by box.

    Opened as a `CheckpointFile`: the same arguments, and the same ``ValueError``
    for a file that is not a readable checkpoint of that format.
    """

    def __init__(self, path: str, fmt: str) -> None:
        super().__init__(path, fmt)
        # Tensors only (append_dict strings left out), taken from the index rather
        # than `records`: a tensor stays readable when a string reuses its name.
        self._tensor_records: dict[str, _ckpt_format.Record] = {}
        self._tensors: dict[str, torch.Tensor] = {
            k: v for k, v in self.values.items() if isinstance(v, torch.Tensor)
        }
        if self.index is not None:
            for record in self.index.records:  # a name seen again: the later one wins
                if record.dtype is not None:
                    self._tensor_records[record.name] = record
            # no prefetch: a box is usually a small part of the tensor
            self._map = _ckpt_mmap.FileMap(
                self.fileno(), self.index.size, prefetch=False
            )

    def names(self) -> set[str]:
        """The names of the file's tensors (append_dict strings left out)."""
        return set(self._tensor_records) | set(self._tensors)

    def dtype(self, name: str) -> torch.dtype:
        """The torch dtype of the file's tensor ``name``."""
        if name in self._tensors:
            return self._tensors[name].dtype
        record_dtype = self._tensor_records[name].dtype
        assert record_dtype is not None
        return mstype.to_torch(record_dtype)

    def copy_box(self, name: str, source: Box, out: torch.Tensor, dest: Box) -> None:
        """``out[dest] = tensor[source]`` for the file's tensor ``name``, reading
        only the box ``source`` of it where the file can be mapped.

        Raises:
            KeyError: If the file has no tensor ``name``.
        """
        if name in self._tensors:
            out[dest] = self._tensors[name][source]
            return
        record = self._tensor_records[name]
        assert record.dtype is not None
        if out[dest].numel() == 0:
            return
        raw = self._map.raw(record.chunks)
        if raw is None:
            (whole,) = _ckpt_format.read_values(
                self.fileno(), [record], self.path, mapped=False
            )
            assert isinstance(whole, torch.Tensor)
            out[dest] = whole[source]
            return
        itemsize = mstype.type_size_in_bytes(record.dtype)
        # Both sides seen as bytes with a trailing item axis: a byte view needs no
        # alignment, and the copy reads only the pages of the box.
        source_bytes = raw.reshape(*(record.shape or (1,)), itemsize)
        out_flat = out if out.dim() else out.reshape(1)
        out_bytes = out_flat.view(torch.uint8).unflatten(-1, (out_flat.shape[-1], -1))
        target = out_bytes[dest or (slice(0, 1),)]
        target.copy_(source_bytes[source or (slice(0, 1),)])
        if record.dtype is mstype.bool_:
            box = out_flat[dest or (slice(0, 1),)]
            as_bytes = target.squeeze(-1)
            if as_bytes.numel() and int(as_bytes.max()) > 1:
                box.copy_(as_bytes != 0)  # torch assumes bool bytes are 0 or 1
