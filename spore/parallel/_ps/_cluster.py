"""Who is who in a parameter-server job, and the connections between them.

Roles come from MindSpore's variables (``MS_ROLE``, ``MS_SERVER_NUM``,
``MS_WORKER_NUM``, ``MS_SCHED_HOST``, ``MS_SCHED_PORT``; ``spore.ps_launch``
sets them and ``MS_NODE_ID``), or from a torchrun job's ranks: the first
``server_num`` ranks are servers, the rest workers. Everything meets at one
``TCPStore`` on ``MS_SCHED_HOST:MS_SCHED_PORT`` (torchrun: ``MASTER_ADDR:
MASTER_PORT``): torch.distributed.rpc among all servers and workers rendezvous
there, and so does the workers' own collective group (gloo), in which a worker's
rank is its worker index, so data-parallel code runs among the workers unchanged.

spore needs no scheduler: a process started as ``MS_SCHED`` (MindSpore r1.3
scripts start one) is accepted and leaves at once. The first server to bind the
port hosts the store.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

import torch.distributed as dist

from spore import context as _context

WORKER, SERVER, SCHED = "MS_WORKER", "MS_PSERVER", "MS_SCHED"
_MS_VARIABLES = ("MS_SERVER_NUM", "MS_WORKER_NUM", "MS_SCHED_HOST", "MS_SCHED_PORT")
LAUNCH_HINT = (
    "Start the job with 'python -m spore.ps_launch --server_num S --worker_num W "
    "train.py', export MS_ROLE, MS_SERVER_NUM, MS_WORKER_NUM, MS_SCHED_HOST and "
    "MS_SCHED_PORT for each process, or run it under torchrun with "
    "set_ps_context(server_num=S)."
)


@dataclass(frozen=True)
class Cluster:
    """This process's place in the job."""

    role: str
    index: int  # among the processes of the same role; -1 until assigned
    server_num: int
    worker_num: int
    host: str
    port: int
    timeout: float
    torchrun_rank: int | None  # the torchrun rank, None for an MS_ROLE launch

    @property
    def rpc_rank(self) -> int:
        return self.index if self.role == SERVER else self.server_num + self.index

    @property
    def world(self) -> int:
        return self.server_num + self.worker_num


def server_name(index: int) -> str:
    return f"ps_server_{index}"


def worker_name(index: int) -> str:
    return f"ps_worker_{index}"


def _int_variable(name: str, minimum: int) -> int:
    raw = os.environ.get(name, "")
    try:
        value = int(raw)
    except ValueError:
        value = minimum - 1
    if value < minimum:
        raise RuntimeError(
            f"For 'init', the environment variable {name} should be an integer >= "
            f"{minimum}, but got {raw!r}. " + LAUNCH_HINT
        )
    return value


def resolve(timeout: float) -> Cluster:
    """This process's role and the job's shape, from the environment.

    Raises:
        RuntimeError: If the variables are missing, malformed or inconsistent.
    """
    role = os.environ.get("MS_ROLE")
    if role is not None:
        if role not in (WORKER, SERVER, SCHED):
            raise RuntimeError(
                f"For 'init', MS_ROLE should be one of {WORKER}, {SERVER} or {SCHED}, "
                f"but got {role!r}. " + LAUNCH_HINT
            )
        missing = [name for name in _MS_VARIABLES if not os.environ.get(name)]
        if missing:
            raise RuntimeError(
                f"For 'init', parameter-server mode needs the environment variables "
                f"{missing} (MS_ROLE={role} is set). " + LAUNCH_HINT
            )
        servers = _int_variable("MS_SERVER_NUM", 1)
        workers = _int_variable("MS_WORKER_NUM", 1)
        port = _int_variable("MS_SCHED_PORT", 1)
        index = -1
        if os.environ.get("MS_NODE_ID", "").isdigit():
            index = int(os.environ["MS_NODE_ID"])
            limit = servers if role == SERVER else workers
            if role != SCHED and index >= limit:
                raise RuntimeError(
                    f"For 'init', MS_NODE_ID={index} is out of range for {role} "
                    f"with {limit} such processes."
                )
        host = os.environ["MS_SCHED_HOST"]
        return Cluster(role, index, servers, workers, host, port, timeout, None)
    if os.environ.get("RANK") and os.environ.get("WORLD_SIZE"):
        rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
        servers = _context.get_ps_context("server_num")
        if servers is None:
            servers = _int_variable("MS_SERVER_NUM", 1)
        if servers >= world:
            raise RuntimeError(
                f"For 'init', a torchrun job of WORLD_SIZE={world} cannot have "
                f"server_num={servers} servers and at least one worker."
            )
        role = SERVER if rank < servers else WORKER
        index = rank if role == SERVER else rank - servers
        host = os.environ.get("MASTER_ADDR", "127.0.0.1")
        port = int(os.environ.get("MASTER_PORT", "0"))
        return Cluster(role, index, servers, world - servers, host, port, timeout, rank)
    raise RuntimeError(
        "For 'init', parameter-server mode is on but this process has no role: "
        "MS_ROLE is not set and it was not started by torchrun. " + LAUNCH_HINT
    )


def open_store(cluster: Cluster) -> tuple[dist.Store, bool]:
    """The job's TCPStore and whether this process hosts it: torchrun (or its
    rank 0) hosts it, else the first server to bind the port; everyone else
    connects within the timeout.

    Raises:
        RuntimeError: If no store can be reached within the timeout.
    """
    wait = timedelta(seconds=cluster.timeout)
    if cluster.torchrun_rank is not None:
        agent = os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True"
        master = cluster.torchrun_rank == 0 and not agent
        return _tcp_store(cluster, master, wait), master
    if cluster.role == SERVER:
        try:
            store = dist.TCPStore(
                cluster.host, cluster.port, is_master=True, timeout=wait,
                wait_for_workers=False,
            )  # fmt: skip
            return store, True
        except (RuntimeError, OSError):
            pass  # another server hosts it
    return _tcp_store(cluster, False, wait), False


def _tcp_store(cluster: Cluster, master: bool, wait: timedelta) -> dist.Store:
    try:
        return dist.TCPStore(
            cluster.host, cluster.port, is_master=master, timeout=wait,
            wait_for_workers=False,
        )  # fmt: skip
    except Exception as err:  # torch raises RuntimeError, DistNetworkError, ...
        raise RuntimeError(
            f"For 'init', the {cluster.role} process could not reach the "
            f"parameter-server rendezvous at {cluster.host}:{cluster.port} within "
            f"{cluster.timeout:g} s ({type(err).__name__}: {err}). Check that a "
            f"server runs on MS_SCHED_HOST and that all processes use the same port."
        ) from err


def assign_index(cluster: Cluster, store: dist.Store) -> Cluster:
    """``cluster`` with its index, taken from a counter in the store if the
    launcher did not set ``MS_NODE_ID``.

    Raises:
        RuntimeError: If more processes of this role arrive than the job declares.
    """
    if cluster.index >= 0:
        return cluster
    index = int(store.add(f"spore/ps/index/{cluster.role}", 1)) - 1
    limit = cluster.server_num if cluster.role == SERVER else cluster.worker_num
    if index >= limit:
        raise RuntimeError(
            f"For 'init', this is {cluster.role} number {index + 1}, but the job "
            f"declares {limit} (MS_SERVER_NUM / MS_WORKER_NUM)."
        )
    return Cluster(
        cluster.role, index, cluster.server_num, cluster.worker_num, cluster.host,
        cluster.port, cluster.timeout, cluster.torchrun_rank,
    )  # fmt: skip
