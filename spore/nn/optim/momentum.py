"""``Momentum``: ``v = m*v + g; w -= lr*v`` (MindSpore ``nn.Momentum``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from spore.common.parameter import Parameter
from spore.common.tensor import Tensor
from spore.nn.optim import _kernels
from spore.nn.optim._checks import check_bool, check_float
from spore.nn.optim.optimizer import Optimizer, _Update

__all__ = ["Momentum"]


class Momentum(Optimizer):
    """Stochastic gradient descent with momentum.

    ``g += wd*w`` (coupled, where ``decay_flags`` is set), ``g /= loss_scale``,
    ``v = momentum*v + g``, then ``w -= lr*v``; with ``use_nesterov``,
    ``w -= lr*(g + momentum*v)`` (the documented r1.3 formula; see the README:
    MindSpore 2.10 on CPU ignores ``use_nesterov``).

    State: ``momentum`` (0-d float32 Parameter) and ``moments.<name>`` (zeros).

    Args:
        params: Parameters or group dicts (see `Optimizer`).
        learning_rate: See `Optimizer`.
        momentum: The momentum (float >= 0; an int is refused, as in MindSpore).
        weight_decay: See `Optimizer`. Default: 0.0.
        loss_scale: See `Optimizer`. Default: 1.0.
        use_nesterov: Use the Nesterov update. Default: ``False``.

    Raises:
        TypeError: If ``momentum`` is not a float or ``use_nesterov`` not a bool.
        ValueError: If ``momentum`` < 0.

    Examples:
        >>> import numpy as np
        >>> from spore import Parameter, Tensor
        >>> w = Parameter(Tensor(np.ones(2, np.float32)), name="w")
        >>> opt = Momentum([w], learning_rate=0.1, momentum=0.9)
        >>> opt((Tensor(np.ones(2, np.float32)),))
        (True,)
        >>> [round(float(v), 6) for v in w.asnumpy()]
        [0.9, 0.9]
    """

    _state_prefixes = ("moments",)

    def __init__(
        self,
        params: Any,
        learning_rate: Any,
        momentum: float,
        weight_decay: Any = 0.0,
        loss_scale: float = 1.0,
        use_nesterov: bool = False,
    ) -> None:
        check_float(momentum, "momentum", "Momentum", 0.0)
        super().__init__(learning_rate, params, weight_decay, loss_scale)
        self.use_nesterov = check_bool(use_nesterov, "use_nesterov", "Momentum")
        self.momentum = Parameter(Tensor(np.float32(momentum)), name="momentum")
        self.moments = self.parameters.clone(prefix="moments", init="zeros")

    def _ps_config(self) -> dict:
        """Momentum's own settings, for a parameter server (Note [PS step])."""
        return {
            "momentum": float(self.momentum._materialized()),
            "use_nesterov": self.use_nesterov,
        }

    def _apply(self, update: _Update) -> None:
        params, grads, (moments,), lr, wd, fused = update
        _kernels.momentum(
            params,
            grads,
            moments,
            lr=lr,
            momentum=float(self.momentum._materialized()),
            weight_decay=wd,
            nesterov=self.use_nesterov,
            fused=fused,
        )
