"""Process groups over ``torch.distributed`` (MindSpore's ``communication.management``).

``init()`` joins the process group that a launcher such as ``torchrun`` describes in
the environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``,
``MASTER_PORT``): gloo on CPU, NCCL on GPU. Every wait is bounded by a timeout
(``init(timeout=...)``, else ``SPORE_COMM_TIMEOUT`` seconds, else 300 s), so a rank
that dies or a launch that cannot form makes the others fail with an error instead
of hanging.

Group names follow MindSpore: ``GlobalComm.WORLD_COMM_GROUP`` is the world group,
and ``"hccl_world_group"``, ``"nccl_world_group"``, ``"mccl_world_group"`` and
``"gloo_world_group"`` are all accepted for it, so code written for any MindSpore
backend runs unchanged. Other groups come from `create_group`.
"""

from __future__ import annotations

import os
import warnings
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

from spore import context as _context

__all__ = [
    "HCCL_WORLD_COMM_GROUP",
    "MCCL_WORLD_COMM_GROUP",
    "NCCL_WORLD_COMM_GROUP",
    "GlobalComm",
    "create_group",
    "destroy_group",
    "get_group_rank_from_world_rank",
    "get_group_size",
    "get_local_rank",
    "get_local_rank_size",
    "get_rank",
    "get_world_rank_from_group_rank",
    "init",
    "release",
]

HCCL_WORLD_COMM_GROUP = "hccl_world_group"
NCCL_WORLD_COMM_GROUP = "nccl_world_group"
MCCL_WORLD_COMM_GROUP = "mccl_world_group"
_WORLD_ALIASES = frozenset(
    (HCCL_WORLD_COMM_GROUP, NCCL_WORLD_COMM_GROUP, MCCL_WORLD_COMM_GROUP,
     "gloo_world_group")
)  # fmt: skip
# MindSpore's backend names, and the torch.distributed backend each runs on here.
# NCCL moves only CUDA tensors, and spore's Parameters live on the CPU unless the
# user moves them: under "nccl", CPU tensors travel over gloo, CUDA ones over NCCL.
_BACKENDS = {"nccl": "cpu:gloo,cuda:nccl", "gloo": "gloo", "mccl": "gloo"}
_LAUNCH_VARIABLES = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
DEFAULT_TIMEOUT_S = 300.0
_LAUNCH_HINT = (
    "Start the script with a launcher, e.g. 'torchrun --nproc_per_node=2 "
    "train.py' (one machine) or 'torchrun --nnodes=N --node_rank=I "
    "--master_addr=HOST --master_port=PORT --nproc_per_node=G train.py'."
)


class GlobalComm:
    """The communication state MindSpore code reads: backend, world group name.

    ``WORLD_COMM_GROUP`` starts as MindSpore's default ``"hccl_world_group"`` and
    becomes ``"nccl_world_group"`` or ``"gloo_world_group"`` after `init`; every
    one of these names means the world group.
    """

    BACKEND = "gloo"
    WORLD_COMM_GROUP = HCCL_WORLD_COMM_GROUP
    INITED = False
    TIMEOUT_S = DEFAULT_TIMEOUT_S


# Groups made by create_group: name -> (torch ProcessGroup, world ranks in order).
_groups: dict[str, tuple[Any, list[int]]] = {}


def _not_initialized(api: str) -> RuntimeError:
    return RuntimeError(
        f"For '{api}', the communication service is not initialized. Call "
        "spore.communication.init() first, in a process started by a launcher. "
        + _LAUNCH_HINT
    )


def _require_init(api: str) -> None:
    if not dist.is_available() or not dist.is_initialized():
        raise _not_initialized(api)


def _timeout_seconds(timeout: float | None) -> float:
    if timeout is None:
        raw = os.environ.get("SPORE_COMM_TIMEOUT")
        if raw is None:
            return DEFAULT_TIMEOUT_S
        try:
            timeout = float(raw)
        except ValueError as err:
            raise ValueError(
                "For 'init', the environment variable SPORE_COMM_TIMEOUT should be "
                f"a number of seconds, but got {raw!r}."
            ) from err
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError(
            "For 'init', the 'timeout' should be a number of seconds, but got "
            f"{type(timeout).__name__}."
        )
    if not timeout > 0:
        raise ValueError(f"For 'init', the 'timeout' should be > 0, but got {timeout}.")
    return float(timeout)


