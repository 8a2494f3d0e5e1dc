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
            with os.fdopen(fd, "wb", buffering=1 << 20) as out:
                entries = (
                    _ckpt_format.string_entry(name, value)
                    if isinstance(value, str)
                    else _ckpt_format.tensor_entry(name, value)
                    for name, value in items
                )
                _ckpt_format.write_checkpoint(out, entries, crc)
                out.flush()
                os.fsync(out.fileno())
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
