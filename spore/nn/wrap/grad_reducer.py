"""``DistributedGradReducer``: all-reduce gradients across data-parallel ranks.

MindSpore's ``nn.DistributedGradReducer`` with its signature and results, on
``torch.distributed``: gradients are summed in buckets (MindSpore's fusion rules,
See Note [gradient buckets] in ``spore/parallel/_buckets.py``), divided by
``degree`` for a mean, and ``layerwise_parallel`` Parameters' gradients pass
through unreduced and unscaled. A Parameter sliced by a layout (a layer's
``shard``, ``spore.parallel.set_layout``) is summed only over the ranks that hold
its slice, as MindSpore's semi-auto parallel does, so data and tensor parallelism
combine on one device matrix (See Note [groups from layouts] in
``spore/parallel/_groups.py``). `TrainOneStepCell` arms it before its backward pass,
so buckets are reduced while backward still runs (See Note [overlapped reduction] in
``spore/parallel/_reducer.py``).

The process layer (``spore.communication``, ``spore.parallel``) is imported when a
reducer is made, not when ``spore.nn`` is: networks work without it (DESIGN.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from spore import context as _context
from spore.common.parameter import Parameter
from spore.nn.cell import Cell

__all__ = ["DistributedGradReducer"]

# MindSpore's GlobalComm.WORLD_COMM_GROUP before init; every world name is accepted.
_WORLD = "hccl_world_group"


class DistributedGradReducer(Cell):
    """All-reduce gradients across ranks, bucketed, skipping layerwise-parallel ones.

    Each gradient is summed over the ranks that hold the same data: the ranks that
    hold the same slice for a Parameter sliced by a layout (on a ``[dp, mp]``
    device matrix, the ``dp`` ranks of its slice), all ranks of ``group`` for the
    others. Every rank must build its reducer at the same point (the groups of
    sliced Parameters are created then, collectively).

    Args:
        parameters: The Parameters whose gradients are passed, in that order.
        mean: Divide the sums by ``degree``. None: the context's
            ``gradients_mean``. Default: ``True`` (MindSpore r1.x; 2.10 defaults to
            None).
        degree: The divisor for the mean. None: the size of the group each
            gradient is summed over.
        fusion_type: 1 lets ``all_reduce_fusion_config`` split the buckets; 0
            reduces every gradient alone. Default: 1.
        group: The communication group. Default: the world group
            (``GlobalComm.WORLD_COMM_GROUP``; any MindSpore world name).

    Inputs:
        grads: One gradient per Parameter (spore or torch tensors; None counts as
            zeros), in ``parameters`` order.

    Outputs:
        A tuple of the gradients: summed over ranks (and divided by ``degree`` for a
        mean) for ordinary Parameters, unchanged for ``layerwise_parallel`` ones and
        for Parameters without gradients (``requires_grad=False``, integer dtypes).
        Reduced gradients are views of buffers reused at the next call.

    Raises:
        TypeError: If ``parameters`` is not a sequence of Parameters, ``mean`` not
            a bool or None, ``fusion_type`` not an int, or ``group`` not a str.
        ValueError: If ``degree`` is not a positive int or ``fusion_type`` < 0, a
            sliced Parameter's device matrix does not match the world size, or
            sliced Parameters come with a ``group`` other than the world.
        RuntimeError: Before ``spore.communication.init()``.

    Examples:
        >>> # Under torchrun, after spore.communication.init():
        >>> # reducer = nn.DistributedGradReducer(opt.parameters, mean=True)
        >>> # grads = reducer(grads)
    """

    def __init__(
        self,
        parameters: Sequence[Parameter],
        mean: bool | None = True,
        degree: int | None = None,
        fusion_type: int = 1,
        group: str = _WORLD,
    ) -> None:
        if isinstance(parameters, (str, bytes)) or not isinstance(parameters, Sequence):
            raise TypeError(
                "For 'DistributedGradReducer', the 'parameters' should be a list or "
                f"tuple of Parameters, but got {type(parameters).__name__}."
            )
        for index, param in enumerate(parameters):
            if not isinstance(param, Parameter):
                raise TypeError(
                    "For 'DistributedGradReducer', every item of 'parameters' should "
                    f"be a Parameter, but item {index} is {type(param).__name__}."
                )
        if mean is None:
            # MindSpore parity: 2.10's default, None, reads the context.
            mean = _context.get_auto_parallel_context("gradients_mean")
        if not isinstance(mean, bool):
            raise TypeError(
                "For 'DistributedGradReducer', the 'mean' should be bool or None, but "
                f"got {type(mean).__name__}."
            )
        if degree is not None and (
            isinstance(degree, bool) or not isinstance(degree, int) or degree <= 0
        ):
            # MindSpore parity: a non-int degree is a ValueError too.
            raise ValueError(
                "For 'DistributedGradReducer', the 'degree' should be a positive int "
                f"or None, but got {degree!r}."
            )
        if isinstance(fusion_type, bool) or not isinstance(fusion_type, int):
            raise TypeError(
                "For 'DistributedGradReducer', the 'fusion_type' should be int, but "
                f"got {type(fusion_type).__name__}."
            )
        if fusion_type < 0:
            raise ValueError(
                "For 'DistributedGradReducer', the 'fusion_type' should be >= 0, but "
                f"got {fusion_type}."
            )
        from spore.communication import management
        from spore.parallel._groups import reduce_groups
        from spore.parallel._reducer import GradientBuckets, Route

        api = "DistributedGradReducer"
        management._process_group(group, api)  # checks init and the name
        group_size = management.get_group_size(group)
        # MindSpore's attribute: which gradients are all-reduced.
        allreduce_filter = tuple(not p.layerwise_parallel for p in parameters)
        reduced = [
            keep and p.requires_grad
            for keep, p in zip(allreduce_filter, parameters, strict=True)
        ]
        where = reduce_groups(parameters, reduced, group, api)
        routes = []
        for name, ranks in where:
            size = max(len(ranks), 1)
            process_group = (
                management._process_group(name, api) if name is not None else None
            )
            divisor = size if degree is None else degree
            routes.append(Route(process_group, size, 1.0 / divisor if mean else None))
        super().__init__(auto_prefix=False)
        self.mean = mean
        self.degree = group_size if degree is None else degree
        self.fusion_type = fusion_type
        self.group = group
        self.allreduce_filter = allreduce_filter
        # Spore extension: the world ranks each gradient is summed over (() for
        # those passed through).
        self.reduce_groups = tuple(ranks for _, ranks in where)
        self._buckets = GradientBuckets(
            tuple(parameters),
            reduced,
            None,
            None,
            group_size,
            _fusion_options(fusion_type),
            routes=routes,
        )

    def prepare_for_backward(self) -> None:
        """Start the reduction during the next backward pass (its hooks copy each
        gradient into its bucket and launch full buckets); the next call then only
        waits. `TrainOneStepCell` calls it before each step's backward pass.
        """
        self._buckets.prepare_for_backward()

    @property
    def buckets(self) -> list[list[str]]:
        """The Parameter names of each all-reduce bucket, in launch order."""
        return self._buckets.bucket_names()

    def construct(self, grads: Sequence[Any]) -> tuple[Any, ...]:
        if not isinstance(grads, (tuple, list)):
            raise TypeError(
                "For 'DistributedGradReducer', the 'grads' should be a tuple or list "
                f"with one gradient per parameter, but got {type(grads).__name__}."
            )
        return self._buckets.reduce(grads)


def _fusion_options(fusion_type: int) -> dict[str, Any]:
    from spore.communication.management import GlobalComm

    fusion = _context.get_auto_parallel_context("comm_fusion").get("allreduce", {})
    mode, config = fusion.get("mode", "auto"), fusion.get("config")
    split = list(config) if mode == "index" else []
    if not split:
        split = _context.get_auto_parallel_context("all_reduce_fusion_config")
    threshold = config if mode == "size" else _context.AUTO_FUSION_THRESHOLD_MB
    return {
        "fusion_type": fusion_type,
        "split_indices": split,
        "threshold_mb": threshold,
        "fp32_sync": _context.get_auto_parallel_context("gradient_fp32_sync"),
        "timeout_s": GlobalComm.TIMEOUT_S,
    }
