"""MindSpore's ``.ckpt`` bytes, written: the protobuf framing of each entry.

One ``Checkpoint`` message per tensor (or per chunk of at most `SLICE_SIZE_BYTES`),
appended, exactly as MindSpore serializes them, plus a padding field that aligns
each tensor's bytes (Note [aligned payloads]). The schema and the reader are in
``_ckpt_format.py``; ``_ckpt_writer.py`` puts the bytes in a file atomically.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import torch

from spore.common import dtype as mstype
from spore.train import _ckpt_format
from spore.train._ckpt_format import (
    _PAD_FIELD,
    _PAD_KEY,
    CRC_MARKER,
    STR_TYPE,
    _require_little_endian,
)


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # int64 fields: negatives take ten bytes, as in protobuf
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


assert _varint(_PAD_FIELD << 3 | 2) == _PAD_KEY

# Note [aligned payloads]
# A tensor's bytes are contiguous in a .ckpt, so a reader can hand out a view of
# the mapped file instead of a copy (`_ckpt_mmap`) -- but only where the bytes
# start at a multiple of the element size: a misaligned view would break kernels
# that assume natural alignment. MindSpore puts them wherever the header ends.
# spore's writer inserts an unknown field (`_PAD_FIELD`, zeros) into TensorProto
# just before `tensor_content`, sized so that the content starts at a multiple of
# `ALIGNMENT`. Protobuf parsers (MindSpore's included) skip unknown fields, the
# CRC covers the bytes as written, and the values are unchanged: only the file's
# bytes differ from MindSpore's by the padding fields (`ALIGNMENT = 1` drops
# them). Chunks of a sliced tensor start at huge-page multiples (`CHUNK_ALIGNMENT`,
# 2 MiB: at most 0.4% of a 512 MiB chunk), so the reader can map the chunks side
# by side into one tensor, in huge pages where the page cache holds them so.


def _len_field(key: int, length: int) -> bytes:
    return bytes((key,)) + _varint(length)


def _padding_field(size: int) -> bytes | None:
    """An unknown length-delimited field of exactly ``size`` bytes (None if no
    minimal encoding has that size: 1 or 2 bytes, or a length-varint boundary)."""
    for prefix in (1, 2, 3):
        body = size - len(_PAD_KEY) - prefix
        if body >= 0 and len(_varint(body)) == prefix:
            return _PAD_KEY + _varint(body) + bytes(body)
    return None


def _entry_header(
    tag: bytes, dims: Iterable[int], type_name: bytes, n: int, pad: int = 0
) -> bytes | None:
    """Everything of one ``Checkpoint`` message up to its ``tensor_content`` bytes,
    with a ``pad``-byte padding field just before them (None if ``pad`` cannot be
    encoded; see `_padding_field`)."""
    tensor_head = b"".join(b"\x08" + _varint(d) for d in dims)
    tensor_head += _len_field(0x12, len(type_name)) + type_name
    if pad:
        padding = _padding_field(pad)
        if padding is None:
            return None
        tensor_head += padding
    tensor_head += _len_field(0x1A, n)
    tensor_len = len(tensor_head) + n
    value_head = _len_field(0x0A, len(tag)) + tag + _len_field(0x12, tensor_len)
    value_len = len(value_head) + tensor_len
    return _len_field(0x0A, value_len) + value_head + tensor_head


def _aligned_header(
    position: int, tag: bytes, dims: tuple[int, ...], type_name: bytes, n: int,
    alignment: int,
) -> bytes:  # fmt: skip
    """The entry header that makes its content start at a multiple of ``alignment``
    when the entry starts at file offset ``position``. See Note [aligned payloads]."""
    plain = _entry_header(tag, dims, type_name, n)
    assert plain is not None
    if alignment <= 1 or n == 0 or (position + len(plain)) % alignment == 0:
        return plain
    # The padding lengthens the tensor and value messages, whose two length
    # prefixes may grow by up to four bytes each: aim for each growth and keep
    # the first header that lands.
    for extra in range(3):
        for growth in range(9):
            pad = -(position + len(plain) + growth) % alignment + extra * alignment
            header = _entry_header(tag, dims, type_name, n, pad) if pad else None
            if header is not None and (position + len(header)) % alignment == 0:
                return header
    return plain  # pragma: no cover - some padding always lands within 3 rounds


@dataclass
class WriteEntry:
    """One tensor to write: raw little-endian C-order bytes and their description."""

    name: str
    type_name: str
    dims: tuple[int, ...]
    content: memoryview  # format "B", contiguous


def tensor_entry(name: str, data: torch.Tensor) -> WriteEntry:
    """A `WriteEntry` viewing ``data``'s memory (no copy for contiguous CPU data)."""
    _require_little_endian()
    if data.device.type != "cpu":
        data = data.cpu()
    data = data.detach().contiguous()
    raw = data.reshape(-1).view(torch.uint8).numpy().data  # a memoryview, no copy
    dims = tuple(int(d) for d in data.shape)
    return WriteEntry(name, str(mstype.from_torch(data.dtype)), dims, raw)


def string_entry(name: str, value: str) -> WriteEntry:
    """A `WriteEntry` for an append_dict string (MindSpore: dims [0], UTF-32LE)."""
    return WriteEntry(name, STR_TYPE, (0,), memoryview(value.encode("utf-32-le")))


class Writable(Protocol):
    def write(self, data: Any, /) -> Any: ...


def _chunk_alignment(slice_size: int) -> int:
    """Where the chunks of a sliced tensor start: the largest power of two up to
    `CHUNK_ALIGNMENT` that divides ``slice_size``, so that every chunk but the
    last fills whole pages; 1 when that is under `MIN_CHUNK_ALIGNMENT`."""
    alignment = _ckpt_format.CHUNK_ALIGNMENT
    while alignment > 1 and slice_size % alignment:
        alignment //= 2
    return alignment if alignment >= _ckpt_format.MIN_CHUNK_ALIGNMENT else 1


def write_checkpoint(out: Writable, entries: Iterable[WriteEntry], crc: bool) -> None:
    """Write ``entries`` as MindSpore writes them; append the CRC trailer if ``crc``.

    A tensor over `SLICE_SIZE_BYTES` becomes consecutive same-tag entries, each with
    the full dims (MindSpore 2.x slices the raw bytes). Unlike MindSpore, an empty
    tensor is written as one entry with empty content instead of being dropped, and
    each tensor's bytes start at a multiple of `ALIGNMENT` (`_chunk_alignment` for
    the chunks of a sliced tensor), so that readers can map them.
    """
    crc_value = 0
    position = 0
    slice_size = _ckpt_format.SLICE_SIZE_BYTES
    for entry in entries:
        tag = entry.name.encode("utf-8")
        type_name = entry.type_name.encode("utf-8")
        content = entry.content
        total = len(content)
        alignment = _ckpt_format.ALIGNMENT if entry.type_name != STR_TYPE else 1
        if total > slice_size and alignment > 1:
            alignment = max(alignment, _chunk_alignment(slice_size))
        starts = range(0, total, slice_size) if total else range(1)
        for start in starts:
            piece = content[start : start + slice_size]
            header = _aligned_header(
                position, tag, entry.dims, type_name, len(piece), alignment
            )
            out.write(header)
            out.write(piece)
            position += len(header) + len(piece)
            if crc:
                crc_value = zlib.crc32(piece, zlib.crc32(header, crc_value))
    if crc:
        out.write(CRC_MARKER + crc_value.to_bytes(10, "big"))
