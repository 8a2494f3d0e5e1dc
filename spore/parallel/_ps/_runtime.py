"""Starting and ending a parameter-server process (``communication.init()`` in
PS mode calls `init_ps`).

Note [PS processes]: one script runs in every process, as in MindSpore r1.3. A
server never returns from ``init()``: it serves until every worker has finished
(or one failed), then ends the process (exit status 0, or 1 after printing what
went wrong). A worker returns from ``init()`` with its collective group formed
(ranks are worker indices) and a client for the servers; at exit it tells the
servers it is done. An ``MS_SCHED`` process ends at once: spore needs no
scheduler.
"""

from __future__ import annotations

import atexit
import importlib
import os
import sys
import time
import traceback
import warnings
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
import torch.distributed.rpc as rpc

from spore import context as _context
from spore.parallel._ps import _server
from spore.parallel._ps._client import PSClient
from spore.parallel._ps._cluster import (
    SCHED,
    SERVER,
    Cluster,
    assign_index,
    open_store,
    resolve,
    server_name,
    worker_name,
)
from spore.ps_launch import THP_VARIABLE

# The module, not torch.distributed.rendezvous (a function of the same name).
_rdzv = importlib.import_module("torch.distributed.rendezvous")
_SCHEME = "sporeps"
_FAILURE_GRACE_S = 1.0  # a failed server's replies get this long to go out
_state: dict[str, Any] = {"store": None, "host": False, "cluster": None, "error": None}


def _rendezvous(url: str, **kwargs: Any) -> Any:
    cluster = _state["cluster"]
    yield dist.PrefixStore("rpc", _state["store"]), cluster.rpc_rank, cluster.world


def init_ps(backend: str, timeout: float) -> None:
    """Join the parameter-server job as the environment says (see module doc).

    Raises:
        RuntimeError: If the roles are inconsistent or the job does not form
            within ``timeout``.
    """
    cluster = resolve(_context.get_ps_context("ps_timeout") or timeout)
    if cluster.role == SCHED:
        print(
            "spore: parameter-server jobs need no scheduler; this MS_SCHED process "
            "has nothing to do and exits.",
            file=sys.stderr,
            flush=True,
        )
        raise SystemExit(0)
    _hint_huge_pages()
    store, host = open_store(cluster)
    cluster = assign_index(cluster, store)
    _state.update(store=store, host=host, cluster=cluster)
    if _SCHEME not in _rdzv._rendezvous_handlers:
        _rdzv.register_rendezvous_handler(_SCHEME, _rendezvous)
    sync = bool(_context.get_ps_context("ps_sync"))
    name = (
        server_name(cluster.index)
        if cluster.role == SERVER
        else worker_name(cluster.index)
    )
    if cluster.role == SERVER:
        _server._SERVER = _server.Server(cluster, sync)  # before calls can arrive
    # A call may wait for a server's round, which the server itself ends after
    # `timeout` (naming the missing worker): give it longer, so that clearer
    # error arrives first. A dead server's connection fails at once anyway.
    options = rpc.TensorPipeRpcBackendOptions(
        init_method=f"{_SCHEME}://",
        rpc_timeout=2 * cluster.timeout + 5,
        num_worker_threads=16,
    )
    _await_everyone(store, cluster, name)
    try:
        rpc.init_rpc(
            name, rank=cluster.rpc_rank, world_size=cluster.world,
            rpc_backend_options=options,
        )  # fmt: skip
    except Exception as err:
        raise RuntimeError(
            f"For 'init', {name} could not join the parameter-server job of "
            f"{cluster.server_num} server(s) and {cluster.worker_num} worker(s) at "
            f"{cluster.host}:{cluster.port} within {cluster.timeout:g} s "
            f"({type(err).__name__}: {err}). Check that every process was started "
            "with the same MS_SERVER_NUM, MS_WORKER_NUM and port."
        ) from err
    _context._ps_runtime["role"] = cluster.role
    if cluster.role == SERVER:
        _serve(cluster)  # never returns
    _join_workers(cluster, backend, store)
    client = PSClient(cluster, sync)
    _context._ps_runtime["client"] = client
    _watch_exceptions()
    atexit.register(finish_worker)


def _hint_huge_pages() -> None:
    """Warn when the process was started without PyTorch's huge-page switch
    (Note [PS buffers] in spore/ps_launch.py): every push and pull lands in a
    fresh buffer, and without it a step took 25-50% longer. Any value the caller
    set, "0" included, is taken as a decision and not warned about."""
    if sys.platform.startswith("linux") and THP_VARIABLE not in os.environ:
        warnings.warn(
            f"For 'init', {THP_VARIABLE} is not set in this parameter-server "
            f"process: set {THP_VARIABLE}=1 before starting every process "
            "(spore.ps_launch does) so that pushed and pulled tensors land in huge "
            "pages; without it a step took 25-50% longer in spore's benchmark.",
            RuntimeWarning,
            stacklevel=3,
        )


