"""Process-wide context: the parallel options and the parameter-server switch.

Layers below (``spore.common``) read it; the processes layer (communication,
parallel, parameter server) sets it. Nothing else is global (see DESIGN.md).
"""

from __future__ import annotations

from typing import Any


class ParallelMode:
    """MindSpore's parallel mode names."""

    STAND_ALONE = "stand_alone"
    DATA_PARALLEL = "data_parallel"
    HYBRID_PARALLEL = "hybrid_parallel"
    SEMI_AUTO_PARALLEL = "semi_auto_parallel"
    AUTO_PARALLEL = "auto_parallel"
    MODE_LIST = (
        STAND_ALONE, DATA_PARALLEL, HYBRID_PARALLEL, SEMI_AUTO_PARALLEL, AUTO_PARALLEL
    )  # fmt: skip


# The fusion threshold (MB) that comm_fusion mode "auto" stands for. MindSpore's
# backend uses 64; spore's buckets are all-reduced during the backward pass, and
# smaller ones start sooner (See Note [gradient buckets] in spore/parallel/_buckets.py).
AUTO_FUSION_THRESHOLD_MB = 25
_FUSION_MODES = ("auto", "size", "index")
_FUSION_KINDS = ("allreduce", "allgather", "reducescatter")

_AUTO_PARALLEL_DEFAULTS: dict[str, Any] = {
    "parallel_mode": ParallelMode.STAND_ALONE,
    "gradients_mean": False,
    "gradient_fp32_sync": True,
    "parameter_broadcast": False,
    "device_num": 1,
    "global_rank": 0,
    "all_reduce_fusion_config": [],
    "comm_fusion": {"allreduce": {"mode": "auto", "config": AUTO_FUSION_THRESHOLD_MB}},
}
_BOOL_OPTIONS = ("gradients_mean", "gradient_fp32_sync", "parameter_broadcast")
_auto_parallel: dict[str, Any] = {}
_ps: dict[str, Any] = {}


def _copy_default(key: str) -> Any:
    value = _AUTO_PARALLEL_DEFAULTS[key]
    if key == "comm_fusion":
        return {kind: dict(config) for kind, config in value.items()}
    return list(value) if isinstance(value, list) else value


def _type_error(key: str, expected: str, value: Any) -> TypeError:
    return TypeError(
        f"For 'set_auto_parallel_context', the '{key}' should be {expected}, but got "
        f"{type(value).__name__}."
    )


