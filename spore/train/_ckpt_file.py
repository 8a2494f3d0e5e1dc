"""One checkpoint file kept open, its entries looked up by name.

`CheckpointFile` opens a ``.ckpt`` or ``.safetensors`` file once and keeps its
index; nothing is read until an entry is asked for. It is the shared part of
`spore.train._ckpt_boxes.CheckpointBoxes` (resharding loads) and the ``spore
ckpt`` command's reader (`spore._cli_ckpt`), which add what each of them reads.
"""

from __future__ import annotations

import io
from types import TracebackType
from typing import TypeVar

import torch

from spore.train import _ckpt_format, _safetensors_format

_FileT = TypeVar("_FileT", bound="CheckpointFile")


class CheckpointFile:
    """The entries of one checkpoint file, read on demand.

    A ``.ckpt`` file stays open (until `close`) with its index in `records`; a
    ``.safetensors`` file is mapped by the library, its entries in `values`.

    Args:
        path: The file.
        fmt: ``"ckpt"`` or ``"safetensors"``.

    Raises:
        ValueError: If the file is not a readable checkpoint of that format.
    """

    def __init__(self, path: str, fmt: str) -> None:
        self.path = path
        self.format = fmt
        self.index: _ckpt_format.Index | None = None  # .ckpt only
        self.records: dict[str, _ckpt_format.Record] = {}  # .ckpt, strings included
        self.values: dict[str, torch.Tensor | str] = {}  # .safetensors
        self._file: io.BufferedReader | None = None
        if fmt == "ckpt":
            self._file = open(path, "rb")  # closed by close()
            try:
                self.index = _ckpt_format.read_index(self._file.fileno(), path)
            except BaseException:
                self._file.close()
                raise
            self.records = {r.name: r for r in self.index.records}  # later ones win
        else:
            # Tensors are copy-on-write views of the mapped file: no whole-file read.
            self.values, _ = _safetensors_format.read_safetensors(
                path, lambda _: True, False
            )

    def fileno(self) -> int:
        """The open ``.ckpt`` file's descriptor."""
        assert self._file is not None
        return self._file.fileno()

    def read(self, name: str, mapped: bool = True) -> torch.Tensor | str:
        """The value of the entry ``name``; ``mapped=False`` reads a ``.ckpt``
        tensor into new memory instead of viewing the mapped file.

        Raises:
            KeyError: If the file has no entry ``name``.
        """
        if self.format == "ckpt":
            record = self.records[name]
            return _ckpt_format.read_values(
                self.fileno(), [record], self.path, mapped=mapped
            )[0]
        return self.values[name]

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self: _FileT) -> _FileT:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
