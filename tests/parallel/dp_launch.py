"""Start real rank processes on 127.0.0.1 for the data-parallel tests.

Every rank is a fresh ``python dp_worker.py SCENARIO OUT`` with the variables
torchrun would set. Every wait is bounded: `launch` kills whatever is still
running after ``timeout`` seconds (the watchdog) and reports it.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

WORKER = Path(__file__).with_name("dp_worker.py")


def free_port() -> int:
    """A port nobody listens on right now (bound and released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rank_env(rank: int, world: int, port: int, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(world),
        LOCAL_WORLD_SIZE=str(world),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        OMP_NUM_THREADS="1",
        SPORE_COMM_TIMEOUT="20",
        DP_TEST_ID=str(rank),  # the report's name, even when a test spoils RANK
    )
    env.update(extra)
    return env


class Run:
    """What a launch left: exit codes, output, seconds, and each rank's JSON."""

    def __init__(self, codes: list[int | None], outputs: list[str], seconds: float,
                 out: Path, ranks: list[int]) -> None:  # fmt: skip
        self.codes = codes
        self.outputs = outputs
        self.seconds = seconds
        self.results: dict[int, Any] = {}
        for rank in ranks:
            path = out / f"rank{rank}.json"
            if path.exists():
                self.results[rank] = json.loads(path.read_text())

    def describe(self) -> str:
        parts = [f"exit codes {self.codes}, {self.seconds:.1f} s"]
        for rank, text in enumerate(self.outputs):
            parts.append(f"--- rank {rank} output ---\n{text[-3000:]}")
        return "\n".join(parts)


def launch(
    scenario: str,
    out: Path,
    world: int = 2,
    ranks: list[int] | None = None,
    timeout: float = 60.0,
    env: dict[str, str] | None = None,
    port: int | None = None,
    worker: Path = WORKER,
) -> Run:
    """Run ``scenario`` of ``worker`` as ranks ``ranks`` (default: all) of a
    ``world``-rank job.

    A rank still running after ``timeout`` seconds is killed (exit code None).
    """
    ranks = list(range(world)) if ranks is None else ranks
    port = free_port() if port is None else port
    out.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    procs = [
        subprocess.Popen(
            [sys.executable, str(worker), scenario, str(out)],
            env=rank_env(rank, world, port, **(env or {})),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for rank in ranks
    ]
    codes: list[int | None] = []
    outputs: list[str] = []
    for proc in procs:
        remaining = max(0.1, timeout - (time.monotonic() - start))
        try:
            text, _ = proc.communicate(timeout=remaining)
            codes.append(proc.returncode)
        except subprocess.TimeoutExpired:
            proc.kill()
            text, _ = proc.communicate(timeout=10)
            codes.append(None)
        outputs.append(text or "")
    return Run(codes, outputs, time.monotonic() - start, out, ranks)
