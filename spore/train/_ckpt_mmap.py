"""Mapped ``.ckpt`` reads: tensors that are views of the file's pages, not copies.

See Note [mapped loads]. `FileMap` maps a checkpoint file privately (copy on
write: writing to a loaded tensor never reaches the file) and hands out
``torch.frombuffer`` views of it; the mapping lives as long as any view does.
"""

from __future__ import annotations

import contextlib
import ctypes
import mmap
import os
import sys
import weakref
from collections.abc import Callable
from typing import Any

import torch

from spore.common import dtype as mstype

# Note [mapped loads]
# A tensor's bytes are contiguous in a .ckpt (one entry) or in page-aligned pieces
# (the chunks of a sliced tensor in files spore writes), so a load can hand out
# views of the mapped file, as safetensors does, instead of copying every byte out
# of the page cache. The map is private (MAP_PRIVATE, copy on write): an optimizer
# updating a loaded tensor in place copies the pages it writes and never touches
# the file. A view is handed out only where the bytes start at a multiple of the
# element size (files spore writes: always, Note [aligned payloads]; MindSpore's:
# where the header happens to end so); misaligned tensors are copied. Tensors under
# `MAP_MIN_BYTES` are copied too: cheap, and they then do not keep the file mapped.
# A mapped range that is not in the page cache is read ahead at load
# (MADV_WILLNEED), in `_READ_AHEAD_STEP` pieces: the kernel caps one request at
# its read-ahead window (read_ahead_kb, often 128 KiB), so one call for a 512 MiB
# chunk read only its first few MiB, and the rest came in as the first touch
# faulted it in, one window at a time. A cold 2.5 GiB load + sum took 1.43 s
# asked for whole, 3.06 s with one request per range, 3.26 s with none, and
# 3.43 s for safetensors' load_file (`bench/probe_ckpt_io.py cold-read`). At
# most half of the memory the kernel reports available is read ahead per file;
# past that, pages come in at first touch.
# A range that is cached (judged by its first, middle and last pages) is left
# alone: its page tables fill at the first touch, each fault mapping a run of
# cached pages. Filling them at load instead (MADV_POPULATE_READ, after a
# mincore of every page) made a warm 1 GiB load plus a sum over it 20% slower here:
# populate walks the range page by page and the full mincore costs 6 ms per GiB.
# A whole-file map is first judged as a whole, by `_FILE_SAMPLES` pages spread
# over it: when all are cached, no range is looked at, which takes ~1 ms off a
# warm load of 200 tensors (three mincore calls each).
# Chunks are placed side by side with MAP_FIXED into one reserved range (Linux), so
# a sliced 2.5 GiB tensor is one view as well. Every map starts on a 2 MiB
# boundary and chunks start at 2 MiB multiples in spore's files, so file offsets
# and addresses agree modulo 2 MiB and the kernel maps any 2 MiB folios of the
# page cache (readahead makes them) with one entry each.
# On Linux the maps are made through libc, which keeps no file descriptor open
# (Python's mmap would dup one per map).
# Rules that follow, as for safetensors' loads:
# - a file replaced by rename (spore's saves) leaves the mapped inode intact;
# - a file truncated in place while views live makes touching them raise SIGBUS;
# - a file rewritten in place shows through pages not yet written to.
# SPORE_CKPT_MMAP=0 turns mapping off (every tensor copied).

MAP_MIN_BYTES = 64 * 1024
_PAGE = mmap.PAGESIZE
_MAP_FIXED = 0x10  # Linux's values (not exported by Python's mmap module)
_PROT_NONE = 0
_MADV_WILLNEED = 3
# Read-ahead is asked for in pieces of this size, Linux's default read-ahead
# window, so that a request is not cut short on a usual set-up.
_READ_AHEAD_STEP = 128 * 1024
# Pages sampled to judge whether a whole mapped file is cached.
_FILE_SAMPLES = 64
# Maps start on this boundary, so that a file offset and its address agree modulo
# a huge page and the kernel can map the page cache's 2 MiB folios whole.
_HUGE_PAGE = 2 * 1024 * 1024


def mapping_enabled() -> bool:
    """False when the environment variable SPORE_CKPT_MMAP is ``0``."""
    return os.environ.get("SPORE_CKPT_MMAP", "1").strip() != "0"


