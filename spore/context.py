"""Process-wide context: the parallel mode and the parameter-server switch.

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


_AUTO_PARALLEL_DEFAULTS: dict[str, Any] = {
    "parallel_mode": ParallelMode.STAND_ALONE,
    "gradients_mean": False,
    "parameter_broadcast": False,
    "device_num": 1,
    "global_rank": 0,
}
_auto_parallel: dict[str, Any] = dict(_AUTO_PARALLEL_DEFAULTS)
_ps: dict[str, Any] = {"enable_ps": False}


def set_auto_parallel_context(**kwargs: Any) -> None:
    """Set auto-parallel options (``parallel_mode``, ``gradients_mean`` ...).

    Raises:
        ValueError: If an option name or ``parallel_mode`` value is unknown.
    """
    for key, value in kwargs.items():
        if key not in _AUTO_PARALLEL_DEFAULTS:
            raise ValueError(
                f"For 'set_auto_parallel_context', the option {key!r} is not supported; "
                f"expected one of {sorted(_AUTO_PARALLEL_DEFAULTS)}."
            )
        if key == "parallel_mode" and value not in ParallelMode.MODE_LIST:
            raise ValueError(
                "For 'set_auto_parallel_context', the 'parallel_mode' should be one of "
                f"{list(ParallelMode.MODE_LIST)}, but got {value!r}."
            )
    _auto_parallel.update(kwargs)


def get_auto_parallel_context(attr_key: str) -> Any:
    """Return one auto-parallel option.

    Raises:
        ValueError: If ``attr_key`` is unknown.
    """
    if attr_key not in _auto_parallel:
        raise ValueError(
            f"For 'get_auto_parallel_context', the option {attr_key!r} is not supported; "
            f"expected one of {sorted(_auto_parallel)}."
        )
    return _auto_parallel[attr_key]


def reset_auto_parallel_context() -> None:
    """Restore every auto-parallel option to its default."""
    _auto_parallel.clear()
    _auto_parallel.update(_AUTO_PARALLEL_DEFAULTS)


def set_ps_context(**kwargs: Any) -> None:
    """Set parameter-server options (``enable_ps``).

    Raises:
        ValueError: If an option is unknown.
        TypeError: If ``enable_ps`` is not a bool.
    """
    for key, value in kwargs.items():
        if key != "enable_ps":
            raise ValueError(
                f"For 'set_ps_context', the option {key!r} is not supported; "
                "expected 'enable_ps'."
            )
        if not isinstance(value, bool):
            raise TypeError(
                "For 'set_ps_context', the 'enable_ps' should be bool, but got "
                f"{type(value).__name__}."
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


def _parallel_keeps_params_lazy() -> bool:
    """MindSpore keeps initializer Parameters lazy in the (semi-)auto-parallel modes."""
    return _auto_parallel["parallel_mode"] in (
        ParallelMode.SEMI_AUTO_PARALLEL,
        ParallelMode.AUTO_PARALLEL,
    )


def _is_ps_mode() -> bool:
    return bool(_ps["enable_ps"])
