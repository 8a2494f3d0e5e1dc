"""Writing checkpoint files: atomically, and in a background thread.

A file is written to a temporary file in the same directory, fsynced, made
read-only and renamed over the target, then the directory is fsynced: a process
killed at any point leaves either the previous file or the new one, never a
mixture. `AsyncWriter` runs one such write at a time in a background thread.

Note [overlapped save]
A save cannot end before the disk holds every byte (the fsync waits for it). To
keep the disk busy from the first megabytes on, tensor bytes are written straight
from the tensors' memory in `_WRITE_STEP` pieces, and a second thread
(`_Writeback`) asks the kernel to start writing back each finished range
(``sync_file_range``) while the next pieces are written; the final fsync then
waits only for the last few MiB. Starting write-back on the writing thread itself
made writing and the disk take turns (it blocks when the device queue is full).
Each write covers one aligned 512 KiB range of the file, so the page cache holds
the file in 512 KiB folios, mapped 4 KiB at a time by a load right after the
save. 2 MiB writes would leave 2 MiB folios, mapped whole (FilePmdMapped 2560 of
2560 MiB instead of 0, `bench/probe_ckpt_io.py save-steps`), but saves with them
were slower: 1 GiB in 200 tensors took 1.12-2.72 s against 0.79-1.36 s with 512 KiB
writes, slower in each of six rounds (`save-steps --case many --no-loads`,
bench/README.md), presumably because the benchmark VM's host takes free memory back
in whole 2 MiB blocks, which is what a 2 MiB folio needs. With 1 MiB hand-overs the
disk keeps up (the final fsync takes milliseconds); what is left of a save's time
is the kernel's copy into the page cache (`probe_ckpt_io.py disk-floor`).
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
from collections.abc import Callable
from typing import Any

from spore.train import _ckpt_encode, _safetensors_format

# ---- writing -------------------------------------------------------------------------

_GATHER_BYTES = 1 << 20  # small pieces are gathered up to this before a write
_GATHER_PIECES = 512  # below the kernel's IOV_MAX (1024)
# Bytes per write call (each covers one aligned range of this size), and how much
# is handed to the disk at a time behind the writer. See Note [overlapped save]
# for the measurements behind both.
_WRITE_STEP = 512 << 10
_WRITEBACK_BYTES = 1 << 20
_WRITEBACK_LAG = 4 << 20  # ... of the pages this far behind the end
_MAX_SYSCALL = 1 << 30  # Linux writes at most ~2 GiB per call


def _sync_file_range() -> Callable[[int, int, int], Any] | None:
    """Linux's sync_file_range(SYNC_FILE_RANGE_WRITE), or None where it is missing."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        function = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):  # pragma: no cover - non-glibc systems
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    return lambda fd, offset, count: function(fd, offset, count, 2)


_START_WRITEBACK = _sync_file_range()


class _Writeback:
    """Starts the disk write-back of what has been written, on its own thread.

    Starting write-back can block (the device queue fills up); on the writing
    thread that would make writing and the disk take turns. Here the writer only
    reports how far it got, the disk works while the next bytes are written, and
    the final fsync waits for the tail alone. See Note [overlapped save].
    """

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._cond = threading.Condition()
        self._written = 0
        self._closed = False
        self._thread: threading.Thread | None = None
        if _START_WRITEBACK is not None:
            self._thread = threading.Thread(
                target=self._run, name="spore-ckpt-writeback", daemon=True
            )
            self._thread.start()

    def advance(self, written: int) -> None:
        with self._cond:
            self._written = written
            self._cond.notify()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join()

    def _target(self) -> int:
        # Whole pages a little behind the end only: appending to a page that is
        # under write-back waits for the disk.
        return (self._written - _WRITEBACK_LAG) & ~4095

    def _run(self) -> None:
        assert _START_WRITEBACK is not None
        started = 0
        while True:
            with self._cond:
                while not self._closed and self._target() - started < _WRITEBACK_BYTES:
                    self._cond.wait()
                if self._closed:
                    return  # the fsync writes the rest
                end = self._target()
            _START_WRITEBACK(self._fd, started, end - started)  # errors: fsync's
            started = end