class _Libc:
    """libc's mmap/munmap/madvise through ctypes (64-bit Linux only)."""

    def __init__(self) -> None:
        lib = ctypes.CDLL(None, use_errno=True)
        self.mmap = lib.mmap
        self.mmap.restype = ctypes.c_void_p
        self.mmap.argtypes = [
            ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
            ctypes.c_int, ctypes.c_int64,
        ]  # fmt: skip
        self.munmap = lib.munmap
        self.munmap.restype = ctypes.c_int
        self.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
        self.madvise = lib.madvise
        self.madvise.restype = ctypes.c_int
        self.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        self.mincore = lib.mincore
        self.mincore.restype = ctypes.c_int
        self.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p]

    def map(self, address: int | None, length: int, prot: int, flags: int,
            fd: int, offset: int) -> int | None:  # fmt: skip
        got = self.mmap(address, length, prot, flags, fd, offset)
        if got is None or got == ctypes.c_void_p(-1).value:
            return None
        return int(got)

    def reserve(self, length: int) -> tuple[int, int, int] | None:
        """An inaccessible range of ``length`` bytes that starts on a huge-page
        boundary, for file maps to be placed in: ``(address, reserved start,
        reserved length)``; unmapping the reservation unmaps them too."""
        span = length + _HUGE_PAGE
        anonymous = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS
        start = self.map(None, span, _PROT_NONE, anonymous, -1, 0)
        if start is None:
            return None
        return _round_up(start, _HUGE_PAGE), start, span

    def place(self, address: int, length: int, fd: int, offset: int) -> bool:
        """Map ``length`` bytes of ``fd`` from ``offset``, private and writable,
        at ``address`` inside a reservation."""
        rw = mmap.PROT_READ | mmap.PROT_WRITE
        fixed = mmap.MAP_PRIVATE | _MAP_FIXED
        return self.map(address, length, rw, fixed, fd, offset) is not None

    def resident(self, address: int, length: int, samples: int = 3) -> bool:
        """Whether ``samples`` pages spread evenly over the range, its first and
        last among them, are in the page cache (mincore): a file is cached whole
        or read ahead in long runs, so a few pages tell, where a vector over every
        page costs 6 ms per GiB."""
        last = (length - 1) // _PAGE
        vector = ctypes.create_string_buffer(1)  # per call: loads may run in threads
        steps = max(1, min(samples, last + 1) - 1)
        for page in sorted({last * k // steps for k in range(steps + 1)}):
            if self.mincore(address + page * _PAGE, _PAGE, vector) != 0:
                return False
            if not vector.raw[0] & 1:  # bit 0: resident
                return False
        return True

    def prefetch(self, address: int, length: int, budget: int) -> int:
        """Prepare ``length`` bytes mapped at ``address`` (page aligned) for
        reading: unless cached, ask the kernel to read up to ``budget`` of them
        (MADV_WILLNEED, piece by piece). Returns the bytes asked for. Errors are
        ignored: this only saves time."""
        if budget <= 0 or self.resident(address, length):
            return 0
        asked = min(length, budget)
        for offset in range(0, asked, _READ_AHEAD_STEP):
            piece = min(_READ_AHEAD_STEP, asked - offset)
            self.madvise(address + offset, piece, _MADV_WILLNEED)
        return asked


def _available_memory() -> int:
    """MemAvailable from /proc/meminfo in bytes (0 when unreadable)."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _load_libc() -> _Libc | None:
    if not sys.platform.startswith("linux") or ctypes.sizeof(ctypes.c_void_p) != 8:
        return None
    try:
        return _Libc()
    except (OSError, AttributeError):  # pragma: no cover - no usable libc
        return None


_LIBC = _load_libc()


class _ReadAhead:
    """`_Libc.prefetch` within one file's share of memory (Note [mapped loads]):
    half of what was available at its first read-ahead, and nothing for a file
    mapped whole (`whole_file`) and found cached whole."""

    def __init__(self) -> None:
        self._left: int | None = None
        self.whole_file: tuple[int, int] | None = None  # (address, length)

    def __call__(self, libc: _Libc, address: int, length: int) -> None:
        if self._left is None:
            whole = self.whole_file
            if whole is not None and libc.resident(*whole, _FILE_SAMPLES):
                self._left = 0
            else:
                self._left = _available_memory() // 2
        self._left -= libc.prefetch(address, length, self._left)


def _round_up(value: int, step: int) -> int:
    return -(-value // step) * step


def _owned_buffer(libc: _Libc, address: int, length: int, start: int, span: int) -> Any:
    """A ctypes array over ``length`` bytes at ``address`` whose collection unmaps
    the ``span`` bytes reserved at ``start`` (torch.frombuffer keeps it alive while
    views live)."""
    buffer = (ctypes.c_ubyte * length).from_address(address)
    finalizer = weakref.finalize(buffer, libc.munmap, start, span)
    finalizer.atexit = False  # tensors may outlive atexit hooks; exit unmaps anyway
    return buffer


class FileMap:
    """Views of one open checkpoint file's tensors; the map is made on first use.

    Args:
        fd: The open file (read-only is enough); it may be closed once the views
            are made.
        size: The file's size when it was indexed.
        prefetch: Prepare mapped ranges for reading (`_Libc.prefetch`).
    """

    def __init__(self, fd: int, size: int, prefetch: bool = True) -> None:
        self._fd, self._size, self._prefetch = fd, size, prefetch
        self._read_ahead = _ReadAhead()
        self._buffer: Any = None
        self._advise: Callable[[int, int], None] = lambda offset, length: None
        self._failed = not mapping_enabled() or size == 0

    def tensor(
        self, chunks: list[tuple[int, int]], shape: tuple[int, ...], dtype: mstype.Type
    ) -> torch.Tensor | None:
        """A view of the file holding the tensor stored in ``chunks``, or None when
        it must be copied (too small, misaligned, or mapping is unavailable)."""
        nbytes = sum(length for _, length in chunks)
        if self._failed or nbytes < MAP_MIN_BYTES:
            return None
        torch_dtype = mstype.to_torch(dtype)
        itemsize = mstype.type_size_in_bytes(dtype)
        if chunks[0][0] % itemsize:
            return None  # misaligned: a typed view would break kernels' assumptions
        located = self._locate(chunks, nbytes)
        if located is None:
            return None
        buffer, offset = located
        flat = torch.frombuffer(
            buffer, dtype=torch_dtype, count=nbytes // itemsize, offset=offset
        )
        return flat.reshape(shape)

    def raw(self, chunks: list[tuple[int, int]]) -> torch.Tensor | None:
        """The bytes stored in ``chunks`` as one uint8 view (any alignment: bytes
        have none), or None when they cannot be mapped as one range."""
        nbytes = sum(length for _, length in chunks)
        if self._failed or nbytes == 0:
            return None
        located = self._locate(chunks, nbytes)
        if located is None:
            return None
        buffer, offset = located
        return torch.frombuffer(buffer, dtype=torch.uint8, count=nbytes, offset=offset)

    def _locate(
        self, chunks: list[tuple[int, int]], nbytes: int
    ) -> tuple[Any, int] | None:
        """A buffer and the offset in it where the bytes of ``chunks`` lie."""
        if any(offset + length > self._size for offset, length in chunks):
            return None
        if len(chunks) > 1:
            stitched = self._stitched(chunks, nbytes)
            return None if stitched is None else (stitched, 0)
        buffer = self._whole_file()
        if buffer is None:
            return None
        if self._prefetch:
            self._advise(*chunks[0])
        return buffer, chunks[0][0]

    def _whole_file(self) -> Any:
        if self._buffer is None and not self._failed:
            try:
                self._buffer = self._map_whole_file()
            except (OSError, ValueError):  # e.g. a file system without mmap
                self._buffer = None
            self._failed = self._buffer is None
        return self._buffer

    def _map_whole_file(self) -> Any:
        if os.fstat(self._fd).st_size < self._size:
            return None  # shrunk since it was indexed: copying reports it
        if _LIBC is None:  # Python's mmap: keeps a duplicate descriptor open
            mapped = mmap.mmap(self._fd, self._size, access=mmap.ACCESS_COPY)
            size = self._size

            def advise_python(offset: int, length: int) -> None:
                start = offset - offset % _PAGE
                with contextlib.suppress(AttributeError, OSError, ValueError):
                    mapped.madvise(
                        mmap.MADV_WILLNEED,  # type: ignore[attr-defined]
                        start,
                        min(length + offset - start, size - start),
                    )

            self._advise = advise_python
            return mapped
        libc = _LIBC
        reserved = libc.reserve(self._size)
        if reserved is None:
            return None
        address, start, span = reserved
        if not libc.place(address, self._size, self._fd, 0):
            libc.munmap(start, span)
            return None

        read_ahead = self._read_ahead  # not self: the buffer must not be in a cycle
        read_ahead.whole_file = (address, self._size)

        def advise(offset: int, length: int) -> None:
            start = offset - offset % _PAGE
            read_ahead(libc, address + start, length + offset - start)

        self._advise = advise
        return _owned_buffer(libc, address, self._size, start, span)

    def _stitched(self, chunks: list[tuple[int, int]], nbytes: int) -> Any:
        """Map page-aligned chunks side by side into one reserved range (Linux)."""
        libc = _LIBC
        last = len(chunks) - 1
        if libc is None or any(
            offset % _PAGE or (index < last and length % _PAGE)
            for index, (offset, length) in enumerate(chunks)
        ):
            return None
        reserved = libc.reserve(_round_up(nbytes, _PAGE))
        if reserved is None:
            return None
        base, start, span = reserved
        position = 0
        for offset, length in chunks:
            size = _round_up(length, _PAGE)
            if not libc.place(base + position, size, self._fd, offset):
                libc.munmap(start, span)
                return None
            if self._prefetch:
                self._read_ahead(libc, base + position, size)
            position += length
        return _owned_buffer(libc, base, nbytes, start, span)