def _await_everyone(store: Any, cluster: Cluster, name: str) -> None:
    """Wait (bounded) until every server and worker has reached the store: rpc's
    own start-up would wait far longer for a process that never comes.

    Raises:
        RuntimeError: If not all arrive within the timeout, or the store's host
            left first (it gave up waiting, or died).
    """
    job = (
        f"the parameter-server job of {cluster.server_num} server(s) and "
        f"{cluster.worker_num} worker(s) at {cluster.host}:{cluster.port}"
    )
    advice = (
        "Check that every process was started with the same MS_SERVER_NUM, "
        "MS_WORKER_NUM and port."
    )
    deadline = time.monotonic() + cluster.timeout
    try:
        arrived = int(store.add("spore/ps/arrived", 1))
        while arrived < cluster.world:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"For 'init', {name} waited {cluster.timeout:g} s for {job}, but "
                    f"only {arrived} of {cluster.world} processes arrived. {advice}"
                )
            time.sleep(0.02)
            arrived = int(store.add("spore/ps/arrived", 0))
    except RuntimeError as err:
        if str(err).startswith("For 'init'"):
            raise
        raise RuntimeError(
            f"For 'init', {name} lost the rendezvous of {job} while waiting for the "
            "other processes: its host (the first server) gave up or died. "
            f"{advice}"
        ) from err


def _serve(cluster: Cluster) -> None:
    server = _server._SERVER
    assert server is not None
    # The update of a round runs while the workers wait for it: give it every
    # core (SPORE_PS_SERVER_THREADS overrides, e.g. when servers share a machine
    # with busy processes).
    threads = os.environ.get("SPORE_PS_SERVER_THREADS", "")
    torch.set_num_threads(int(threads) if threads.isdigit() else os.cpu_count() or 1)
    server.start_watchdog()
    server.done.wait()
    failed = server.failure is not None
    if failed:
        # The waiting workers' futures now hold the failure, but TensorPipe's
        # threads send those replies after this point: ending the process at
        # once cut them off now and then, and a surviving worker saw only "eof"
        # instead of the reason (which worker died). No event says they left.
        time.sleep(_FAILURE_GRACE_S)
        rpc.shutdown(graceful=False)
        sys.stderr.flush()
        os._exit(1)
    rpc.shutdown(graceful=True, timeout=cluster.timeout)
    _leave()
    raise SystemExit(0)


def _join_workers(cluster: Cluster, backend: str, store: Any) -> None:
    """The workers' collective group: worker index = rank, so data parallel
    among the workers runs unchanged (spore.communication sees it as the world)."""
    from spore.communication import management

    try:
        dist.init_process_group(
            backend,
            store=dist.PrefixStore("workers", store),
            rank=cluster.index,
            world_size=cluster.worker_num,
            timeout=timedelta(seconds=cluster.timeout),
        )
    except Exception as err:
        raise RuntimeError(
            f"For 'init', {worker_name(cluster.index)} could not form the workers' "
            f"{management._mindspore_name(backend)} group within "
            f"{cluster.timeout:g} s ({type(err).__name__}: {err})."
        ) from err
    management._mark_initialized(backend, cluster.timeout)


def _watch_exceptions() -> None:
    """Remember an uncaught exception, so the exit tells the servers it failed."""
    previous = sys.excepthook

    def hook(kind: Any, value: Any, tb: Any) -> None:
        _state["error"] = "".join(traceback.format_exception_only(kind, value)).strip()
        previous(kind, value, tb)

    sys.excepthook = hook


def finish_worker() -> None:
    """Tell the servers this worker is done and leave the job (idempotent)."""
    client = _context._ps_runtime.get("client")
    if client is None:
        return
    _context._ps_runtime["client"] = None
    error = _state["error"]
    healthy = client.failed is None and client.finish(error is None, error or "")
    if dist.is_initialized():
        dist.destroy_process_group()
    if healthy:
        rpc.shutdown(graceful=True, timeout=client.cluster.timeout)
        _leave()
    else:
        rpc.shutdown(graceful=False)
    _context._ps_runtime["role"] = None


def _leave() -> None:
    """The store's host waits (briefly) until everyone else is done with it."""
    store, cluster = _state["store"], _state["cluster"]
    if store is None:
        return
    if not _state["host"]:
        store.add("spore/ps/left", 1)
        return
    deadline = time.monotonic() + min(cluster.timeout, 10.0)
    while time.monotonic() < deadline:
        if int(store.add("spore/ps/left", 0)) >= cluster.world - 1:
            return
        time.sleep(0.02)