def _launch_environment() -> tuple[int, int, str, str]:
    missing = [name for name in _LAUNCH_VARIABLES if not os.environ.get(name)]
    if missing:
        raise RuntimeError(
            f"For 'init', the environment variables {missing} are not set: this "
            "process was not started by a distributed launcher. " + _LAUNCH_HINT
        )
    numbers = {}
    for name in ("RANK", "WORLD_SIZE"):
        try:
            numbers[name] = int(os.environ[name])
        except ValueError as err:
            raise RuntimeError(
                f"For 'init', the environment variable {name} should be an integer, "
                f"but got {os.environ[name]!r}. " + _LAUNCH_HINT
            ) from err
    rank, world = numbers["RANK"], numbers["WORLD_SIZE"]
    if world < 1 or not 0 <= rank < world:
        raise RuntimeError(
            f"For 'init', RANK={rank} and WORLD_SIZE={world} do not fit: expected "
            "WORLD_SIZE >= 1 and 0 <= RANK < WORLD_SIZE. " + _LAUNCH_HINT
        )
    return rank, world, os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"]


def _backend(backend_name: str | None) -> str:
    if backend_name is None:
        backend_name = "nccl" if torch.cuda.is_available() else "gloo"
    if not isinstance(backend_name, str):
        raise TypeError(
            "For 'init', the 'backend_name' should be str or None, but got "
            f"{type(backend_name).__name__}."
        )
    if backend_name == "hccl":
        raise RuntimeError(
            "For 'init', the backend 'hccl' needs Ascend devices, which spore does "
            "not run on. Pass 'nccl' (GPU), 'gloo' (CPU) or None (pick by device)."
        )
    if backend_name not in _BACKENDS:
        raise RuntimeError(
            f"For 'init', the 'backend_name' should be one of "
            f"{sorted([*_BACKENDS, 'hccl'])} or None, but got {backend_name!r}."
        )
    if backend_name == "nccl" and not torch.cuda.is_available():
        raise RuntimeError(
            "For 'init', the backend 'nccl' needs CUDA GPUs, but "
            "torch.cuda.is_available() is False here. Pass 'gloo' (CPU) or None "
            "(pick by device)."
        )
    return _BACKENDS[backend_name]


def init(backend_name: str | None = None, *, timeout: float | None = None) -> None:
    """Join the process group of this launch (MindSpore's ``init``).

    Reads ``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT`` (set by
    ``torchrun``) and calls ``torch.distributed.init_process_group``. Under NCCL,
    CUDA tensors travel over NCCL and CPU tensors (where Parameters live unless
    moved) over gloo, and GPU ``LOCAL_RANK`` becomes the current CUDA device (a
    warning where the machine has fewer GPUs than ranks). A process group already
    made with ``torch.distributed`` is adopted as it is; calling ``init`` twice is
    harmless.

    Args:
        backend_name: ``"nccl"``, ``"gloo"``, ``"mccl"`` (MindSpore's CPU backend;
            runs on gloo) or None: NCCL when CUDA is available, else gloo.
        timeout: Seconds any rendezvous or collective may wait before it fails
            (spore extension). None: ``SPORE_COMM_TIMEOUT``, else 300.

    Raises:
        RuntimeError: Outside a launcher (variables missing), for ``"hccl"``,
            ``"nccl"`` without CUDA or an unknown backend, or when the group does
            not form within ``timeout`` (a wrong ``WORLD_SIZE``, an unreachable
            master).
        TypeError: If ``backend_name`` is not a str or ``timeout`` not a number.
        ValueError: If ``timeout`` is not positive.
    """
    backend = _backend(backend_name)
    seconds = _timeout_seconds(timeout)
    if _context._is_ps_mode() and not dist.is_initialized():
        # Parameter-server job (issue 7): servers serve and never return; workers
        # come back with their own group. See Note [PS processes].
        from spore.parallel._ps._runtime import init_ps

        init_ps(backend, seconds)
        return
    if dist.is_initialized():
        _mark_initialized(str(dist.get_backend()), GlobalComm.TIMEOUT_S)
        return
    rank, world, addr, port = _launch_environment()
    if "nccl" in backend:
        _use_local_gpu()
    try:
        dist.init_process_group(
            backend,
            init_method="env://",
            rank=rank,
            world_size=world,
            timeout=timedelta(seconds=seconds),
        )
    except Exception as err:  # torch raises RuntimeError, DistError, TimeoutError
        raise RuntimeError(
            f"For 'init', rank {rank} could not join the {_mindspore_name(backend)} "
            f"process group of WORLD_SIZE={world} at MASTER_ADDR={addr} "
            f"MASTER_PORT={port} within "
            f"{seconds:g} s ({type(err).__name__}: {_first_line(err)}). Check that "
            "all WORLD_SIZE processes were started (torchrun's --nnodes and "
            "--nproc_per_node), and that MASTER_ADDR:MASTER_PORT is rank 0's machine "
            "and reachable from this one."
        ) from err
    _mark_initialized(backend, seconds)