class _FileSink:
    """Writes pieces to a file descriptor without copying large ones.

    Tensor bytes go to the kernel straight from the tensor's memory (``writev``
    gathers them with the small headers before them). Each write covers one
    `_WRITE_STEP`-aligned range of the file, whole where it can, so the page cache
    holds the file in folios of that size (Note [overlapped save]). `_Writeback`
    keeps the disk busy behind the writer.
    """

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._pieces: list[memoryview] = []
        self._pending = 0
        self._written = 0
        self._writeback = _Writeback(fd)

    def write(self, data: Any) -> None:
        """Queue ``data`` (kept by reference: it must not change until flushed)."""
        size = len(data)
        if not size:
            return
        self._pieces.append(memoryview(data).cast("B"))
        self._pending += size
        if self._pending >= _GATHER_BYTES or len(self._pieces) >= _GATHER_PIECES:
            self._drain(final=False)

    def flush(self) -> None:
        """Write everything queued."""
        self._drain(final=True)

    def _drain(self, final: bool) -> None:
        step = min(_WRITE_STEP, _MAX_SYSCALL)
        pieces = self._pieces
        while pieces:
            room = step - self._written % step  # bytes to the next step boundary
            if not final and self._pending < room and len(pieces) < _GATHER_PIECES:
                break  # keep the tail until it fills the range
            batch, total = [], 0
            for piece in pieces[:_GATHER_PIECES]:
                if total >= room:
                    break
                batch.append(piece[: room - total])
                total += len(batch[-1])
            written = os.writev(self.fd, batch)
            self._written += written
            self._pending -= written
            self._writeback.advance(self._written)
            while written:  # drop what was written, keep the rest
                if written >= len(pieces[0]):
                    written -= len(pieces[0])
                    pieces.pop(0)
                else:
                    pieces[0] = pieces[0][written:]
                    written = 0

    def close(self) -> None:
        """Stop the write-back thread (what is queued and not flushed is lost)."""
        self._writeback.close()


def _fsync_directory(directory: str) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - directories cannot be opened everywhere
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def write_atomically(
    path: str, items: list[tuple[str, Any]], crc: bool, fmt: str
) -> None:
    """Write to a temporary file beside ``path``, fsync, chmod 0400, rename."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(
        prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory
    )
    try:
        if fmt == "ckpt":
            with os.fdopen(fd, "wb", buffering=0) as file:
                out = _FileSink(file.fileno())
                entries = (
                    _ckpt_encode.string_entry(name, value)
                    if isinstance(value, str)
                    else _ckpt_encode.tensor_entry(name, value)
                    for name, value in items
                )
                try:
                    _ckpt_encode.write_checkpoint(out, entries, crc)
                    out.flush()
                finally:
                    out.close()
                os.fsync(file.fileno())
        else:
            os.close(fd)
            _safetensors_format.write_safetensors(tmp, items, crc)
            with open(tmp, "rb") as written:
                os.fsync(written.fileno())
        os.chmod(tmp, 0o400)  # MindSpore parity: saved checkpoints are read-only
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_directory(directory)


# ---- the background writer -----------------------------------------------------------


class AsyncWriter:
    """At most one background save at a time; its error is raised to the caller."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._path: str | None = None
        self._error: BaseException | None = None

    def start(self, path: str, job: Callable[[], None]) -> None:
        self.wait()

        def run() -> None:
            try:
                job()
            except BaseException as err:  # reported by wait()
                self._error = err

        thread = threading.Thread(target=run, name="spore-async-save-ckpt")
        with self._lock:
            self._thread, self._path = thread, path
        thread.start()

    def pending_path(self) -> str | None:
        with self._lock:
            return self._path if self._thread is not None else None

    def wait(self, timeout: float | None = None) -> bool:
        with self._lock:
            thread = self._thread
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                return False
            with self._lock:
                if self._thread is thread:
                    self._thread, self._path = None, None
        error, self._error = self._error, None
        if error is not None:
            raise RuntimeError(
                f"For 'save_checkpoint', the asynchronous save failed: {error}"
            ) from error
        return True

    def report_at_exit(self) -> None:
        try:
            self.wait()
        except RuntimeError as err:
            print(f"spore: {err}", file=sys.stderr)
