"""Start the ranks of a tensor-parallel test as real processes on 127.0.0.1.

Each rank is ``python WORKER OUT_DIR`` with the variables torchrun sets (``RANK``,
``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``...), so the worker joins with
``spore.communication.init()`` as a user's script does. Every wait is bounded:
whatever still runs after ``timeout`` seconds is killed and reported.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A port nobody listens on right now (bound and released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch(worker: Path, world: int, out: Path, timeout: float) -> list[str]:
    """Run ``world`` ranks of ``worker`` and return their outputs.

    Raises:
        AssertionError: If a rank exits with an error or the launch outlives
            ``timeout`` (every rank is killed then).
    """
    port = str(free_port())
    procs = []
    for rank in range(world):
        env = dict(
            os.environ,
            PYTHONPATH=str(ROOT),
            OMP_NUM_THREADS="1",
            RANK=str(rank),
            LOCAL_RANK=str(rank),
            WORLD_SIZE=str(world),
            LOCAL_WORLD_SIZE=str(world),
            MASTER_ADDR="127.0.0.1",
            MASTER_PORT=port,
            SPORE_COMM_TIMEOUT="30",
        )
        procs.append(
            subprocess.Popen(
                [sys.executable, str(worker), str(out)],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    outputs = []
    try:
        for proc in procs:
            outputs.append(proc.communicate(timeout=timeout)[0])
    except subprocess.TimeoutExpired as err:
        for proc in procs:
            proc.kill()
        for proc in procs:
            proc.communicate(timeout=10)
        raise AssertionError(
            f"{worker.name}: the {world} ranks did not finish within {timeout} s"
        ) from err
    for rank, (proc, text) in enumerate(zip(procs, outputs, strict=True)):
        assert proc.returncode == 0, f"rank {rank} exited {proc.returncode}:\n{text}"
    return outputs
