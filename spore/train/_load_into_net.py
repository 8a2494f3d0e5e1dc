"""`load_param_into_net`: copy a parameter dict into a network, all or nothing.

Every match, shape and dtype is checked (and every cast computed) before the
first Parameter is changed, so an error never leaves a network half-loaded.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch

from spore.common import dtype as mstype
from spore.common.parameter import Parameter
from spore.common.tensor import Tensor
from spore.nn.cell import Cell

# MindSpore casts between these when strict_load is False (with a warning).
_FLOAT_TYPES = frozenset(mstype.float_type)
_INT_TYPES = frozenset(mstype.int_type)


def _check_arguments(net: Any, parameter_dict: Any, strict_load: Any) -> None:
    if not isinstance(net, Cell):
        raise TypeError(
            f"For 'load_param_into_net', the 'net' should be a Cell, but got "
            f"{type(net).__name__}."
        )
    if not isinstance(parameter_dict, dict):
        raise TypeError(
            "For 'load_param_into_net', the 'parameter_dict' should be a dict, but got "
            f"{type(parameter_dict).__name__}."
        )
    for key, value in parameter_dict.items():
        # MindSpore parity: plain Tensors and arrays are refused; wrap them in
        # Parameters (load_checkpoint returns Parameters).
        if not isinstance(key, str) or not isinstance(value, (Parameter, str, list)):
            raise TypeError(
                "For 'load_param_into_net', the 'parameter_dict' should map str to "
                f"Parameter, but got {type(key).__name__} -> {type(value).__name__} "
                f"for {key!r}."
            )
    if not isinstance(strict_load, bool):
        raise TypeError(
            "For 'load_param_into_net', the 'strict_load' should be bool, but got "
            f"{type(strict_load).__name__}."
        )


def _match_by_prefix(
    net: Cell,
    parameter_dict: dict[str, Any],
    missing: list[str],
    plan: list[tuple[Parameter, str]],
) -> None:
    """MindSpore's fallback: a dict key ending with a missing name gives a prefix
    that is stripped from every lookup (``model.conv1.weight`` -> ``conv1.weight``).
    """
    while missing:
        prefix = None
        for name in missing:
            for key, value in parameter_dict.items():
                if key != name and key.endswith(name) and isinstance(value, Parameter):
                    prefix = key[: -len(name)]
                    break
            if prefix is not None:
                break
        if prefix is None:
            return
        found = False
        for _, param in net.parameters_and_names():
            key = prefix + param.name
            if param.name in missing and isinstance(parameter_dict.get(key), Parameter):
                plan.append((param, key))
                missing.remove(param.name)
                found = True
        if not found:  # pragma: no cover - the name that gave the prefix matches
            return
        warnings.warn(
            f"For 'load_param_into_net', the prefix '{prefix}' of the names in "
            "'parameter_dict' was removed to match the net's parameters.",
            stacklevel=3,
        )


def _prepared(
    param: Parameter, key: str, new: Parameter, strict_load: bool, casts: list[str]
) -> torch.Tensor:
    """``new``'s data in ``param``'s shape and dtype; raises if it cannot be."""
    data = new._materialized().detach()
    source_shape = tuple(data.shape)
    if source_shape != param.shape:
        # MindSpore: a checkpoint shape that is the net's plus trailing 1s is
        # reshaped (2.10 then overwrote it with the unreshaped data; spore does not).
        ndim = len(param.shape)
        if (
            len(source_shape) > ndim
            and source_shape[:ndim] == param.shape
            and all(d == 1 for d in source_shape[ndim:])
        ):
            data = data.reshape(param.shape)
        else:
            raise RuntimeError(
                f"For 'load_param_into_net', the parameter '{param.name}' of the net "
                f"has shape {param.shape}, but '{key}' in 'parameter_dict' has shape "
                f"{source_shape}; check that the checkpoint belongs to this network."
            )
    if new.dtype != param.dtype:
        pair = {new.dtype, param.dtype}
        if strict_load or not (pair <= _FLOAT_TYPES or pair <= _INT_TYPES):
            raise RuntimeError(
                f"For 'load_param_into_net', the parameter '{param.name}' of the net "
                f"is {param.dtype}, but '{key}' in 'parameter_dict' is {new.dtype}; "
                + (
                    "strict_load=True allows no cast."
                    if strict_load
                    else "only float<->float and int<->int casts are allowed."
                )
            )
        data = data.to(mstype.to_torch(param.dtype))
        casts.append(f"'{param.name}' {new.dtype}->{param.dtype}")
    return data


def load_param_into_net(
    net: Cell, parameter_dict: dict[str, Any], strict_load: bool = False
) -> tuple[list[str], list[str]]:
    """Load ``parameter_dict`` into ``net``'s Parameters, matched by name.

    Everything is checked before anything is assigned: on any error the net is
    unchanged. Each Parameter keeps its object, flags and ``requires_grad``; its
    values are copied in place.

    Args:
        net: The network.
        parameter_dict: ``{name: Parameter}``, e.g. from `load_checkpoint`.
        strict_load: If False, a float<->float or int<->int dtype difference is
            cast (with a warning), and when names are missing a dict key ending
            with a missing name gives a prefix to strip (``model.fc.weight`` loads
            into ``fc.weight``). If True, neither happens.

    Returns:
        ``(param_not_load, ckpt_not_load)``: the net's parameter names that were
        not loaded (a warning lists them) and the dict's keys that were not used.

    Raises:
        TypeError: If ``net`` is not a Cell or ``parameter_dict`` is not a dict of
            Parameters.
        RuntimeError: If a shape differs, or a dtype differs and cannot be cast.

    Examples:
        >>> from spore import Parameter, Tensor, nn
        >>> from spore.train import load_param_into_net
        >>> net = nn.Dense(2, 1)
        >>> values = {"weight": Parameter(Tensor([[1.0, 2.0]]), name="weight")}
        >>> import warnings
        >>> with warnings.catch_warnings(record=True):
        ...     load_param_into_net(net, values)
        (['bias'], [])
    """
    _check_arguments(net, parameter_dict, strict_load)
    plan: list[tuple[Parameter, str]] = []
    param_not_load: list[str] = []
    for _, param in net.parameters_and_names():
        if isinstance(parameter_dict.get(param.name), Parameter):
            plan.append((param, param.name))
        elif param.name in parameter_dict:
            # Deviation: MindSpore skips a str/list value here without reporting it.
            param_not_load.append(param.name)
        elif not param.name.startswith("accu_grads"):  # MindSpore never reports these
            param_not_load.append(param.name)
    if param_not_load and not strict_load:
        _match_by_prefix(net, parameter_dict, param_not_load, plan)
    casts: list[str] = []
    prepared = [
        (param, key, _prepared(param, key, parameter_dict[key], strict_load, casts))
        for param, key in plan
    ]
    for param, _, data in prepared:  # nothing below can fail: all checked above
        param.set_data(Tensor._wrap(data), param.sliced)
    used = {key for _, key, _ in prepared}
    # Deviation: MindSpore leaves prefix-matched keys in ckpt_not_load.
    ckpt_not_load = [key for key in parameter_dict if key not in used]
    if casts:
        warnings.warn(
            f"For 'load_param_into_net', {len(casts)} parameters were cast to the "
            f"net's dtype: {', '.join(casts)}.",
            stacklevel=2,
        )
    if param_not_load:
        warnings.warn(
            f"For 'load_param_into_net', {len(param_not_load)} parameters of the net "
            f"are not loaded (not in 'parameter_dict'): {param_not_load}.",
            stacklevel=2,
        )
    return param_not_load, ckpt_not_load
