"""MindSpore's ``.ckpt`` bytes: the format's constants and a streaming reader.

The schema (proto2, from MindSpore's ``checkpoint.proto``; field numbers only)::

    Checkpoint  { repeated Value value = 1; }
    Value       { required string tag = 1; TensorProto tensor = 2;
                  MapTensorProto maptensor = 3; }        # 3: MapParameter, unsupported
    TensorProto { repeated int64 dims = 1; required string tensor_type = 2;
                  required bytes tensor_content = 3; }

MindSpore writes one ``Checkpoint`` message per tensor (or per chunk of at most
``SLICE_SIZE_BYTES``) and appends them; the concatenation is one valid message.
Chunks of one tensor are consecutive ``Value`` entries with the same tag and the
full dims. With ``crc_check`` the payload is followed by ``b"crc_num"`` and the
CRC-32 of the payload as a 10-byte big-endian integer.

Protobuf's own parser needs the whole file in one buffer and stops at 2 GiB, so
this module walks the wire format itself: `read_index` reads only the small
headers (tag, dims, type) and records where each tensor's bytes lie; `read_values`
then maps those bytes (``_ckpt_mmap``) or reads them straight into the destination
tensor's memory. Every length is checked against the file before anything is
allocated. See Note [ckpt reading]. The writer is ``_ckpt_encode.py``.
"""

from __future__ import annotations

import math
import os
import sys
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import torch

from spore.common import dtype as mstype
from spore.train import _ckpt_mmap

# A tensor larger than this is written as several same-tag entries (MindSpore's
# SLICE_SIZE = 512 * 1024 KiB). Tests lower it to exercise chunking on small data.
SLICE_SIZE_BYTES = 512 * 1024 * 1024

# Each tensor's bytes start at a multiple of ALIGNMENT, and each chunk of a sliced
# tensor at a multiple of CHUNK_ALIGNMENT (a huge page: the chunks map side by side
# in huge pages), or of the largest power of two >= MIN_CHUNK_ALIGNMENT (a page on
# every common system) dividing SLICE_SIZE_BYTES; 1 writes MindSpore's exact bytes.
# See Note [aligned payloads].
ALIGNMENT = 64
CHUNK_ALIGNMENT = 2 * 1024 * 1024
MIN_CHUNK_ALIGNMENT = 64 * 1024
# The padding is a bytes field of TensorProto that MindSpore's schema does not
# define (field 2047: two key bytes, far from the 1-3 it uses); parsers skip it.
_PAD_FIELD = 2047
_PAD_KEY = b"\xfa\x7f"  # the field's key: varint of 2047 << 3 | 2 (bytes)

CRC_MARKER = b"crc_num"
CRC_TRAILER_LEN = len(CRC_MARKER) + 10
STR_TYPE = "str"  # append_dict strings: dims [0], UTF-32LE content

_WINDOW = 8 * 1024  # header bytes read at a time (more only for long fields)
_HEADER_PEEK = 512  # bytes of an entry the fast header path looks at
_FAST_HEADERS = True  # tests turn `_canonical_entry` off to compare
_MAX_NAME_BYTES = 1 << 20
_MAX_TYPE_BYTES = 64
_MAX_NDIM = 64
_READ_STEP = 1 << 30  # Linux moves at most ~2 GiB per read/write call
_PIECE = 16 << 20  # large tensors are read in pieces of this size ...
_READ_THREADS = 4  # ... by up to this many threads

# MindSpore r1.x spelled the unsigned types "Uint8"...; names match case-insensitively.
_NUMBER_TYPES = (
    *mstype.int_type, *mstype.uint_type, *mstype.float_type, *mstype.complex_type,
    mstype.bool_,
)  # fmt: skip
_BY_LOWER_NAME = {str(t).lower(): t for t in _NUMBER_TYPES}


class CkptFormatError(ValueError):
    """A file that is not a readable ``.ckpt``; the message names what is wrong."""


def _require_little_endian() -> None:
    if sys.byteorder != "little":  # pragma: no cover - no big-endian CI
        raise NotImplementedError(
            ".ckpt tensor bytes are little-endian; big-endian hosts are not supported."
        )


def dtype_from_type_name(name: str) -> mstype.Type | None:
    """The spore type a ``tensor_type`` string names (None if unknown or ``str``)."""
    return _BY_LOWER_NAME.get(name.lower())


