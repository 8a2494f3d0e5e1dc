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

from types import TracebackType
from typing import Any

import torch

from spore.common import dtype as mstype
from spore.train import _ckpt_format, _ckpt_mmap, _safetensors_format

Box = tuple[slice, ...]


class CheckpointBoxes:
    """The tensors of one checkpoint file, read box by box.

    Args:
        path: The file.
        fmt: ``"ckpt"`` or ``"safetensors"``.

    Raises:
        ValueError: If the file is not a readable checkpoint of that format.
    """

    def __init__(self, path: str, fmt: str) -> None:
        self.path = path
        self._file: Any = None
        self._records: dict[str, _ckpt_format.Record] = {}
        self._values: dict[str, torch.Tensor] = {}
        if fmt == "ckpt":
            self._file = open(path, "rb")  # closed by close()
            try:
                index = _ckpt_format.read_index(self._file.fileno(), path)
            except BaseException:
                self._file.close()
                raise
            for record in index.records:  # a name seen again: the later one wins
                if record.dtype is not None:
                    self._records[record.name] = record
            # no prefetch: a box is usually a small part of the tensor
            self._map = _ckpt_mmap.FileMap(
                self._file.fileno(), index.size, prefetch=False
            )
        else:
            values, _ = _safetensors_format.read_safetensors(
                path, lambda _: True, False
            )
            self._values = {
                k: v for k, v in values.items() if isinstance(v, torch.Tensor)
            }

    def names(self) -> set[str]:
        """The names of the file's tensors (append_dict strings left out)."""
        return set(self._records) | set(self._values)

    def dtype(self, name: str) -> torch.dtype:
        """The torch dtype of the file's tensor ``name``."""
        if name in self._values:
            return self._values[name].dtype
        record_dtype = self._records[name].dtype
        assert record_dtype is not None
        return mstype.to_torch(record_dtype)

    def copy_box(self, name: str, source: Box, out: torch.Tensor, dest: Box) -> None:
        """``out[dest] = tensor[source]`` for the file's tensor ``name``, reading
        only the box ``source`` of it where the file can be mapped.

        Raises:
            KeyError: If the file has no tensor ``name``.
        """
        if name in self._values:
            out[dest] = self._values[name][source]
            return
        record = self._records[name]
        assert record.dtype is not None
        if out[dest].numel() == 0:
            return
        raw = self._map.raw(record.chunks)
        if raw is None:
            fd = self._file.fileno()
            (whole,) = _ckpt_format.read_values(fd, [record], self.path, mapped=False)
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

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> CheckpointBoxes:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
