"""``memory_report``: bytes per rank under the declared layouts, before allocation.

It reads only shapes, dtypes and layouts, so it works on lazy Parameters (a
network built in ``semi_auto_parallel`` mode or ``lazy_init()``) and costs nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from spore.common import dtype as mstype
from spore.parallel._layout import Layout, get_layout

__all__ = ["MemoryReport", "memory_report"]

# Optimizer state tensors per trained Parameter, each the Parameter's shape.
OPTIMIZER_SLOTS = {
    "sgd": 0, "momentum": 1, "adam": 2, "adamweightdecay": 2, "adamw": 2,
    "lamb": 2, "lazyadam": 2, "rmsprop": 2, "adagrad": 1, "ftrl": 2,
}  # fmt: skip


@dataclass
class MemoryReport:
    """Bytes each rank holds. ``rows``: (name, full shape, slice shape, bytes on
    one rank for the Parameter, its gradient and its optimizer state)."""

    world: int
    optimizer_slots: int
    parameters: list[int]
    gradients: list[int]
    optimizer: list[int]
    rows: list[tuple[str, tuple[int, ...], tuple[int, ...], int, int, int]] = field(
        default_factory=list
    )

    @property
    def total(self) -> list[int]:
        """Parameters + gradients + optimizer state, per rank."""
        return [
            p + g + o
            for p, g, o in zip(
                self.parameters, self.gradients, self.optimizer, strict=True
            )
        ]

    def to_markdown(self) -> str:
        """A table: one row per rank, in MiB."""
        mib = 1 << 20
        lines = [
            "| rank | parameters (MiB) | gradients (MiB) | optimizer (MiB) "
            "| total (MiB) |",
            "|---:|---:|---:|---:|---:|",
        ]
        for r in range(self.world):
            lines.append(
                f"| {r} | {self.parameters[r] / mib:.2f} "
                f"| {self.gradients[r] / mib:.2f} "
                f"| {self.optimizer[r] / mib:.2f} | {self.total[r] / mib:.2f} |"
            )
        return "\n".join(lines)

    __str__ = to_markdown


def _slots(optimizer: Any) -> int:
    if (
        isinstance(optimizer, int)
        and not isinstance(optimizer, bool)
        and optimizer >= 0
    ):
        return optimizer
    if optimizer is None:
        return 0
    name = optimizer if isinstance(optimizer, str) else type(optimizer).__name__
    key = name.lower().replace("_", "")
    if key == "sgd" and not isinstance(optimizer, str):
        return 1 if getattr(optimizer, "momentum", 0) else 0
    if key not in OPTIMIZER_SLOTS:
        raise ValueError(
            f"For 'memory_report', the optimizer {name!r} is unknown; pass the number "
            f"of state tensors per Parameter as an int, or one of "
            f"{sorted(OPTIMIZER_SLOTS)}."
        )
    return OPTIMIZER_SLOTS[key]


def _prod(shape: tuple[int, ...]) -> int:
    out = 1
    for d in shape:
        out *= d
    return out


def memory_report(
    net: Any, optimizer: Any = "Adam", world: int | None = None
) -> MemoryReport:
    """Bytes per rank for ``net``'s Parameters, gradients and optimizer state.

    Computed from shapes and the declared layouts (`set_layout`, ``shard``)
    alone: nothing is allocated, and lazy Parameters stay lazy. A Parameter
    without a layout counts in full on every rank; optimizer state is split
    further over a slice's replicas when its layout has an ``opt_shard_group``.

    Args:
        net: A Cell (or an iterable of Parameters).
        optimizer: An optimizer name (``"Adam"``, ``"Momentum"``, ``"SGD"``...),
            an Optimizer, or the number of state tensors per Parameter.
        world: The number of ranks; default: the layouts' device count
            (else `spore.parallel.world_size()`).

    Raises:
        ValueError: For an unknown optimizer, or layouts on different numbers of
            devices than ``world``.

    Examples:
        >>> from spore import nn
        >>> report = memory_report(nn.Dense(4, 2, has_bias=False), "Momentum")
        >>> report.parameters, report.optimizer
        ([32], [32])
    """
    from spore.parallel.shard import world_size

    slots = _slots(optimizer)
    params = list(net.get_parameters()) if hasattr(net, "get_parameters") else list(net)
    layouts: list[Layout | None] = [get_layout(p) for p in params]
    if world is None:
        counts = {lay.device_num for lay in layouts if lay is not None}
        if len(counts) > 1:
            raise ValueError(
                f"For 'memory_report', the layouts use different device counts "
                f"{sorted(counts)}; every device matrix should hold the world size."
            )
        world = counts.pop() if counts else max(1, world_size())
    report = MemoryReport(world, slots, [0] * world, [0] * world, [0] * world)
    for param, layout in zip(params, layouts, strict=True):
        itemsize = mstype.type_size_in_bytes(param.dtype)
        if layout is None:
            full = tuple(param.shape)
            local, opt_split = full, 1
        else:
            if layout.device_num != world:
                raise ValueError(
                    f"For 'memory_report', the device matrix {list(layout.dev_mat)} of "
                    f"Parameter '{param.name}' has {layout.device_num} devices, but "
                    f"the world size is {world}."
                )
            full, local, opt_split = (
                layout.full_shape,
                layout.slice_shape,
                layout.opt_shard_size,
            )
        p_bytes = _prod(local) * itemsize
        trained = param.requires_grad
        g_bytes = p_bytes if trained else 0
        # Optimizer sharding splits dimension 0 of the slice over its replicas.
        o_bytes = -(-_prod(local) // opt_split) * itemsize * slots if trained else 0
        for r in range(world):
            report.parameters[r] += p_bytes
            report.gradients[r] += g_bytes
            report.optimizer[r] += o_bytes
        report.rows.append((param.name, full, local, p_bytes, g_bytes, o_bytes))
    return report