def _check_int_range(key: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _type_error(key, "int", value)
    if not low <= value <= high:
        raise ValueError(
            f"For 'set_auto_parallel_context', the '{key}' should be in "
            f"[{low}, {high}], but got {value}."
        )
    return value


def _check_split_indices(key: str, value: Any) -> list[int]:
    """MindSpore's rules for fusion split indices: a non-empty ascending int list."""
    if not isinstance(value, list):
        raise _type_error(key, "list of int", value)
    if not value:
        raise ValueError(
            f"For 'set_auto_parallel_context', the '{key}' should not be empty; pass "
            "the parameter indices where a new gradient bucket starts, e.g. [20, 40]."
        )
    for index in value:
        if isinstance(index, bool) or not isinstance(index, int):
            raise TypeError(
                f"For 'set_auto_parallel_context', every index in '{key}' should be "
                f"int, but got {type(index).__name__}."
            )
    if len(set(value)) != len(value) or sorted(value) != value:
        raise ValueError(
            f"For 'set_auto_parallel_context', the indices in '{key}' should be "
            f"strictly ascending without repeats, but got {value}."
        )
    if value[0] <= 0:
        raise ValueError(
            f"For 'set_auto_parallel_context', the indices in '{key}' should be > 0, "
            f"but got {value}."
        )
    return list(value)


def _check_comm_fusion(value: Any) -> dict[str, dict[str, Any]]:
    """``{"allreduce": {"mode": "auto"|"size"|"index", "config": ...}}`` (2.x).

    MindSpore parity: the key errors are KeyError, as 2.10 raises them.
    """
    if not isinstance(value, dict):
        raise _type_error("comm_fusion", "dict", value)
    out = {}
    for kind, config in value.items():
        if kind not in _FUSION_KINDS:
            raise KeyError(
                "For 'set_auto_parallel_context', the keys of 'comm_fusion' should be "
                f"in {list(_FUSION_KINDS)}, but got {kind!r}."
            )
        if not isinstance(config, dict):
            raise TypeError(
                "For 'set_auto_parallel_context', the 'comm_fusion' config of "
                f"{kind!r} should be dict, but got {type(config).__name__}."
            )
        for field in ("mode", "config"):
            if field not in config:
                raise KeyError(
                    f"For 'set_auto_parallel_context', the 'comm_fusion' config of "
                    f"{kind!r} should contain the key {field!r}, e.g. "
                    "{'mode': 'size', 'config': 32}."
                )
        mode = config["mode"]
        modes = _FUSION_MODES if kind == "allreduce" else _FUSION_MODES[:2]
        if mode not in modes:
            raise KeyError(
                f"For 'set_auto_parallel_context', the 'comm_fusion' mode of {kind!r} "
                f"should be one of {list(modes)}, but got {mode!r}."
            )
        if mode == "auto":
            threshold: Any = AUTO_FUSION_THRESHOLD_MB
        elif mode == "size":
            threshold = config["config"]
            if isinstance(threshold, bool) or not isinstance(threshold, (int, float)):
                raise TypeError(
                    "For 'set_auto_parallel_context', the 'comm_fusion' size config "
                    f"should be a number of MB, but got {type(threshold).__name__}."
                )
            if threshold < 0:
                raise ValueError(
                    "For 'set_auto_parallel_context', the 'comm_fusion' size config "
                    f"should be >= 0 MB, but got {threshold}."
                )
        else:
            threshold = _check_split_indices("comm_fusion", config["config"])
        out[kind] = {"mode": mode, "config": threshold}
    return out


def set_auto_parallel_context(**kwargs: Any) -> None:
    """Set parallel options; the ones not passed keep their values.

    Args:
        parallel_mode: One of `ParallelMode` (``"stand_alone"``,
            ``"data_parallel"``, ``"hybrid_parallel"``, ``"semi_auto_parallel"``,
            ``"auto_parallel"``). Data and hybrid parallel make `TrainOneStepCell`
            all-reduce gradients (``nn.DistributedGradReducer``).
        gradients_mean: Divide the summed gradients by the number of ranks.
        gradient_fp32_sync: Reduce float16/bfloat16 gradients in float32.
        parameter_broadcast: Broadcast the Parameters (except ``layerwise_parallel``
            ones) from rank 0 when training starts.
        device_num: The number of ranks, in [1, 4096].
        global_rank: This rank, in [0, 4095].
        all_reduce_fusion_config: Parameter indices where a new gradient bucket
            starts (ascending ints > 0).
        comm_fusion: ``{"allreduce": {"mode": m, "config": c}}``: ``"auto"``
            (buckets of spore's default size), ``"size"`` (``c`` MB per bucket) or
            ``"index"`` (``c`` as in ``all_reduce_fusion_config``).

    Raises:
        ValueError: If an option is unknown or a value is out of range.
        TypeError: If a value has the wrong type.
        KeyError: If ``comm_fusion`` has an unknown key or mode (MindSpore parity).

    Examples:
        >>> import spore
        >>> spore.set_auto_parallel_context(parallel_mode="data_parallel",
        ...                                 gradients_mean=True)
        >>> spore.get_auto_parallel_context("gradients_mean")
        True
        >>> spore.reset_auto_parallel_context()
    """
    checked: dict[str, Any] = {}
    for key, value in kwargs.items():
        if key not in _AUTO_PARALLEL_DEFAULTS:
            raise ValueError(
                f"For 'set_auto_parallel_context', the option {key!r} is not "
                f"supported; expected one of {sorted(_AUTO_PARALLEL_DEFAULTS)}."
            )
        if key == "parallel_mode":
            if not isinstance(value, str):
                raise _type_error(key, "str", value)
            if value not in ParallelMode.MODE_LIST:
                raise ValueError(
                    "For 'set_auto_parallel_context', the 'parallel_mode' should be "
                    f"one of {list(ParallelMode.MODE_LIST)}, but got {value!r}."
                )
        elif key in _BOOL_OPTIONS:
            if not isinstance(value, bool):
                raise _type_error(key, "bool", value)
        elif key == "device_num":
            _check_int_range(key, value, 1, 4096)
        elif key == "global_rank":
            _check_int_range(key, value, 0, 4095)
        elif key == "all_reduce_fusion_config":
            value = _check_split_indices(key, value)
        elif key == "comm_fusion":
            value = _check_comm_fusion(value)
        checked[key] = value
    # Validate everything first: a refused call changes nothing.
    for key, value in checked.items():
        if key == "comm_fusion":
            merged = dict(_auto_parallel["comm_fusion"])
            merged.update(value)
            value = merged
        _auto_parallel[key] = value


def get_auto_parallel_context(attr_key: str) -> Any:
    """Return one parallel option (see `set_auto_parallel_context`).

    Raises:
        ValueError: If ``attr_key`` is unknown.
    """
    if attr_key not in _auto_parallel:
        raise ValueError(
            f"For 'get_auto_parallel_context', the option {attr_key!r} is not "
            f"supported; expected one of {sorted(_auto_parallel)}."
        )
    value = _auto_parallel[attr_key]
    if attr_key == "comm_fusion":
        return {kind: dict(config) for kind, config in value.items()}
    return list(value) if isinstance(value, list) else value


def reset_auto_parallel_context() -> None:
    """Restore every parallel option to its default."""
    _auto_parallel.clear()
    _auto_parallel.update({key: _copy_default(key) for key in _AUTO_PARALLEL_DEFAULTS})


reset_auto_parallel_context()


# ---- parameter server (issue 7) ------------------------------------------------------
# MindSpore r1.3's keys, plus spore's own for what r1.3 left to its scheduler: how
# many of a torchrun job's ranks are servers, synchronous or asynchronous updates,
# and the bound on every wait.
_PS_DEFAULTS: dict[str, Any] = {
    "enable_ps": False,
    "config_file_path": "",
    "server_num": None,  # None: MS_SERVER_NUM from the environment
    "ps_sync": True,
    "ps_timeout": None,  # seconds; None: SPORE_COMM_TIMEOUT, else 300
}
_PS_ROLES = ("MS_WORKER", "MS_PSERVER", "MS_SCHED")
_ps_runtime: dict[str, Any] = {"role": None, "client": None}


def _ps_type_error(key: str, expected: str, value: Any) -> TypeError:
    return TypeError(
        f"For 'set_ps_context', the '{key}' should be {expected}, but got "
        f"{type(value).__name__}."
    )


def _check_ps_option(key: str, value: Any) -> None:
    if key not in _PS_DEFAULTS:
        raise ValueError(
            f"For 'set_ps_context', the option {key!r} is not supported; expected one "
            f"of {sorted(_PS_DEFAULTS)}."
        )
    if key in ("enable_ps", "ps_sync"):
        if not isinstance(value, bool):
            raise _ps_type_error(key, "bool", value)
    elif key == "config_file_path":
        if not isinstance(value, str):
            raise _ps_type_error(key, "str", value)
    elif key == "server_num":
        if isinstance(value, bool) or not isinstance(value, int):
            raise _ps_type_error(key, "int", value)
        if value < 1:
            raise ValueError(
                "For 'set_ps_context', the 'server_num' should be >= 1, but got "
                f"{value}."
            )
    elif key == "ps_timeout":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _ps_type_error(key, "a number of seconds", value)
        if not value > 0:
            raise ValueError(
                "For 'set_ps_context', the 'ps_timeout' should be > 0, but got "
                f"{value}."
            )


def set_ps_context(**kwargs: Any) -> None:
    """Set parameter-server options.

    Keys: ``enable_ps`` (bool; call before ``spore.communication.init()``),
    ``config_file_path`` (accepted for MindSpore scripts, unused), and spore's own
    ``server_num`` (how many of a torchrun job's first ranks are servers; default
    ``MS_SERVER_NUM``), ``ps_sync`` (True: servers average every worker's gradient
    of a step before updating, equal to data parallel; False: each push updates at
    once) and ``ps_timeout`` (seconds any wait may last before a clear error).

    Raises:
        ValueError: If an option is unknown or a value is out of range; nothing is
            changed then.
        TypeError: If a value has the wrong type; nothing is changed then.
        RuntimeError: If the parameter-server cluster is already running.
    """
    for key, value in kwargs.items():
        _check_ps_option(key, value)
    if _ps_runtime["role"] is not None:
        raise RuntimeError(
            "For 'set_ps_context', the parameter-server cluster is already running "
            f"(this process is {_ps_runtime['role']}); set the options before "
            "spore.communication.init()."
        )
    _ps.update(kwargs)


def get_ps_context(attr_key: str) -> Any:
    """Return one parameter-server option.

    Raises:
        ValueError: If ``attr_key`` is unknown.
    """
    if attr_key not in _ps:
        raise ValueError(
            f"For 'get_ps_context', the option {attr_key!r} is not supported; "
            f"expected one of {sorted(_ps)}."
        )
    return _ps[attr_key]


def reset_ps_context() -> None:
    """Restore every parameter-server option to its default (PS mode off).

    Raises:
        RuntimeError: If the parameter-server cluster is already running.
    """
    if _ps_runtime["role"] is not None:
        raise RuntimeError(
            "For 'reset_ps_context', the parameter-server cluster is already running "
            f"(this process is {_ps_runtime['role']})."
        )
    _ps.clear()
    _ps.update(_PS_DEFAULTS)


reset_ps_context()


def _ps_role() -> str | None:
    """This process's parameter-server role: ``"MS_WORKER"``, ``"MS_PSERVER"``,
    ``"MS_SCHED"``, or None outside PS mode (or before the role is known).

    The role comes from the running cluster, else from ``MS_ROLE`` (MindSpore's
    variable; a torchrun job learns its role in ``communication.init()``).
    """
    if not _ps["enable_ps"]:
        return None
    if _ps_runtime["role"] is not None:
        return _ps_runtime["role"]
    import os

    role = os.environ.get("MS_ROLE")
    return role if role in _PS_ROLES else None


def _ps_client() -> Any:
    """The worker's parameter-server client, once ``communication.init()`` made it."""
    return _ps_runtime["client"]


def _parallel_keeps_params_lazy() -> bool:
    """MindSpore keeps initializer Parameters lazy in the (semi-)auto-parallel modes."""
    if _ps_role() in ("MS_WORKER", "MS_SCHED"):
        return True  # r1.3: PS workers keep them lazy; servers may own the values
    return _auto_parallel["parallel_mode"] in (
        ParallelMode.SEMI_AUTO_PARALLEL,
        ParallelMode.AUTO_PARALLEL,
    )


def _is_data_parallel() -> bool:
    """Whether training all-reduces gradients (data and hybrid parallel)."""
    return _auto_parallel["parallel_mode"] in (
        ParallelMode.DATA_PARALLEL,
        ParallelMode.HYBRID_PARALLEL,
    )


def _check_parameter_broadcast(what: str) -> None:
    """MindSpore's check at ``Model.build``/``train``: broadcast needs data or
    hybrid parallel (the setter itself accepts any combination).

    Raises:
        ValueError: If ``parameter_broadcast`` is True in another parallel mode.
    """
    if _auto_parallel["parameter_broadcast"] and not _is_data_parallel():
        raise ValueError(
            f"For '{what}', 'parameter_broadcast' should be False in the parallel "
            f"mode {_auto_parallel['parallel_mode']!r}: it is for 'data_parallel' and "
            "'hybrid_parallel'. Call set_auto_parallel_context(parameter_broadcast="
            "False) or set one of those modes."
        )


def _is_ps_mode() -> bool:
    return bool(_ps["enable_ps"])
