"""Start a parameter-server job on this machine: ``python -m spore.ps_launch``.

    python -m spore.ps_launch --server_num 1 --worker_num 2 train.py [args...]

starts ``server_num`` server and ``worker_num`` worker processes of the same
script, each with MindSpore's variables (``MS_ROLE``, ``MS_SERVER_NUM``,
``MS_WORKER_NUM``, ``MS_SCHED_HOST``, ``MS_SCHED_PORT``) and ``MS_NODE_ID`` (its
index within its role). The script calls ``spore.set_ps_context(enable_ps=True)``
and ``spore.communication.init()`` as in MindSpore r1.3. Unless the environment
already sets it, each process gets ``THP_MEM_ALLOC_ENABLE=1`` (Note [PS buffers]).
The launcher waits for
all of them; when one fails, the others get ``--grace`` seconds to stop on their
own (they fail fast: see issue 7) and are then killed. The exit status is the
first failure's, or 0.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence

__all__ = ["launch", "main"]

# Note [PS buffers]: every push and pull lands in a buffer TensorPipe allocates
# afresh (a 100 MB gradient on the server, a 100 MB value on the worker), so the
# first touch of its pages is a large part of a step: one fault per 4 KiB page.
# PyTorch's CPU allocator backs allocations of 2 MiB and more with transparent
# huge pages when this variable is set before the process starts (it is read
# once), which cut a 100 MiB rpc echo from 0.09-0.1 s to 0.058 s here
# (bench/probes.py rpc-echo) and the push+pull of bench/bench_ps.py by 20-35%.
# torchrun users set it themselves.
THP_VARIABLE = "THP_MEM_ALLOC_ENABLE"


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def launch(
    command: Sequence[str],
    server_num: int,
    worker_num: int,
    host: str = "127.0.0.1",
    port: int | None = None,
    grace: float = 30.0,
    env: dict[str, str] | None = None,
) -> int:
    """Run ``command`` (e.g. ``[sys.executable, "train.py"]``) once per server and
    worker; return the job's exit status.

    Raises:
        ValueError: If a count is < 1, ``grace`` <= 0 or ``command`` is empty.
    """
    if server_num < 1 or worker_num < 1:
        raise ValueError(
            "For 'ps_launch', the 'server_num' and 'worker_num' should be >= 1, but "
            f"got {server_num} and {worker_num}."
        )
    if not command:
        raise ValueError("For 'ps_launch', the 'command' should not be empty.")
    if not grace > 0:
        raise ValueError(
            f"For 'ps_launch', the 'grace' should be > 0, but got {grace}."
        )
    port = _free_port(host) if port is None else port
    base = dict(os.environ if env is None else env)
    base.setdefault(THP_VARIABLE, "1")
    base.update(
        MS_SERVER_NUM=str(server_num),
        MS_WORKER_NUM=str(worker_num),
        MS_SCHED_HOST=host,
        MS_SCHED_PORT=str(port),
    )
    roles = [("MS_PSERVER", i) for i in range(server_num)]
    roles += [("MS_WORKER", i) for i in range(worker_num)]
    procs = []
    for role, index in roles:
        child = dict(base, MS_ROLE=role, MS_NODE_ID=str(index))
        procs.append(subprocess.Popen(list(command), env=child))
    return _wait_all(procs, grace)


def _wait_all(procs: list[subprocess.Popen], grace: float) -> int:
    status = 0
    deadline = None
    while True:
        running = [p for p in procs if p.poll() is None]
        for p in procs:
            if p.returncode not in (None, 0) and status == 0:
                status = p.returncode if p.returncode > 0 else 128 - p.returncode
                deadline = time.monotonic() + grace
        if not running:
            return status
        if deadline is not None and time.monotonic() > deadline:
            for p in running:
                p.send_signal(signal.SIGKILL)
            for p in running:
                p.wait()
            return status
        time.sleep(0.05)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m spore.ps_launch",
        description="Start a parameter-server job (servers and workers) here.",
    )
    parser.add_argument("--server_num", type=int, default=1)
    parser.add_argument("--worker_num", type=int, default=1)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=None, help="default: a free one")
    parser.add_argument(
        "--grace", type=float, default=30.0,
        help="seconds the others get to stop after one fails",
    )  # fmt: skip
    parser.add_argument("script")
    parser.add_argument("args", nargs=argparse.REMAINDER)
    ns = parser.parse_args(argv)
    try:
        return launch(
            [sys.executable, ns.script, *ns.args], ns.server_num, ns.worker_num,
            ns.host, ns.port, ns.grace,
        )  # fmt: skip
    except ValueError as err:
        parser.error(str(err))
    return 2


if __name__ == "__main__":
    sys.exit(main())