def _use_local_gpu() -> None:
    """Make GPU ``LOCAL_RANK`` this process's CUDA device, where there is one."""
    local = int(os.environ.get("LOCAL_RANK", "0"))
    count = torch.cuda.device_count()
    if local < count:
        torch.cuda.set_device(local)
        return
    shared = torch.cuda.current_device()
    warnings.warn(
        f"For 'init', LOCAL_RANK={local} but this machine has {count} CUDA "
        f"device(s): this process's CUDA tensors share cuda:{shared} with another "
        "rank, and NCCL cannot run collectives between ranks on one GPU; CPU "
        "tensors travel over gloo as usual.",
        stacklevel=3,
    )


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else "no message"


def _mindspore_name(backend: str) -> str:
    """MindSpore's name of a torch backend ("cpu:gloo,cuda:nccl" is its nccl)."""
    return "nccl" if "nccl" in backend else backend


def _mark_initialized(backend: str, seconds: float) -> None:
    backend = _mindspore_name(backend)
    GlobalComm.BACKEND = backend
    GlobalComm.WORLD_COMM_GROUP = f"{backend}_world_group"
    GlobalComm.INITED = True
    GlobalComm.TIMEOUT_S = seconds


def release() -> None:
    """Leave the process group (MindSpore's ``release``); a no-op when not joined.

    A parameter-server worker also tells the servers it is done.
    """
    if _context._ps_client() is not None:
        from spore.parallel._ps._runtime import finish_worker

        for name in list(_groups):
            destroy_group(name)
        finish_worker()
        GlobalComm.INITED = False
        GlobalComm.WORLD_COMM_GROUP = HCCL_WORLD_COMM_GROUP
        return
    for name in list(_groups):
        destroy_group(name)
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
    GlobalComm.INITED = False
    GlobalComm.WORLD_COMM_GROUP = HCCL_WORLD_COMM_GROUP


def _is_world(group: str) -> bool:
    return group in _WORLD_ALIASES or group == GlobalComm.WORLD_COMM_GROUP


def _check_group_name(group: Any, api: str) -> str:
    if not isinstance(group, str):
        raise TypeError(
            f"For '{api}', the 'group' should be str, but got {type(group).__name__}."
        )
    if not _is_world(group) and group not in _groups:
        raise ValueError(
            f"For '{api}', the group {group!r} does not exist; expected the world "
            f"group ({GlobalComm.WORLD_COMM_GROUP!r}) or one made by create_group: "
            f"{sorted(_groups)}."
        )
    return group


def _process_group(group: str, api: str) -> Any:
    """The torch ProcessGroup behind ``group`` (None for the default world group)."""
    _require_init(api)
    _check_group_name(group, api)
    return None if _is_world(group) else _groups[group][0]


def get_rank(group: str = GlobalComm.WORLD_COMM_GROUP) -> int:
    """This process's rank in ``group``.

    Raises:
        RuntimeError: Before `init`.
        TypeError: If ``group`` is not a str.
        ValueError: If ``group`` does not exist.
    """
    process_group = _process_group(group, "get_rank")
    return dist.get_rank(process_group)


def get_group_size(group: str = GlobalComm.WORLD_COMM_GROUP) -> int:
    """The number of ranks in ``group``.

    Raises:
        RuntimeError: Before `init`.
        TypeError: If ``group`` is not a str.
        ValueError: If ``group`` does not exist.
    """
    process_group = _process_group(group, "get_group_size")
    return dist.get_world_size(process_group)


