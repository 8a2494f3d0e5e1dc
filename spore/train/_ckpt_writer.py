"""Writing checkpoint files: atomically, and in a background thread.

A file is written to a temporary file in the same directory, fsynced, made
read-only and renamed over the target, then the directory is fsynced: a process
killed at any point leaves either the previous file or the new one, never a
mixture. `AsyncWriter` runs one such write at a time in a background thread.
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
from collections.abc import Callable
from typing import Any

from spore.train import _ckpt_format, _safetensors_format

# ---- writing -------------------------------------------------------------------------

_GATHER_BYTES = 1 << 20  # small pieces are gathered up to this before a write
_GATHER_PIECES = 512  # below the kernel's IOV_MAX (1024)
_WRITEBACK_BYTES = 64 << 20  # start the disk write-back every this many bytes
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


class _FileSink:
    """Writes pieces to a file descriptor without copying large ones.

    Tensor bytes go to the kernel straight from the tensor's memory (``writev``
    gathers them with the small headers gathered before them), and the disk
    write-back is started every `_WRITEBACK_BYTES`, so the final fsync only waits
    for the tail instead of the whole file.
    """

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._pieces: list[Any] = []
        self._pending = 0
        self._written = 0
        self._synced = 0

    def write(self, data: Any) -> None:
        size = len(data)
        if not size:
            return
        self._pieces.append(data)
        self._pending += size
        if self._pending >= _GATHER_BYTES or len(self._pieces) >= _GATHER_PIECES:
            self.flush()

    def flush(self) -> None:
        pieces = [memoryview(p).cast("B") for p in self._pieces]
        self._pieces, self._pending = [], 0
        while pieces:
            batch, total = [], 0
            for piece in pieces:
                if total + len(piece) > _MAX_SYSCALL and batch:
                    break
                batch.append(piece[: _MAX_SYSCALL - total])
                total += len(batch[-1])
            written = os.writev(self.fd, batch)
            self._written += written
            while written:  # drop what was written, keep the rest
                if written >= len(pieces[0]):
                    written -= len(pieces[0])
                    pieces.pop(0)
                else:
                    pieces[0] = pieces[0][written:]
                    written = 0
        # Whole pages a little behind the end only: appending to a page that is
        # under write-back waits for the disk.
        end = (self._written - _WRITEBACK_LAG) & ~4095
        if _START_WRITEBACK is not None and end - self._synced >= _WRITEBACK_BYTES:
            _START_WRITEBACK(self.fd, self._synced, end - self._synced)
            self._synced = end


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
                    _ckpt_format.string_entry(name, value)
                    if isinstance(value, str)
                    else _ckpt_format.tensor_entry(name, value)
                    for name, value in items
                )
                _ckpt_format.write_checkpoint(out, entries, crc)
                out.flush()
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
