"""``DistributedGradReducer``: all-reduce gradients across data-parallel ranks.

MindSpore's ``nn.DistributedGradReducer`` with its signature and results, on
``torch.distributed``: gradients are summed in buckets (MindSpore's fusion rules,
See Note [gradient buckets] in ``spore/parallel/_buckets.py``), divided by
``degree`` for a mean, and ``layerwise_parallel`` Parameters' gradients pass
through unreduced and unscaled. `TrainOneStepCell` arms it before its backward
pass, so buckets are reduced while backward still runs (See Note [overlapped
reduction] in ``spore/parallel/_reducer.py``).

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

    Args:
        parameters: The Parameters whose gradients are passed, in that order.
        mean: Divide the sums by ``degree``. None: the context's
            ``gradients_mean``. Default: ``True`` (MindSpore r1.x; 2.10 defaults to
            None).
        degree: The divisor for the mean. None: the group size.
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
        ValueError: If ``degree`` is not a positive int or ``fusion_type`` < 0.
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
        from spore.parallel._reducer import GradientBuckets

        process_group = management._process_group(group, "DistributedGradReducer")
        group_size = management.get_group_size(group)
        super().__init__(auto_prefix=False)
        self.mean = mean
        self.degree = group_size if degree is None else degree
        self.fusion_type = fusion_type
        self.group = group
        # MindSpore's attribute: which gradients are all-reduced.
        self.allreduce_filter = tuple(not p.layerwise_parallel for p in parameters)
        reduced = [
            keep and p.requires_grad
            for keep, p in zip(self.allreduce_filter, parameters, strict=True)
        ]
        self._buckets = GradientBuckets(
            tuple(parameters),
            reduced,
            1.0 / self.degree if mean else None,
            process_group,
            group_size,
            _fusion_options(fusion_type),
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
