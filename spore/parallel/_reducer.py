"""The engine of ``nn.DistributedGradReducer``: bucketed, overlapped all-reduce.

Note [overlapped reduction]: each bucket (See Note [gradient buckets]) owns one flat
buffer; each reduced Parameter owns a view of it shaped like the Parameter. Between
`GradientBuckets.prepare_for_backward` and `GradientBuckets.reduce` ("armed"), a hook
on each Parameter's torch leaf copies its gradient into its view as soon as autograd
has it (already divided by ``degree`` for a mean), and returns the view, so the
gradient autograd hands back *is* the view. A bucket's buffer is laid out in
backward order (last Parameter first) and sent as segments of at most
``segment_mb``: as soon as the leading gradients of a bucket cover a segment, and
every earlier segment has been launched, the segment's ``all_reduce`` starts
asynchronously while backward goes on. The fusion buckets decide which gradients
are reduced together (MindSpore's rules); segments only cut the transfer into
pieces, so that copying and reducing overlap (the sums are the same).
`GradientBuckets.reduce` fills whatever the hooks did not see (an unused
Parameter, a gradient passed without arming), launches the rest in order, waits
for all, and returns the views, now reduced in place.

Each gradient has a route: the group it is summed over and the factor applied
first. Without routes every gradient takes the reducer's one group; with them (a
``DistributedGradReducer`` over sliced Parameters, See Note [groups from layouts]
in ``_groups.py``) a bucket only holds gradients of one route, and the buckets of
all groups are launched in the one global order, then waited for together, so no
rank waits on one group while another group still needs its launch.

Unarmed, `GradientBuckets.reduce` does the same from the gradients it is given,
without overlap. The returned gradients are views of buffers reused every step:
they hold this step's values until the next reduction (as with DDP's
``gradient_as_bucket_view``). Float16/bfloat16 gradients are reduced in float32
buckets (``gradient_fp32_sync``) and returned cast back, as new tensors.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from functools import partial
from typing import Any, NamedTuple

import torch
import torch.distributed as dist

from spore.common.parameter import Parameter
from spore.common.tensor import Tensor
from spore.parallel._buckets import plan_buckets, reduce_dtype

__all__ = ["GradientBuckets", "Route"]

# The largest single all-reduce, in MiB. Gloo over TCP moves a few large messages
# best (two of them in flight use its two worker threads); much smaller ones pay a
# fixed cost each (bench/bench_data_parallel.py).
SEGMENT_MB = 16


class Route(NamedTuple):
    """Where one gradient is summed, and how it is scaled first."""

    process_group: Any  # the torch ProcessGroup; None: the default (world) group
    size: int  # ranks in the group; 1: nothing is sent
    scale: float | None  # factor applied before the sum (1/degree for a mean)


class _Slot:
    """One reduced Parameter: its leaf, its view in the bucket, this step's state."""

    __slots__ = (
        "position",
        "name",
        "leaf",
        "view",
        "direct",
        "bucket",
        "filled",
        "seen",
    )

    def __init__(self, position: int, name: str, leaf: torch.Tensor) -> None:
        self.position = position
        self.name = name
        self.leaf = leaf
        self.view: torch.Tensor = leaf  # replaced when the buffers are made
        self.direct = True  # the view has the gradient's dtype: returned as it is
        self.bucket: _Bucket | None = None
        self.filled = False
        self.seen: Any = None  # the gradient autograd returned for this step


