"""Run tests/parallel/_ps_script.py as a real parameter-server job (one process per
role, MindSpore's variables, 127.0.0.1) and collect what each process left behind."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

SCRIPT = Path(__file__).with_name("_ps_script.py")
REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("OMP_NUM_THREADS", "1")
    env.update(extra or {})
    return env


@dataclass
class Job:
    """A started job: its processes by name ("server0", "worker1", ...)."""

    out: Path
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    codes: dict[str, int] = field(default_factory=dict)

    def wait(self, timeout: float) -> Job:
        """Wait for every process (killing what is left at ``timeout``)."""
        deadline = time.monotonic() + timeout
        for name, proc in self.procs.items():
            left = max(0.1, deadline - time.monotonic())
            try:
                self.codes[name] = proc.wait(left)
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                self.codes[name] = -9
        return self

    def log(self, name: str) -> str:
        return (self.out / f"{name}.log").read_text(errors="replace")

    def describe(self) -> str:
        return "\n".join(
            f"--- {name} (exit {self.codes.get(name)})\n{self.log(name)[-3000:]}"
            for name in self.procs
        )

    def values(self, worker: int) -> dict[str, np.ndarray]:
        with np.load(self.out / f"ps_{worker}.npz") as data:
            return {k: data[k] for k in data.files}

    def wait_for_line(self, name: str, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log(name):
                return
            time.sleep(0.05)
        raise AssertionError(f"{name} never printed {text!r}:\n{self.describe()}")


def start(
    out: Path, optimizer: str, steps: int, servers: int = 1, workers: int = 2,
    env: dict[str, str] | None = None, roles: list[tuple[str, int]] | None = None,
) -> Job:  # fmt: skip
    """Start the job's processes with MS_ROLE etc. (all of them unless ``roles``)."""
    port = free_port()
    base = child_env(env)
    base.update(
        MS_SERVER_NUM=str(servers), MS_WORKER_NUM=str(workers),
        MS_SCHED_HOST="127.0.0.1", MS_SCHED_PORT=str(port),
    )  # fmt: skip
    if roles is None:
        roles = [("MS_PSERVER", i) for i in range(servers)]
        roles += [("MS_WORKER", i) for i in range(workers)]
    job = Job(out)
    for role, index in roles:
        name = {"MS_PSERVER": "server", "MS_WORKER": "worker", "MS_SCHED": "sched"}[
            role
        ]
        name += str(index)
        cmd = [sys.executable, str(SCRIPT), str(out), optimizer, str(steps)]
        child = dict(base, MS_ROLE=role, MS_NODE_ID=str(index))
        with open(out / f"{name}.log", "wb") as log:  # the child keeps its own copy
            job.procs[name] = subprocess.Popen(
                cmd, env=child, stdout=log, stderr=subprocess.STDOUT
            )
    return job