# ---- reading -------------------------------------------------------------------------

# Note [ckpt reading]
# Reading has two passes. `read_index` walks the headers with a small window
# (`_Cursor`), skipping over tensor bytes, and returns where every tensor lies; it
# checks every declared length against the file, so a hostile file fails there
# and nothing large has been allocated. Entries laid out as MindSpore and spore
# write them are read by one fast pass (`_canonical_entry`); anything else goes
# through the general field-by-field parser, which decides every error. Then
# `read_values` hands out views of the mapped file (Note [mapped loads]) or, for
# what cannot be mapped, allocates exactly the tensor (torch.empty) and preads its
# bytes into that memory: no intermediate buffer either way, and the peak is the
# size of what is returned.


@dataclass
class Record:
    """One parameter of the file: its chunks (offset, length) in file order."""

    name: str
    dims: tuple[int, ...]
    type_name: str
    chunks: list[tuple[int, int]] = field(default_factory=list)
    shape: tuple[int, ...] = ()
    dtype: mstype.Type | None = None  # None for strings

    @property
    def nbytes(self) -> int:
        return sum(length for _, length in self.chunks)


@dataclass
class Index:
    """What `read_index` found: records in file order and the CRC trailer."""

    path: str
    size: int
    payload_len: int
    crc: int | None  # the trailer's CRC-32, None without a trailer
    records: list[Record]
    duplicates: list[str]  # names seen again after other entries (later wins)


class _Cursor:
    """Reads small pieces of a file through a window; never more than asked."""

    def __init__(self, fd: int, path: str, end: int) -> None:
        self.fd, self.path, self.end = fd, path, end
        self.pos = 0
        self._buf = b""
        self._buf_start = 0

    def error(self, what: str) -> CkptFormatError:
        return CkptFormatError(
            f"The checkpoint file '{self.path}' is corrupted or not a MindSpore "
            f"checkpoint: {what} (at byte {self.pos})."
        )

    def _fill(self, need: int, limit: int) -> memoryview:
        """At least ``need`` bytes at ``pos`` (fewer only if ``limit`` is reached)."""
        need = min(need, limit - self.pos)
        offset = self.pos - self._buf_start
        if 0 <= offset and offset + need <= len(self._buf):
            return memoryview(self._buf)[offset:]
        want = min(max(need, _WINDOW), limit - self.pos)
        self._buf = os.pread(self.fd, want, self.pos) if want > 0 else b""
        self._buf_start = self.pos
        if len(self._buf) < need:
            raise self.error("the file ends early (truncated)")
        return memoryview(self._buf)

    def varint(self, limit: int) -> int:
        buf, offset = self._buf, self.pos - self._buf_start
        if offset < 0 or offset + 10 > len(buf):
            self._fill(10, limit)
            buf, offset = self._buf, self.pos - self._buf_start
        available = min(10, len(buf) - offset, limit - self.pos)
        result = shift = 0
        for index in range(offset, offset + available):
            byte = buf[index]
            result |= (byte & 0x7F) << shift
            if not byte & 0x80:
                self.pos += index - offset + 1
                return result
            shift += 7
        if available < 10:
            raise self.error("a number runs past the end of its message (truncated)")
        raise self.error("a number is longer than 10 bytes")

    def length(self, limit: int) -> int:
        """A length prefix, checked to fit before ``limit``."""
        value = self.varint(limit)
        if value > limit - self.pos:
            raise self.error(
                f"a field declares {value} bytes but only {limit - self.pos} remain"
            )
        return value

    def take(self, n: int, limit: int) -> bytes:
        view = self._fill(n, limit)
        self.pos += n
        return bytes(view[:n])

    def skip_field(self, wire: int, limit: int) -> None:
        if wire == 0:
            self.varint(limit)
            return
        size = {1: 8, 5: 4}.get(wire)
        if wire == 2:
            size = self.length(limit)
        if size is None:
            raise self.error(f"unsupported protobuf wire type {wire}")
        if size > limit - self.pos:
            raise self.error("a field runs past the end of its message (truncated)")
        self.pos += size


def _signed64(value: int) -> int:
    value &= (1 << 64) - 1
    return value - (1 << 64) if value >> 63 else value