class _Bucket:
    """One fusion bucket: its buffer, its slots in buffer order, its segments."""

    __slots__ = (
        "index",
        "slots",
        "buffer",
        "ends",
        "segments",
        "prefix",
        "sent",
        "works",
        "route",
    )

    def __init__(
        self,
        index: int,
        slots: list[_Slot],
        buffer: torch.Tensor,
        segment: int,
        route: Route,
    ) -> None:
        self.index = index
        self.route = route
        self.slots = slots
        self.buffer = buffer
        self.ends: list[int] = []  # buffer offset where each slot ends
        offset = 0
        for slot in slots:
            offset += slot.leaf.numel()
            self.ends.append(offset)
        count = max(1, -(-offset // segment))
        step = -(-offset // count)  # equal pieces of at most `segment` elements
        self.segments = [
            (start, min(start + step, offset)) for start in range(0, offset, step)
        ]
        self.prefix = 0  # leading slots filled
        self.sent = 0  # segments launched
        self.works: list[Any] = []

    def reset(self) -> None:
        self.prefix = 0
        self.sent = 0
        self.works = []

    @property
    def done(self) -> bool:
        return self.sent == len(self.segments)


class GradientBuckets:
    """Bucketed all-reduce of the gradients of ``params`` (See Note
    [overlapped reduction]).

    Args:
        params: The Parameters, in the order gradients are passed.
        reduced: One flag per Parameter: whether its gradient is all-reduced.
        scale: Factor applied before the sum (``1/degree`` for a mean), or None.
        process_group: The torch ProcessGroup (None: the default world group).
        group_size: The number of ranks in the group (1: nothing is sent).
        routes: One `Route` per Parameter, replacing ``scale``, ``process_group``
            and ``group_size`` (gradients summed over different groups).
        options: ``fusion_type``, ``split_indices``, ``threshold_mb`` (see
            `plan_buckets`), ``fp32_sync``, ``segment_mb``, ``timeout_s``.
        api: The name used in error messages.
    """

    def __init__(
        self,
        params: Sequence[Parameter],
        reduced: Sequence[bool],
        scale: float | None,
        process_group: Any,
        group_size: int,
        options: dict[str, Any],
        api: str = "DistributedGradReducer",
        routes: Sequence[Route] | None = None,
    ) -> None:
        self.params = list(params)
        self.reduced = list(reduced)
        if routes is None:
            routes = [Route(process_group, group_size, scale)] * len(self.params)
        if len(routes) != len(self.params):
            raise ValueError(
                f"For '{api}', expected one route per parameter ({len(self.params)}), "
                f"but got {len(routes)}."
            )
        self.routes = list(routes)
        self.options = options
        self.api = api
        self.slots: list[_Slot] = []
        self.buckets: list[_Bucket] = []
        self.rule = ""  # which fusion rule made the buckets (set when built)
        self._hooks: list[Any] = []
        self._next = 0  # the next bucket to launch
        self._armed = False
        self._built = False

    # ---- construction -----------------------------------------------------------

    def _build(self) -> None:
        """Plan the buckets, make the buffers and hook the leaves (at first use, so
        lazy Parameters are materialised by then)."""
        self._remove_hooks()
        fp32_sync = bool(self.options.get("fp32_sync", True))
        positions, keys, nbytes, ids = [], [], [], []
        leaves: dict[int, torch.Tensor] = {}
        route_ids: dict[tuple[int, int, float | None], int] = {}
        for position, (param, flag) in enumerate(
            zip(self.params, self.reduced, strict=True)
        ):
            leaf = param._materialized()
            leaves[position] = leaf
            dtype = reduce_dtype(leaf.dtype, fp32_sync)
            route = self.routes[position]
            key = (id(route.process_group), route.size, route.scale)
            keys.append((dtype, leaf.device, route_ids.setdefault(key, len(route_ids))))
            nbytes.append(leaf.numel() * dtype.itemsize)
            ids.append(param.comm_fusion)
            floating = leaf.is_floating_point() or leaf.is_complex()
            # A parameter-server Parameter's gradient goes to the servers, which
            # aggregate it (MindSpore r1.3: the reducer leaves it alone).
            if flag and floating and leaf.numel() and not param.is_param_ps:
                positions.append(position)
        plan = plan_buckets(
            positions,
            ids,
            keys,
            nbytes,
            fusion_type=self.options.get("fusion_type", 1),
            split_indices=self.options.get("split_indices", ()),
            threshold_mb=self.options.get("threshold_mb", 25),
        )
        self.rule = plan.rule
        self.slots, self.buckets = [], []
        segment_mb = float(self.options.get("segment_mb", SEGMENT_MB))
        for index, ascending in enumerate(plan.buckets):
            members = ascending[::-1]  # backward order: filled front to back
            dtype, device, _ = keys[members[0]]
            total = sum(leaves[p].numel() for p in members)
            buffer = torch.zeros(total, dtype=dtype, device=device)
            slots = []
            offset = 0
            for position in members:
                leaf = leaves[position]
                slot = _Slot(position, self.params[position].name, leaf)
                slot.view = buffer[offset : offset + leaf.numel()].view(leaf.shape)
                slot.direct = dtype == leaf.dtype
                offset += leaf.numel()
                slots.append(slot)
                if leaf.requires_grad:
                    self._hooks.append(leaf.register_hook(partial(self._on_grad, slot)))
            segment = max(1, int(segment_mb * 2**20) // buffer.element_size())
            bucket = _Bucket(index, slots, buffer, segment, self.routes[members[0]])
            for slot in slots:
                slot.bucket = bucket
            self.slots.extend(slots)
            self.buckets.append(bucket)
        self._built = True

    def _remove_hooks(self) -> None:
        for handle in self._hooks:
            handle.remove()
        self._hooks = []

    def _ensure_built(self) -> None:
        # set_data with a new shape, or a re-materialisation, replaces the leaf.
        if not self._built or any(
            slot.leaf is not self.params[slot.position]._data for slot in self.slots
        ):
            self._build()

    def bucket_names(self) -> list[list[str]]:
        """The Parameter names of each bucket (in parameter order), buckets in
        launch order."""
        self._ensure_built()
        return [
            [slot.name for slot in sorted(bucket.slots, key=lambda s: s.position)]
            for bucket in self.buckets
        ]

    # ---- one step ----------------------------------------------------------------

    def _reset(self) -> None:
        for bucket in self.buckets:
            bucket.reset()
        for slot in self.slots:
            slot.filled = False
            slot.seen = None
        self._next = 0

    def prepare_for_backward(self) -> None:
        """Arm the hooks: the next backward pass starts the reduction."""
        self._ensure_built()
        self._reset()
        self._armed = True

    def _fill(self, slot: _Slot, grad: torch.Tensor | None) -> None:
        bucket = slot.bucket
        assert bucket is not None
        scale = bucket.route.scale
        with torch.no_grad():
            if grad is None:
                slot.view.zero_()
            elif scale is None or not slot.direct:
                slot.view.copy_(grad)
                if scale is not None:
                    slot.view.mul_(scale)
            else:
                torch.mul(grad, scale, out=slot.view)
        slot.filled = True
        slots = bucket.slots
        while bucket.prefix < len(slots) and slots[bucket.prefix].filled:
            bucket.prefix += 1
        if bucket.index == self._next:
            self._launch_ready()

    def _on_grad(self, slot: _Slot, grad: torch.Tensor) -> torch.Tensor | None:
        if not self._armed:
            return None
        if slot.filled:
            self._armed = False
            self._abandon()
            raise RuntimeError(
                f"For '{self.api}', the gradient of '{slot.name}' was computed twice "
                "in one step: call the reducer after each backward pass, or do not "
                "call prepare_for_backward() before a pass that is not a step."
            )
        self._fill(slot, grad)
        slot.seen = slot.view if slot.direct else grad
        return slot.view if slot.direct else None

    def _launch_ready(self) -> None:
        """Launch, in the one global order, every segment whose gradients are in."""
        while self._next < len(self.buckets):
            bucket = self.buckets[self._next]
            filled = bucket.ends[bucket.prefix - 1] if bucket.prefix else 0
            while not bucket.done and bucket.segments[bucket.sent][1] <= filled:
                start, end = bucket.segments[bucket.sent]
                if bucket.route.size > 1:
                    bucket.works.append(
                        dist.all_reduce(
                            bucket.buffer[start:end],
                            group=bucket.route.process_group,
                            async_op=True,
                        )
                    )
                bucket.sent += 1
            if not bucket.done:
                return
            self._next += 1

    def reduce(self, grads: Sequence[Any]) -> tuple[Any, ...]:
        """All-reduce ``grads`` (one per Parameter, torch or spore Tensors or None)
        and return them; gradients that are not reduced pass through unchanged.

        Raises:
            ValueError: If the number or a shape of the gradients is wrong.
            RuntimeError: If a rank failed or timed out during the all-reduce, or
                the gradients differ from those the armed backward pass produced.
        """
        if len(grads) != len(self.params):
            self._armed = False
            raise ValueError(
                f"For '{self.api}', expected {len(self.params)} gradients (one per "
                f"parameter, in order), but got {len(grads)}."
            )
        self._ensure_built()
        if not self._armed:
            self._reset()
        armed, self._armed = self._armed, False
        for slot in self.slots:
            given = grads[slot.position]
            raw = given._materialized() if isinstance(given, Tensor) else given
            if slot.filled:
                if armed and not _same_tensor(raw, slot.seen):
                    self._abandon()
                    raise RuntimeError(
                        f"For '{self.api}', the gradient of '{slot.name}' is not the "
                        "one the backward pass produced: it was replaced after "
                        "prepare_for_backward(). Reduce the gradients before changing "
                        "them, or call the reducer without prepare_for_backward()."
                    )
                continue
            if raw is not None and tuple(raw.shape) != tuple(slot.view.shape):
                self._abandon()
                raise ValueError(
                    f"For '{self.api}', the gradient of '{slot.name}' should have "
                    f"shape {tuple(slot.view.shape)}, but got {tuple(raw.shape)}."
                )
            self._fill(slot, raw)
        self._launch_ready()
        self._wait()
        return self._outputs(grads)

    def _abandon(self) -> None:
        """Finish what was launched, so the ranks stay in step, then give up."""
        for bucket in self.buckets:
            works, bucket.works = bucket.works, []
            for work in works:
                work.wait()

    def _wait(self) -> None:
        timeout = timedelta(seconds=float(self.options.get("timeout_s", 300.0)))
        for bucket in self.buckets:
            works, bucket.works = bucket.works, []
            try:
                for work in works:
                    work.wait(timeout)
            except Exception as err:  # gloo: RuntimeError / DistBackendError
                size = bucket.buffer.numel() * bucket.buffer.element_size()
                raise RuntimeError(
                    f"For '{self.api}', the all-reduce of gradient bucket "
                    f"{bucket.index} ({len(bucket.slots)} parameters, "
                    f"{size / 2**20:.1f} MiB, a group of {bucket.route.size} ranks) "
                    f"failed on rank {dist.get_rank()} of {dist.get_world_size()}: "
                    f"{_first_line(err)}. Another rank has "
                    "probably exited or stopped responding; see its log. Waits are "
                    f"bounded by {timeout.total_seconds():g} s "
                    "(spore.communication.init(timeout=...) or SPORE_COMM_TIMEOUT)."
                ) from err

    def _outputs(self, grads: Sequence[Any]) -> tuple[Any, ...]:
        spore_style = any(isinstance(g, Tensor) for g in grads)
        out = list(grads)
        for slot in self.slots:
            reduced = slot.view if slot.direct else slot.view.to(slot.leaf.dtype)
            given = grads[slot.position]
            if isinstance(given, Tensor) or (given is None and spore_style):
                out[slot.position] = Tensor._wrap(reduced)
            else:
                out[slot.position] = reduced
        return tuple(out)


def _same_tensor(given: Any, seen: Any) -> bool:
    """``given`` is the gradient the hook saw, or a detached alias of it (what
    ``spore.value_and_grad`` returns): same storage, place, shape and dtype."""
    if given is seen:
        return True
    return (
        isinstance(given, torch.Tensor)
        and isinstance(seen, torch.Tensor)
        and given.data_ptr() == seen.data_ptr()
        and given.dtype == seen.dtype
        and given.shape == seen.shape
        and given.stride() == seen.stride()
    )


def _first_line(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return lines[0] if lines else type(err).__name__
