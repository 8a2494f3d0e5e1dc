"""MindSpore's ``.ckpt`` bytes: a streaming reader and writer of the protobuf framing.

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
headers (tag, dims, type) and records where each tensor's bytes lie; `read_tensor`
then reads those bytes straight into the destination tensor's memory. Every length
is checked against the file before anything is allocated. See Note [ckpt reading].
"""

from __future__ import annotations

import math
import os
import sys
import zlib
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch

from spore.common import dtype as mstype

# A tensor larger than this is written as several same-tag entries (MindSpore's
# SLICE_SIZE = 512 * 1024 KiB). Tests lower it to exercise chunking on small data.
SLICE_SIZE_BYTES = 512 * 1024 * 1024

CRC_MARKER = b"crc_num"
CRC_TRAILER_LEN = len(CRC_MARKER) + 10
STR_TYPE = "str"  # append_dict strings: dims [0], UTF-32LE content

_WINDOW = 64 * 1024  # header bytes read at a time
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


# ---- writing -------------------------------------------------------------------------


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


def _len_field(key: int, length: int) -> bytes:
    return bytes((key,)) + _varint(length)


def _entry_header(tag: bytes, dims: Iterable[int], type_name: bytes, n: int) -> bytes:
    """Everything of one ``Checkpoint`` message up to its ``tensor_content`` bytes."""
    tensor_head = b"".join(b"\x08" + _varint(d) for d in dims)
    tensor_head += _len_field(0x12, len(type_name)) + type_name + _len_field(0x1A, n)
    tensor_len = len(tensor_head) + n
    value_head = _len_field(0x0A, len(tag)) + tag + _len_field(0x12, tensor_len)
    value_len = len(value_head) + tensor_len
    return _len_field(0x0A, value_len) + value_head + tensor_head


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


def write_checkpoint(out: Writable, entries: Iterable[WriteEntry], crc: bool) -> None:
    """Write ``entries`` as MindSpore writes them; append the CRC trailer if ``crc``.

    A tensor over `SLICE_SIZE_BYTES` becomes consecutive same-tag entries, each with
    the full dims (MindSpore 2.x slices the raw bytes). Unlike MindSpore, an empty
    tensor is written as one entry with empty content instead of being dropped.
    """
    crc_value = 0
    slice_size = SLICE_SIZE_BYTES
    for entry in entries:
        tag = entry.name.encode("utf-8")
        type_name = entry.type_name.encode("utf-8")
        content = entry.content
        total = len(content)
        starts = range(0, total, slice_size) if total else range(1)
        for start in starts:
            piece = content[start : start + slice_size]
            header = _entry_header(tag, entry.dims, type_name, len(piece))
            out.write(header)
            out.write(piece)
            if crc:
                crc_value = zlib.crc32(piece, zlib.crc32(header, crc_value))
    if crc:
        out.write(CRC_MARKER + crc_value.to_bytes(10, "big"))


# ---- reading -------------------------------------------------------------------------

# Note [ckpt reading]
# Reading has two passes. `read_index` walks the headers with a small window
# (`_Cursor`), skipping over tensor bytes, and returns where every tensor lies; it
# checks every declared length against the file, so a hostile file fails there
# and nothing large has been allocated. `read_tensor` then allocates exactly the
# tensor (torch.empty) and preads its bytes into that memory: no intermediate
# buffer, and the peak is the size of what is returned.


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
        view = self._fill(10, limit)
        available = min(10, len(view), limit - self.pos)
        result = shift = 0
        for index in range(available):
            byte = view[index]
            result |= (byte & 0x7F) << shift
            if not byte & 0x80:
                self.pos += index + 1
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


def _entries(cursor: _Cursor) -> Iterator[tuple[str, list[int], str, int, int]]:
    end = cursor.end
    while cursor.pos < end:
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


def read_values(fd: int, records: list[Record], path: str) -> list[torch.Tensor | str]:
    """The values of ``records``: new tensors filled straight from the file.

    Each tensor is allocated once (``torch.empty``) and the file's bytes are read
    into its memory; large reads are split into `_PIECE`-sized reads spread over
    a few threads (the copy out of the page cache is the cost of a warm load).
    """
    _require_little_endian()
    if hasattr(os, "posix_fadvise"):
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)  # larger read-ahead
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
    total = sum(len(view) for view, _ in jobs)
    workers = min(_READ_THREADS, os.cpu_count() or 1)
    if workers > 1 and total >= 4 * _PIECE:
        with ThreadPoolExecutor(workers, thread_name_prefix="spore-ckpt-read") as pool:
            list(pool.map(lambda job: _pread_into(fd, job[0], job[1], path), jobs))
    else:
        for view, offset in jobs:
            _pread_into(fd, view, offset, path)
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
