"""``Optimizer``: the base of spore's optimizers (MindSpore 2.10 ``nn.Optimizer``).

An optimizer is a Cell (``auto_prefix=False``) holding the network Parameters it
updates (``parameters``), its learning rate(s), ``global_step`` and each
subclass's state Parameters, named as MindSpore names them (``moments.<name>``).
``optimizer(grads)`` takes one gradient per parameter, in ``parameters`` order,
and updates the Parameters' torch tensors in place.

Note [update order] (2.10, recorded [E]): coupled weight decay
``g += wd*loss_scale*w`` (where ``decay_flags`` is set) → gradient centralization
(groups) → ``g *= 1/loss_scale`` → read the learning rate, then
``global_step += 1`` (every call) → the update.

Note [hot loop]: everything that depends only on the configuration (which
parameters share a learning rate, decay and dtype; their state tensors) is
worked out once and cached by bucket. A step reads the learning rates, checks
the gradients, and calls one fused kernel per bucket (`_kernels.py`).
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Iterator
from typing import Any, NamedTuple

import numpy as np
import torch

from spore import context as _context
from spore.common.parameter import Parameter, ParameterTuple
from spore.common.tensor import Tensor
from spore.nn.cell import Cell
from spore.nn.optim import _kernels
from spore.nn.optim._checks import check_number, float32
from spore.nn.optim._groups import GroupPlan, plan_groups, plan_single
from spore.nn.optim._lr import LrSource, WdSource

__all__ = ["Optimizer"]

Tensors = list[torch.Tensor]


class _Bucket:
    """Parameters updated by one kernel call: same lr, decay, centralization,
    device and dtype. ``index`` lists their positions in ``parameters``."""

    __slots__ = ("index", "lr", "wd", "gc", "params", "states", "fused")

    def __init__(self, index: list[int], lr: int, wd: int | None, gc: bool) -> None:
        self.index = index
        self.lr = lr
        self.wd = wd
        self.gc = gc
        self.params: Tensors = []
        self.states: list[Tensors] = []
        self.fused = False


class _Update(NamedTuple):
    """One bucket's update at one step, as `Optimizer._apply` gets it: the tensors
    that have a gradient (preprocessed: See Note [update order]), the learning
    rate and weight decay to use, and whether the kernel may take the fused path.
    """

    params: Tensors
    grads: Tensors
    states: list[Tensors]
    lr: float
    wd: float
    fused: bool


class Optimizer(Cell):
    """Base class of the optimizers; updates Parameters from their gradients.

    Args:
        learning_rate: A float/int >= 0, a 0-d Tensor, a list or 1-D Tensor
            (dynamic: step ``i`` uses item ``i``) or a `LearningRateSchedule`.
        parameters: A list of Parameters, or of group dicts with keys
            ``params``, ``lr``, ``weight_decay``, ``grad_centralization``, or a
            lone ``order_params``.
        weight_decay: A float/int >= 0, or a Cell giving it per step. Ungrouped,
            it applies to parameters whose name contains neither 'beta' nor
            'gamma'; in groups, to the groups with weight decay > 0.
        loss_scale: Gradients are divided by it (float > 0). Default: 1.0.

    Raises:
        ValueError: If ``parameters`` is None or empty, a value is out of range,
            a group key is misused, or ``order_params`` does not list exactly the
            grouped Parameters.
        TypeError: If a parameter is not a Parameter, or an argument has the
            wrong type.
        KeyError: If a group dict has an unknown key.
        RuntimeError: If a Parameter appears in two groups (or twice).
    """

    _state_prefixes: tuple[str, ...] = ()  # state ParameterTuples, one per parameter

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # Run `_after_init` once the outermost __init__ is done (the subclass makes
        # its state Parameters after Optimizer.__init__): See Note [PS step].
        super().__init_subclass__(**kwargs)
        own = cls.__dict__.get("__init__")
        if own is None:
            return

        @functools.wraps(own)
        def init(self: Any, *args: Any, **kw: Any) -> None:
            own(self, *args, **kw)
            if type(self).__init__ is init:
                self._after_init()

        cls.__init__ = init  # type: ignore[method-assign]

    def _after_init(self) -> None:
        """A parameter-server worker hands its PS parameters to the servers now,
        before a first forward pass could materialise their state here."""
        if self._ps_plan is None and self._ps_attach():
            self.__dict__["_buckets"] = self._make_buckets()
    _coupled_decay = True  # False for AdamWeightDecay (decoupled, inside the kernel)

    def __init__(
        self,
        learning_rate: Any,
        parameters: Any,
        weight_decay: Any = 0.0,
        loss_scale: float = 1.0,
    ) -> None:
        super().__init__(auto_prefix=False)
        if isinstance(loss_scale, bool) or not isinstance(loss_scale, (int, float)):
            raise TypeError(
                f"For '{self.cls_name}', the 'loss_scale' should be float, but got "
                f"{type(loss_scale).__name__}."
            )
        check_number(loss_scale, "loss_scale", self.cls_name, 0.0, True)
        if not isinstance(weight_decay, Cell):
            check_number(weight_decay, "weight_decay", self.cls_name, 0.0, False)
        self.loss_scale = float(loss_scale)
        self.reciprocal_scale = float32(1.0 / self.loss_scale)
        self.need_scale = self.loss_scale != 1.0
        self.dynamic_weight_decay = isinstance(weight_decay, Cell)
        plan = self._plan(learning_rate, parameters, weight_decay)
        self.is_group = plan.is_group
        self.is_group_lr = plan.is_group_lr
        self.is_group_params_ordered = plan.ordered
        self.dynamic_lr = any(s.kind != "static" for s in plan.lr_sources)
        self._lr_sources: list[LrSource] = plan.lr_sources
        self._lr_of: list[int] = plan.lr_of
        self._wd_sources: list[WdSource] = plan.wd_sources
        self._wd_of: list[int] = plan.wd_of

        # Registration order is MindSpore's parameters_and_names order [E].
        self.global_step = Parameter(Tensor(np.zeros(1, np.int32)), name="global_step")
        self.learning_rate = plan.lr_holder
        self.parameters = ParameterTuple(plan.params)
        self.param_length = len(plan.params)
        self.decay_flags = tuple(plan.decay_flags)
        self.grad_centralization_flags = tuple(plan.gc_flags)
        if plan.is_group:
            self.weight_decay: Any = tuple(
                self._wd_sources[w].value for w in self._wd_of
            )
        else:
            source = self._wd_sources[0]
            self.weight_decay = source.cell if source.dynamic else source.value
        self.exec_weight_decay = any(
            flag and (self._wd_sources[w].dynamic or self._wd_sources[w].value > 0)
            for flag, w in zip(self.decay_flags, self._wd_of, strict=True)
        )
        self._success = (True,) * self.param_length
        # Cached tensor lists live outside Cell registration (see _refresh_buckets).
        # PS parameters (issue 7) are updated on the servers: see Note [PS step].
        self.__dict__["_ps_plan"] = None
        self.__dict__["_buckets"] = self._make_buckets()
        self.__dict__["_tracked"] = []
        self.__dict__["_tracked_data"] = []
        self.__dict__["_param_data"] = []

    def _plan(
        self, learning_rate: Any, parameters: Any, weight_decay: Any
    ) -> GroupPlan:
        if parameters is None:
            raise ValueError(
                f"For '{self.cls_name}', the 'parameters' should be a non-empty list "
                "of "
                "Parameters or of group dicts, but got None."
            )
        if isinstance(parameters, Iterator):
            parameters = list(parameters)
        if not isinstance(parameters, (list, tuple)):
            raise TypeError(
                f"For '{self.cls_name}', the 'parameters' should be a list or tuple, "
                "but "
                f"got {type(parameters).__name__}."
            )
        if not parameters:
            raise ValueError(
                f"For '{self.cls_name}', the 'parameters' should not be empty."
            )
        if all(isinstance(p, dict) for p in parameters):
            return plan_groups(
                self.cls_name,
                list(parameters),
                learning_rate,
                weight_decay,
                self.loss_scale,
            )
        if all(isinstance(p, Parameter) for p in parameters):
            return plan_single(
                self.cls_name,
                list(parameters),
                learning_rate,
                weight_decay,
                self.loss_scale,
            )
        bad = [p for p in parameters if not isinstance(p, (Parameter, dict))]
        got = type(bad[0]).__name__ if bad else "a mix of Parameters and dicts"
        raise TypeError(
            f"For '{self.cls_name}', every element of 'parameters' should be a "
            "Parameter "
            f"(or every element a group dict), but got {got}."
        )

    def _make_buckets(self) -> list[_Bucket]:
        groups: dict[tuple[int, int | None, bool], list[int]] = {}
        remote = self._ps_plan.indices if self._ps_plan is not None else ()
        for i in range(self.param_length):
            if i in remote:
                continue
            decayed = self.decay_flags[i] and self._decays(self._wd_of[i])
            key = (
                self._lr_of[i],
                self._wd_of[i] if decayed else None,
                self.grad_centralization_flags[i],
            )
            groups.setdefault(key, []).append(i)
        return [_Bucket(index, *key) for key, index in groups.items()]

    def _decays(self, wd_index: int) -> bool:
        source = self._wd_sources[wd_index]
        return source.dynamic or source.value != 0.0

    # ---- state -----------------------------------------------------------------

    def _state_tuples(self) -> list[ParameterTuple]:
        """The per-parameter state, in the order the kernel takes it."""
        return [getattr(self, prefix) for prefix in self._state_prefixes]

    def _refresh_buckets(self) -> None:
        """Rebuild the cached tensor lists if any Parameter's torch data changed."""
        if not self._tracked:
            tracked = list(self.parameters)
            for states in self._state_tuples():
                tracked.extend(states)
            self.__dict__["_tracked"] = tracked
        current = [p._data for p in self._tracked]
        if len(current) == len(self._tracked_data) and all(
            map(operator.is_, current, self._tracked_data)
        ):
            return
        data = [p._materialized() for p in self._tracked]
        params = data[: self.param_length]
        state_lists = [
            data[self.param_length * (k + 1) : self.param_length * (k + 2)]
            for k in range(len(self._state_prefixes))
        ]
        split: list[_Bucket] = []
        for bucket in self._make_buckets():
            by_kind: dict[tuple[Any, Any], list[int]] = {}
            for i in bucket.index:
                by_kind.setdefault((params[i].device, params[i].dtype), []).append(i)
            for index in by_kind.values():
                part = _Bucket(index, bucket.lr, bucket.wd, bucket.gc)
                part.params = [params[i] for i in index]
                part.states = [[states[i] for i in index] for states in state_lists]
                part.fused = _kernels.can_fuse(part.params + sum(part.states, []))
                split.append(part)
        self.__dict__["_buckets"] = split
        self.__dict__["_param_data"] = params
        self.__dict__["_tracked_data"] = [p._data for p in self._tracked]

    # ---- a step ------------------------------------------------------------------

    def _gradients(self, gradients: Any) -> list[torch.Tensor | None]:
        """The torch gradients, checked against the parameters' (cached) data."""
        if not isinstance(gradients, (tuple, list)):
            raise TypeError(
                f"For '{self.cls_name}', the gradients should be a tuple or list with "
                f"one gradient per parameter, but got {type(gradients).__name__}."
            )
        if len(gradients) != self.param_length:
            raise ValueError(
                f"For '{self.cls_name}', expected {self.param_length} gradients (one "
                f"per parameter, in 'parameters' order), but got {len(gradients)}."
            )
        out: list[torch.Tensor | None] = []
        for index, (grad, data) in enumerate(
            zip(gradients, self._param_data, strict=True)
        ):
            if isinstance(grad, Tensor):
                grad = grad._materialized()
            elif not isinstance(grad, torch.Tensor):
                if grad is not None:
                    self._raise_gradient_type(index, grad)
                out.append(None)
                continue
            if grad.shape != data.shape:
                self._raise_gradient_shape(index, grad)
            if grad.dtype is not data.dtype:
                grad = grad.to(dtype=data.dtype)
            # A gradient on another device fails in the kernel, with torch's message.
            out.append(grad)
        return out

    def _raise_gradient_type(self, index: int, grad: Any) -> None:
        raise TypeError(
            f"For '{self.cls_name}', the gradient of '{self.parameters[index].name}' "
            "should be a Tensor, a torch.Tensor or None, but got "
            f"{type(grad).__name__}."
        )

    def _raise_gradient_shape(self, index: int, grad: torch.Tensor) -> None:
        param = self.parameters[index]
        raise ValueError(
            f"For '{self.cls_name}', the gradient of '{param.name}' should have shape "
            f"{tuple(param.shape)}, but got {tuple(grad.shape)}."
        )

    def get_lr(self) -> Any:
        """This step's learning rate(s) as float32 Tensors; advances ``global_step``.

        Returns a 0-d Tensor, or a tuple with one per parameter when the learning
        rate is grouped (MindSpore 2.10 parity: this call increments ``global_step``).
        """
        with torch.no_grad():
            values = self._read_lrs()
            self.global_step._materialized().add_(1)
        tensors = [Tensor(np.float32(v)) for v in values]
        if self.is_group_lr:
            return tuple(tensors[self._lr_of[i]] for i in range(self.param_length))
        return tensors[0]

    def _current_step(self) -> int:
        return int(self.global_step._materialized()[0])

    def _read_lrs(self) -> list[float]:
        step = self._current_step()
        return [s.value_at(step, self.global_step) for s in self._lr_sources]

    def construct(self, gradients: Any) -> tuple[bool, ...]:
        if self._ps_plan is None and self._ps_attach():
            self.__dict__["_tracked"] = []  # rebuild the buckets without them
            self.__dict__["_tracked_data"] = []
        self._refresh_buckets()  # materialises lazy Parameters, caches their data
        grads = self._gradients(gradients)
        with torch.no_grad():
            wds = [s.value_at(self.global_step) for s in self._wd_sources]
            lrs = self._read_lrs()  # See Note [update order]: lr, then global_step
            self.global_step._materialized().add_(1)
            self._before_update()
            complete = all(grad is not None for grad in grads)
            for bucket in self._buckets:
                g = [grads[i] for i in bucket.index]
                params, states = bucket.params, bucket.states
                if not complete:
                    keep = [k for k, grad in enumerate(g) if grad is not None]
                    if not keep:
                        continue
                    g = [g[k] for k in keep]
                    params = [params[k] for k in keep]
                    states = [[s[k] for k in keep] for s in states]
                wd = 0.0 if bucket.wd is None else wds[bucket.wd]
                g, wd = self._preprocess(bucket, params, g, wd)
                update = _Update(params, g, states, lrs[bucket.lr], wd, bucket.fused)
                self._apply(update)
        if self._ps_plan is not None:
            self._ps_plan.step(grads, [lrs[k] for k in self._lr_of])
        return self._success

    # ---- parameter server (issue 7) -------------------------------------------------
    # Note [PS step]: on a parameter-server worker, the first step hands the
    # optimizer's PS parameters to the servers (with `_ps_config` and the values
    # below); from then on the local buckets leave them out, and each step pushes
    # their gradients (with this step's learning rate) and pulls the new values.
    # Their optimizer state lives on the servers only: the worker's state clones of
    # a PS parameter stay lazy (Parameter.clone), and any made before
    # set_param_ps are freed at attach.

    def _ps_attach(self) -> bool:
        """Attach to the PS client if this is a worker with PS parameters."""
        client = _context._ps_client()
        if client is None or not any(p.is_param_ps for p in self.parameters):
            return False
        self.__dict__["_ps_plan"] = client.attach(self)
        return True

    def _ps_mean(self) -> bool:
        return bool(_context.get_auto_parallel_context("gradients_mean"))

    def _ps_lr(self, index: int) -> float:
        """Parameter ``index``'s learning rate at the current step."""
        source = self._lr_sources[self._lr_of[index]]
        with torch.no_grad():
            return source.value_at(self._current_step(), self.global_step)

    def _ps_weight_decay(self, index: int) -> float:
        """Parameter ``index``'s weight decay as given (0 when not decayed).

        Raises:
            RuntimeError: If it is dynamic (a Cell): servers take a number.
        """
        source = self._wd_sources[self._wd_of[index]]
        if source.dynamic:
            raise RuntimeError(
                f"For '{self.cls_name}', a dynamic weight decay cannot be used with "
                f"parameter-server parameters ('{self.parameters[index].name}')."
            )
        if not (self.decay_flags[index] and self._decays(self._wd_of[index])):
            return 0.0
        return source.value / source.loss_scale

    def _set_static_lr(self, value: float) -> None:
        """Set a fixed learning rate's value (a server's optimizer, every step)."""
        parameter = self._lr_sources[0].parameter
        assert parameter is not None and self._lr_sources[0].kind == "static"
        with torch.no_grad():
            parameter._materialized().fill_(value)

    def _preprocess(
        self, bucket: _Bucket, params: Tensors, grads: Tensors, wd: float
    ) -> tuple[Tensors, float]:
        """Gradients and weight decay for the kernel (See Note [update order])."""
        if not self._coupled_decay:
            return (_kernels.centralize(grads) if bucket.gc else grads), wd
        if bucket.gc:
            grads = _kernels.centralize(_kernels.with_decay(grads, params, wd))
            if self.need_scale:
                grads = _kernels.scaled(grads, self.reciprocal_scale)
            return grads, 0.0
        if self.need_scale:
            # The kernel adds wd*w after the scaling: (g + wd*ls*w)/ls = g/ls + wd*w.
            scaled = _kernels.scaled(grads, self.reciprocal_scale)
            return scaled, wd * self.reciprocal_scale
        return grads, wd

    def _before_update(self) -> None:
        """Per-step scalar state (Adam's beta powers); called after ``global_step``."""

    def _apply(self, update: _Update) -> None:
        """Run this optimizer's kernel(s) on one bucket."""
        raise NotImplementedError

    # ---- queries -------------------------------------------------------------------

    def get_lr_parameter(self, param: Any) -> Any:
        """The learning-rate Parameter (or schedule Cell) used for ``param``.

        Args:
            param: A Parameter of this optimizer, or a list of them.

        Returns:
            One item, or a list for a list.

        Raises:
            TypeError: If ``param`` is not a Parameter or a list of Parameters.
            ValueError: If a Parameter is not updated by this optimizer.
        """
        if isinstance(param, Parameter):
            params = [param]
        elif isinstance(param, list):
            params = param
        else:
            raise TypeError(
                f"For '{self.cls_name}.get_lr_parameter', the 'param' should be a "
                f"Parameter or a list of Parameters, but got {type(param).__name__}."
            )
        positions = {id(p): i for i, p in enumerate(self.parameters)}
        out = []
        for item in params:
            if not isinstance(item, Parameter):
                raise TypeError(
                    f"For '{self.cls_name}.get_lr_parameter', every item should be a "
                    f"Parameter, but got {type(item).__name__}."
                )
            if id(item) not in positions:
                raise ValueError(
                    f"For '{self.cls_name}.get_lr_parameter', the Parameter "
                    f"'{item.name}' is not updated by this optimizer."
                )
            out.append(self._lr_sources[self._lr_of[positions[id(item)]]].lr_object)
        return out if isinstance(param, list) else out[0]

    @property
    def _parameters(self) -> ParameterTuple:
        return self.parameters
