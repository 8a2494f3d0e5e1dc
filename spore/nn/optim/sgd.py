"""``SGD``: stochastic gradient descent, optionally with momentum (``nn.SGD``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from spore.common.parameter import Parameter
from spore.common.tensor import Tensor
from spore.nn.cell import Cell
from spore.nn.optim import _kernels
from spore.nn.optim._checks import check_bool, check_float
from spore.nn.optim.optimizer import Optimizer, Tensors, _Update

__all__ = ["SGD"]


class SGD(Optimizer):
    """Stochastic gradient descent.

    With ``accum = 0`` and ``stat = 1`` at the start, each step does ``g += wd*w``
    (coupled), ``g /= loss_scale``, then:

    - first step (``stat == 1``): ``accum = g``, ``stat = 0``;
    - later: ``accum = momentum*accum + (1-dampening)*g``;
    - ``w -= lr*(g + momentum*accum)`` with ``nesterov``, else ``w -= lr*accum``.

    With ``momentum == 0`` and ``dampening == 0`` this is ``w -= lr*g`` and the
    state is left as it is (MindSpore 2.10). With ``momentum == 0`` and
    ``dampening > 0`` spore runs the formula above (MindSpore 2.10 ignores the
    dampening there; see the README).

    State: ``momentum`` (0-d float32), ``accum.<name>`` (zeros), ``stat.<name>`` (ones).

    Args:
        params: Parameters or group dicts (see `Optimizer`).
        learning_rate: See `Optimizer`. Default: 0.1.
        momentum: A float >= 0. Default: 0.0.
        dampening: A float >= 0. Default: 0.0.
        weight_decay: A float >= 0 (a Cell is refused). Default: 0.0.
        nesterov: Nesterov momentum; needs ``momentum > 0`` and ``dampening == 0``.
        loss_scale: See `Optimizer`. Default: 1.0.

    Raises:
        TypeError: If ``momentum``/``dampening`` are not floats, ``nesterov`` not a
            bool, or ``weight_decay`` is a Cell.
        ValueError: If ``momentum``/``dampening`` < 0, or ``nesterov`` without
            momentum or with dampening.
    """

    _state_prefixes = ("accum", "stat")

    def __init__(
        self,
        params: Any,
        learning_rate: Any = 0.1,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: Any = 0.0,
        nesterov: bool = False,
        loss_scale: float = 1.0,
    ) -> None:
        check_float(momentum, "momentum", "SGD", 0.0)
        check_float(dampening, "dampening", "SGD", 0.0)
        check_bool(nesterov, "nesterov", "SGD")
        if isinstance(weight_decay, Cell):
            raise TypeError(
                "For 'SGD', the 'weight_decay' should be a float or int, but got a "
                "Cell "
                "(a dynamic weight decay is not supported by SGD)."
            )
        if nesterov and (momentum <= 0.0 or dampening != 0.0):
            raise ValueError(
                "For 'SGD', 'nesterov' needs 'momentum' > 0 and 'dampening' == 0, but "
                "got "
                f"momentum={momentum} and dampening={dampening}."
            )
        super().__init__(learning_rate, params, weight_decay, loss_scale)
        self.dampening = float(np.float32(dampening))
        self.nesterov = nesterov
        self.momentum = Parameter(Tensor(np.float32(momentum)), name="momentum")
        self.accum = self.parameters.clone(prefix="accum", init="zeros")
        self.stat = self.parameters.clone(prefix="stat", init="ones")

    def _apply(self, update: _Update) -> None:
        params, grads, (accums, stats), lr, wd, fused = update
        momentum = float(self.momentum._materialized())
        if momentum == 0.0 and self.dampening == 0.0:
            # MindSpore 2.10: w -= lr*g; accum and stat never change.
            _kernels.sgd(
                params,
                grads,
                accums,
                first_step=False,
                lr=lr,
                momentum=0.0,
                dampening=0.0,
                weight_decay=wd,
                nesterov=False,
                fused=fused,
            )
            return
        # stat is 1 until a parameter's first step (the whole tensor at once).
        first = [bool(s.reshape(-1)[0] != 0) for s in stats]
        for flag in (True, False):
            index = [k for k, f in enumerate(first) if f is flag]
            if not index:
                continue
            if len(index) == len(first):
                part = (params, grads, accums, stats)
            else:
                part = tuple(
                    [lst[k] for k in index] for lst in (params, grads, accums, stats)
                )
            _kernels.sgd(
                part[0],
                part[1],
                part[2],
                first_step=flag,
                lr=lr,
                momentum=momentum,
                dampening=self.dampening,
                weight_decay=wd,
                nesterov=self.nesterov,
                fused=fused,
            )
            if flag:
                _zero(part[3])


def _zero(tensors: Tensors) -> None:
    for tensor in tensors:
        tensor.zero_()