def _decode_text(cursor: _Cursor, raw: bytes, what: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise cursor.error(f"the {what} is not valid UTF-8") from err


def _read_tensor_proto(cursor: _Cursor, end: int) -> tuple[list[int], str, int, int]:
    dims: list[int] = []
    type_name: str | None = None
    content: tuple[int, int] | None = None
    while cursor.pos < end:
        key = cursor.varint(end)
        number, wire = key >> 3, key & 7
        if number == 1 and wire == 0:
            dims.append(_signed64(cursor.varint(end)))
        elif number == 1 and wire == 2:  # packed dims: accepted as protobuf does
            size = cursor.length(end)
            stop = cursor.pos + size
            while cursor.pos < stop:
                dims.append(_signed64(cursor.varint(stop)))
        elif number == 2 and wire == 2:
            size = cursor.length(end)
            if type_name is not None or size > _MAX_TYPE_BYTES:
                raise cursor.error("a repeated or overlong 'tensor_type'")
            type_name = _decode_text(cursor, cursor.take(size, end), "tensor_type")
        elif number == 3 and wire == 2:
            size = cursor.length(end)
            if content is not None:
                raise cursor.error("a repeated 'tensor_content'")
            content = (cursor.pos, size)
            cursor.pos += size
        elif number in (1, 2, 3):
            raise cursor.error(f"field {number} of a tensor has wire type {wire}")
        else:
            cursor.skip_field(wire, end)
        if len(dims) > _MAX_NDIM:
            raise cursor.error(f"a tensor has more than {_MAX_NDIM} dims")
    if type_name is None or content is None:
        raise cursor.error("a tensor lacks its 'tensor_type' or 'tensor_content'")
    return dims, type_name, content[0], content[1]


def _read_value(cursor: _Cursor, end: int) -> tuple[str, list[int], str, int, int]:
    tag: str | None = None
    tensor = None
    while cursor.pos < end:
        key = cursor.varint(end)
        number, wire = key >> 3, key & 7
        if number == 1 and wire == 2:
            size = cursor.length(end)
            if tag is not None or size > _MAX_NAME_BYTES:
                raise cursor.error("a repeated or overlong parameter name")
            tag = _decode_text(cursor, cursor.take(size, end), "parameter name")
        elif number == 2 and wire == 2:
            if tensor is not None:
                raise cursor.error("an entry holds two tensors")
            size = cursor.length(end)
            tensor = _read_tensor_proto(cursor, cursor.pos + size)
        elif number == 3 and wire == 2:
            raise cursor.error(
                "a MapParameter (maptensor) entry, which spore does not support"
            )
        elif number in (1, 2):
            raise cursor.error(f"field {number} of an entry has wire type {wire}")
        else:
            cursor.skip_field(wire, end)
    if tag is None or tensor is None:
        raise cursor.error("an entry lacks its name or its tensor")
    return (tag, *tensor)


def _varint_at(buf: bytes, index: int, stop: int) -> tuple[int, int]:
    """``(value, index after it)`` of the varint at ``buf[index]``; value -1 when
    it does not end before ``stop`` within 10 bytes."""
    result = shift = 0
    for at in range(index, min(index + 10, stop)):
        byte = buf[at]
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, at + 1
        shift += 7
    return -1, index


def _canonical_entry(cursor: _Cursor) -> tuple[str, list[int], str, int, int] | None:
    """The entry at ``cursor.pos`` when it is laid out exactly as MindSpore and
    spore write it (tag; dims, type, optional padding, content); else None and
    the general parser (`_read_value`) decides, errors included. Reading the
    fields in one pass over the window makes indexing a file of many tensors
    about 3x faster."""
    pos, end = cursor.pos, cursor.end
    cursor._fill(min(_HEADER_PEEK, end - pos), end)
    buf, base = cursor._buf, pos - cursor._buf_start
    stop = len(buf)
    if buf[base] != 0x0A:
        return None
    value_len, at = _varint_at(buf, base + 1, stop)
    value_end = pos + (at - base) + value_len
    if value_len < 0 or value_end > end or at >= stop or buf[at] != 0x0A:
        return None
    tag_len, at = _varint_at(buf, at + 1, stop)
    if tag_len < 0 or tag_len > _MAX_NAME_BYTES or at + tag_len >= stop:
        return None
    tag_raw, at = buf[at : at + tag_len], at + tag_len
    if buf[at] != 0x12:
        return None
    tensor_len, at = _varint_at(buf, at + 1, stop)
    if tensor_len < 0 or pos + (at - base) + tensor_len != value_end:
        return None
    dims = []
    while at < stop and buf[at] == 0x08 and len(dims) < _MAX_NDIM:
        dim, at = _varint_at(buf, at + 1, stop)
        if dim < 0:
            return None
        dims.append(_signed64(dim))
    if at >= stop or buf[at] != 0x12:
        return None
    type_len, at = _varint_at(buf, at + 1, stop)
    if type_len < 0 or type_len > _MAX_TYPE_BYTES or at + type_len >= stop:
        return None
    type_raw, at = buf[at : at + type_len], at + type_len
    if buf[at : at + len(_PAD_KEY)] == _PAD_KEY:
        pad_len, at = _varint_at(buf, at + len(_PAD_KEY), stop)
        if pad_len < 0:
            return None
        at += pad_len
    if at >= stop or buf[at] != 0x1A:
        return None
    content_len, at = _varint_at(buf, at + 1, stop)
    content_start = pos + (at - base)
    if content_len < 0 or content_start + content_len != value_end:
        return None
    try:
        tag, type_name = tag_raw.decode("utf-8"), type_raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    cursor.pos = value_end
    return tag, dims, type_name, content_start, content_len


def _entries(cursor: _Cursor) -> Iterator[tuple[str, list[int], str, int, int]]:
    end = cursor.end
    while cursor.pos < end:
        entry = _canonical_entry(cursor) if _FAST_HEADERS else None
        if entry is not None:
            yield entry
            continue
        key = cursor.varint(end)
        if key != 0x0A:  # field 1 (value), length-delimited: nothing else is valid
            raise cursor.error(f"unexpected field key {key:#x} at the top level")
        size = cursor.length(end)
        stop = cursor.pos + size
        yield _read_value(cursor, stop)
        cursor.pos = stop


def _finish_record(record: Record, cursor: _Cursor) -> None:
    """Resolve shape and dtype; check the byte count (MindSpore's 0-d rules)."""
    if record.type_name == STR_TYPE:
        if record.nbytes % 4:
            raise cursor.error(f"the string '{record.name}' is not UTF-32 (odd length)")
        return
    dtype = dtype_from_type_name(record.type_name)
    if dtype is None:
        raise cursor.error(
            f"parameter '{record.name}' has the unknown tensor_type "
            f"{record.type_name!r}; expected one of {sorted(map(str, _NUMBER_TYPES))}"
        )
    if any(d < 0 for d in record.dims):
        raise cursor.error(f"parameter '{record.name}' has negative dims {record.dims}")
    itemsize = mstype.type_size_in_bytes(dtype)
    shape = record.dims
    if record.dims == (0,) and record.nbytes == itemsize:
        shape = ()  # MindSpore r1.x wrote a 0-d tensor as dims [0]
    expected = math.prod(shape) * itemsize
    if expected != record.nbytes:
        raise cursor.error(
            f"parameter '{record.name}' declares shape {shape} of {dtype} "
            f"({expected} bytes) but holds {record.nbytes} bytes"
        )
    record.shape, record.dtype = shape, dtype


def read_index(fd: int, path: str) -> Index:
    """Read the headers of the open file ``fd``: every parameter's name, shape,
    dtype and chunks (``path`` names the file in errors).

    Consecutive entries with one tag are one chunked tensor. A tag seen again
    after other entries is a new parameter that replaces the first (MindSpore).

    Raises:
        CkptFormatError: If the file is not a well-formed checkpoint.
    """
    size = os.fstat(fd).st_size
    payload_len, crc = size, None
    if size >= CRC_TRAILER_LEN:
        tail = os.pread(fd, CRC_TRAILER_LEN, size - CRC_TRAILER_LEN)
        if tail.startswith(CRC_MARKER):
            payload_len = size - CRC_TRAILER_LEN
            crc = int.from_bytes(tail[len(CRC_MARKER) :], "big")
    cursor = _Cursor(fd, path, payload_len)
    records: list[Record] = []
    for tag, dims, type_name, offset, length in _entries(cursor):
        last = records[-1] if records else None
        if last is not None and last.name == tag:
            if (last.dims, last.type_name) != (tuple(dims), type_name):
                raise cursor.error(f"the chunks of parameter '{tag}' disagree")
            last.chunks.append((offset, length))
            continue
        if last is not None:
            _finish_record(last, cursor)
        records.append(Record(tag, tuple(dims), type_name, [(offset, length)]))
    if records:
        _finish_record(records[-1], cursor)
    seen: set[str] = set()
    duplicates = []
    for record in records:
        if record.name in seen:
            duplicates.append(record.name)
        seen.add(record.name)
    return Index(path, size, payload_len, crc, records, duplicates)


def _pread_into(fd: int, view: memoryview, offset: int, path: str) -> None:
    done = 0
    while done < len(view):
        part = view[done : done + _READ_STEP]
        if hasattr(os, "preadv"):
            count = os.preadv(fd, [part], offset + done)
        else:  # pragma: no cover - platforms without preadv: one extra copy
            data = os.pread(fd, len(part), offset + done)
            count = len(data)
            part[:count] = data
        if count <= 0:
            raise CkptFormatError(
                f"The checkpoint file '{path}' ended while reading it (it was "
                "truncated or replaced during the load)."
            )
        done += count


def read_values(
    fd: int, records: list[Record], path: str, mapped: bool = True
) -> list[torch.Tensor | str]:
    """The values of ``records``: views of the mapped file where possible (see
    Note [mapped loads]), else new tensors filled straight from the file.

    A copied tensor is allocated once (``torch.empty``) and the file's bytes are
    read into its memory; large reads are split into `_PIECE`-sized reads spread
    over a few threads.
    """
    _require_little_endian()
    file_map = _ckpt_mmap.FileMap(fd, os.fstat(fd).st_size) if mapped else None
    values: list[torch.Tensor | str] = []
    strings: list[tuple[int, bytearray]] = []
    jobs: list[tuple[memoryview, int]] = []
    for record in records:
        if record.dtype is None:
            raw = bytearray(record.nbytes)
            strings.append((len(values), raw))
            values.append("")
            dest = memoryview(raw)
        else:
            view = None
            if file_map is not None:
                view = file_map.tensor(record.chunks, record.shape, record.dtype)
            if view is not None:
                values.append(view)
                continue
            out = torch.empty(record.shape, dtype=mstype.to_torch(record.dtype))
            values.append(out)
            dest = out.reshape(-1).view(torch.uint8).numpy().data
        position = 0
        for offset, length in record.chunks:
            for start in range(0, length, _PIECE):
                size = min(_PIECE, length - start)
                jobs.append(
                    (dest[position + start : position + start + size], offset + start)
                )
            position += length
    _read_jobs(fd, jobs, path)
    for record, value in zip(records, values, strict=True):
        if record.dtype is mstype.bool_ and isinstance(value, torch.Tensor):
            raw_bytes = value.view(torch.uint8)
            if raw_bytes.numel() and int(raw_bytes.max()) > 1:
                value.copy_(raw_bytes != 0)  # torch assumes bool bytes are 0 or 1
    for position, raw in strings:
        try:
            values[position] = raw.decode("utf-32-le")
        except UnicodeDecodeError as err:
            raise CkptFormatError(
                f"The checkpoint file '{path}' is corrupted: the string "
                f"'{records[position].name}' is not valid UTF-32."
            ) from err
    return values


def _read_jobs(fd: int, jobs: list[tuple[memoryview, int]], path: str) -> None:
    total = sum(len(view) for view, _ in jobs)
    if not total:
        return
    if hasattr(os, "posix_fadvise"):
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)  # larger read-ahead
    workers = min(_READ_THREADS, os.cpu_count() or 1)
    if workers > 1 and total >= 4 * _PIECE:
        with ThreadPoolExecutor(workers, thread_name_prefix="spore-ckpt-read") as pool:
            list(pool.map(lambda job: _pread_into(fd, job[0], job[1], path), jobs))
    else:
        for view, offset in jobs:
            _pread_into(fd, view, offset, path)


def payload_crc(fd: int, payload_len: int, path: str) -> int:
    """CRC-32 of the first ``payload_len`` bytes, streamed in 8 MiB blocks."""
    block = memoryview(bytearray(8 << 20))
    crc = offset = 0
    while offset < payload_len:
        view = block[: min(len(block), payload_len - offset)]
        _pread_into(fd, view, offset, path)
        crc = zlib.crc32(view, crc)
        offset += len(view)
    return crc