def _local(api: str, variable: str, group: str) -> int:
    _process_group(group, api)
    if not _is_world(group):
        raise ValueError(
            f"For '{api}', only the world group is supported, but got {group!r}."
        )
    raw = os.environ.get(variable)
    if raw is None:
        raise RuntimeError(
            f"For '{api}', the environment variable {variable} is not set; launch "
            "with torchrun, which sets it for every process."
        )
    return int(raw)


def get_local_rank(group: str = GlobalComm.WORLD_COMM_GROUP) -> int:
    """This process's rank on its machine (``LOCAL_RANK``).

    Raises:
        RuntimeError: Before `init`, or when the launcher did not set LOCAL_RANK.
        ValueError: If ``group`` is not the world group.
    """
    return _local("get_local_rank", "LOCAL_RANK", group)


def get_local_rank_size(group: str = GlobalComm.WORLD_COMM_GROUP) -> int:
    """The number of processes on this machine (``LOCAL_WORLD_SIZE``).

    Raises:
        RuntimeError: Before `init`, or when the launcher did not set it.
        ValueError: If ``group`` is not the world group.
    """
    return _local("get_local_rank_size", "LOCAL_WORLD_SIZE", group)


def create_group(group: str, rank_ids: list[int]) -> None:
    """Make a named group of world ranks (every rank must call it, in the same order).

    Raises:
        RuntimeError: Before `init`.
        TypeError: If ``group`` is not a str or ``rank_ids`` not a list of ints.
        ValueError: If the name is taken or ``rank_ids`` is empty, repeats a rank
            or names a rank outside the world.
    """
    _require_init("create_group")
    if not isinstance(group, str):
        raise TypeError(
            "For 'create_group', the 'group' should be str, but got "
            f"{type(group).__name__}."
        )
    if _is_world(group) or group in _groups:
        raise ValueError(f"For 'create_group', the group {group!r} already exists.")
    if not isinstance(rank_ids, list) or not all(
        isinstance(r, int) and not isinstance(r, bool) for r in rank_ids
    ):
        raise TypeError(
            "For 'create_group', the 'rank_ids' should be a list of int, but got "
            f"{rank_ids!r}."
        )
    world = dist.get_world_size()
    if not rank_ids or len(set(rank_ids)) != len(rank_ids):
        raise ValueError(
            "For 'create_group', the 'rank_ids' should be non-empty without "
            f"repeats, but got {rank_ids}."
        )
    if any(not 0 <= r < world for r in rank_ids):
        raise ValueError(
            f"For 'create_group', every rank id should be in [0, {world}), but got "
            f"{rank_ids}."
        )
    # torch.distributed requires every process to take part in new_group.
    _groups[group] = (dist.new_group(ranks=sorted(rank_ids)), sorted(rank_ids))


def destroy_group(group: str) -> None:
    """Forget a group made by `create_group`.

    Raises:
        ValueError: If ``group`` is the world group or was not created.
    """
    if group not in _groups:
        raise ValueError(
            f"For 'destroy_group', the group {group!r} was not made by create_group; "
            f"expected one of {sorted(_groups)}."
        )
    process_group, _ = _groups.pop(group)
    if process_group is not None and dist.is_initialized():
        dist.destroy_process_group(process_group)


def _group_ranks(group: str, api: str) -> list[int]:
    _process_group(group, api)
    if _is_world(group):
        return list(range(dist.get_world_size()))
    return _groups[group][1]


def get_group_rank_from_world_rank(world_rank_id: int, group: str) -> int:
    """The rank in ``group`` of world rank ``world_rank_id``.

    Raises:
        ValueError: If that world rank is not in ``group``.
    """
    ranks = _group_ranks(group, "get_group_rank_from_world_rank")
    if world_rank_id not in ranks:
        raise ValueError(
            f"For 'get_group_rank_from_world_rank', world rank {world_rank_id} is "
            f"not in group {group!r} (ranks {ranks})."
        )
    return ranks.index(world_rank_id)


def get_world_rank_from_group_rank(group: str, group_rank_id: int) -> int:
    """The world rank of rank ``group_rank_id`` of ``group``.

    Raises:
        ValueError: If ``group_rank_id`` is outside the group.
    """
    ranks = _group_ranks(group, "get_world_rank_from_group_rank")
    if not 0 <= group_rank_id < len(ranks):
        raise ValueError(
            f"For 'get_world_rank_from_group_rank', the group rank should be in "
            f"[0, {len(ranks)}) for group {group!r}, but got {group_rank_id}."
        )
    return ranks[group_rank_id]
