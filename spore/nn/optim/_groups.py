"""Turn an optimizer's ``parameters`` argument into a plan: order, rates, decay flags.

Ungrouped: one learning rate (``learning_rate``), one weight decay, applied where
the name contains neither 'beta' nor 'gamma'. Grouped (MindSpore 2.10):
- each dict has ``params`` and optionally ``lr``, ``weight_decay``,
  ``grad_centralization``; one dict may hold ``order_params`` alone;
- a group with ``lr`` gets its own Parameter ``learning_rate_group_<dict index>``;
  groups without share the default ``learning_rate``;
- decay applies to the groups whose weight decay is > 0 (names are ignored).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from spore.common.parameter import Parameter, ParameterTuple
from spore.nn.cell import Cell
from spore.nn.optim._checks import check_bool, check_number
from spore.nn.optim._lr import LrSource, LrSpec, WdSource, parse_lr

_GROUP_KEYS = ("params", "lr", "weight_decay", "grad_centralization", "order_params")


class GroupPlan:
    """Everything the Optimizer registers and caches, one entry per parameter."""

    def __init__(self) -> None:
        self.is_group = False
        self.is_group_lr = False
        self.ordered = False
        self.params: list[Parameter] = []
        self.lr_sources: list[LrSource] = []
        self.lr_of: list[int] = []
        self.lr_holder: Any = None
        self.wd_sources: list[WdSource] = []
        self.wd_of: list[int] = []
        self.decay_flags: list[bool] = []
        self.gc_flags: list[bool] = []


def _default_decay_filter(param: Parameter) -> bool:
    return "beta" not in param.name and "gamma" not in param.name


def _check_unique(
    cls: str, params: Iterable[Parameter], seen: dict[int, Parameter]
) -> None:
    for param in params:
        if id(param) in seen:
            raise RuntimeError(
                f"For '{cls}', the Parameter '{param.name}' already exists in the "
                "optimizer's parameters (twice in one list, or in two groups); give "
                "each Parameter once."
            )
        seen[id(param)] = param


def plan_single(
    cls: str,
    params: list[Parameter],
    learning_rate: Any,
    weight_decay: Any,
    loss_scale: float,
) -> GroupPlan:
    _check_unique(cls, params, {})
    plan = GroupPlan()
    plan.params = params
    source = LrSource(parse_lr(learning_rate), "learning_rate", as_cell=False)
    plan.lr_sources = [source]
    plan.lr_holder = source.holder
    plan.lr_of = [0] * len(params)
    plan.wd_sources = [WdSource(weight_decay, loss_scale)]
    plan.wd_of = [0] * len(params)
    plan.decay_flags = [_default_decay_filter(p) for p in params]
    plan.gc_flags = [False] * len(params)
    return plan


def _group_params(cls: str, index: int, value: Any) -> list[Parameter]:
    if not isinstance(value, (list, tuple)) and isinstance(value, Iterable):
        value = list(value)
    if not isinstance(value, (list, tuple)):
        raise TypeError(
            f"For '{cls}', the 'params' of group {index} should be a list of "
            "Parameters, "
            f"but got {type(value).__name__}."
        )
    if not value:
        raise ValueError(
            f"For '{cls}', the 'params' of group {index} should not be empty."
        )
    for item in value:
        if not isinstance(item, Parameter):
            raise TypeError(
                f"For '{cls}', every item of the 'params' of group {index} should be a "
                f"Parameter, but got {type(item).__name__}."
            )
    return list(value)


def _order_params(cls: str, index: int, group: dict[str, Any]) -> list[Parameter]:
    if len(group) > 1:
        raise ValueError(
            f"For '{cls}', the group dict {index} with 'order_params' should have no "
            f"other key, but got {sorted(group)}."
        )
    value = group["order_params"]
    if not isinstance(value, Iterable) or isinstance(value, (str, bytes, dict)):
        raise TypeError(
            f"For '{cls}', the 'order_params' should be an iterable of Parameters, but "
            f"got {type(value).__name__}."
        )
    order = list(value)
    for item in order:
        if not isinstance(item, Parameter):
            raise TypeError(
                f"For '{cls}', every item of 'order_params' should be a Parameter, but "
                f"got {type(item).__name__}."
            )
    return order


class _Group:
    def __init__(self, index: int, params: list[Parameter]) -> None:
        self.index = index
        self.params = params
        self.lr: LrSpec | None = None
        self.weight_decay: Any = None
        self.gc = False


def plan_groups(
    cls: str,
    groups: list[dict[str, Any]],
    learning_rate: Any,
    weight_decay: Any,
    loss_scale: float,
) -> GroupPlan:
    default_lr = parse_lr(learning_rate)
    order: list[Parameter] | None = None
    parsed: list[_Group] = []
    seen: dict[int, Parameter] = {}
    for index, group in enumerate(groups):
        unknown = sorted(set(group) - set(_GROUP_KEYS))
        if unknown:
            raise KeyError(
                f"For '{cls}', the group dict {index} has unknown key(s) {unknown}; "
                "the "
                f"keys should be among {list(_GROUP_KEYS)}."
            )
        if "order_params" in group:
            if order is not None:
                raise ValueError(f"For '{cls}', 'order_params' should be given once.")
            order = _order_params(cls, index, group)
            continue
        if "params" not in group:
            raise KeyError(
                f"For '{cls}', the group dict {index} should have the key 'params'."
            )
        entry = _Group(index, _group_params(cls, index, group["params"]))
        _check_unique(cls, entry.params, seen)
        if "lr" in group:
            entry.lr = parse_lr(group["lr"], "lr")
        if "weight_decay" in group:
            entry.weight_decay = group["weight_decay"]
            if not isinstance(entry.weight_decay, Cell):
                check_number(entry.weight_decay, "weight_decay", cls, 0.0, False)
        else:
            entry.weight_decay = weight_decay
        if "grad_centralization" in group:
            entry.gc = check_bool(
                group["grad_centralization"], "grad_centralization", cls
            )
        parsed.append(entry)
    if not parsed:
        raise ValueError(f"For '{cls}', the groups should hold at least one 'params'.")
    plan = GroupPlan()
    plan.is_group = True
    plan.is_group_lr = any(g.lr is not None for g in parsed)
    _check_dynamic_lengths(cls, default_lr, parsed, plan.is_group_lr)

    flat = [(g, p) for g in parsed for p in g.params]
    if order is not None:
        flat = _reorder(cls, flat, order)
        plan.ordered = True
    plan.params = [p for _, p in flat]
    _plan_rates(plan, parsed, flat, default_lr)
    wd_index = {}
    for g in parsed:
        wd_index[g.index] = len(plan.wd_sources)
        plan.wd_sources.append(WdSource(g.weight_decay, loss_scale))
    for g, p in flat:
        source = plan.wd_sources[wd_index[g.index]]
        plan.wd_of.append(wd_index[g.index])
        plan.decay_flags.append(source.dynamic or source.value > 0.0)
        shape = p.shape
        plan.gc_flags.append(g.gc and len(shape) >= 2 and shape[1] % 16 == 0)
    return plan


def _check_dynamic_lengths(
    cls: str, default_lr: LrSpec, parsed: list[_Group], is_group_lr: bool
) -> None:
    specs = [g.lr for g in parsed if g.lr is not None]
    if not is_group_lr or any(g.lr is None for g in parsed):
        specs.append(default_lr)
    lengths = {s.length for s in specs if s.kind == "dynamic"}
    if len(lengths) > 1:
        raise ValueError(
            f"For '{cls}', every dynamic learning rate (list or 1-D Tensor) should "
            "have "
            f"the same length, but got lengths {sorted(lengths)}."
        )


def _reorder(
    cls: str, flat: list[tuple[_Group, Parameter]], order: list[Parameter]
) -> list[tuple[_Group, Parameter]]:
    owner = {id(p): (g, p) for g, p in flat}
    out = []
    listed: set[int] = set()
    for param in order:
        if id(param) not in owner:
            raise ValueError(
                f"For '{cls}', the Parameter '{param.name}' in 'order_params' is in no "
                "group's 'params'."
            )
        if id(param) in listed:
            raise ValueError(
                f"For '{cls}', the Parameter '{param.name}' appears twice in "
                "'order_params'."
            )
        listed.add(id(param))
        out.append(owner[id(param)])
    missing = [p.name for _, p in flat if id(p) not in listed]
    if missing:
        # spore refuses what MindSpore 2.10 lets through unchecked.
        raise ValueError(
            f"For '{cls}', 'order_params' should list every grouped Parameter, but "
            f"misses {missing}."
        )
    return out


def _plan_rates(
    plan: GroupPlan,
    parsed: list[_Group],
    flat: list[tuple[_Group, Parameter]],
    default_lr: LrSpec,
) -> None:
    if not plan.is_group_lr:
        source = LrSource(default_lr, "learning_rate", as_cell=False)
        plan.lr_sources = [source]
        plan.lr_holder = source.holder
        plan.lr_of = [0] * len(flat)
        return
    specs = [g.lr for g in parsed if g.lr is not None]
    if any(g.lr is None for g in parsed):
        specs.append(default_lr)
    as_cell = any(s.kind != "static" for s in specs)
    by_group: dict[int, int] = {}
    default_index: int | None = None
    for g, _ in flat:  # sources in the order their parameters come
        if g.index in by_group:
            continue
        if g.lr is not None:
            by_group[g.index] = len(plan.lr_sources)
            name = f"learning_rate_group_{g.index}"
            plan.lr_sources.append(LrSource(g.lr, name, as_cell))
        else:
            if default_index is None:
                default_index = len(plan.lr_sources)
                plan.lr_sources.append(LrSource(default_lr, "learning_rate", as_cell))
            by_group[g.index] = default_index
    plan.lr_of = [by_group[g.index] for g, _ in flat]
    holders = [s.holder for s in plan.lr_sources]
    if as_cell:
        from spore.nn.layer.container import CellList

        plan.lr_holder = CellList(holders, auto_prefix=False)
    else:
        plan.lr_holder = ParameterTuple(holders)
