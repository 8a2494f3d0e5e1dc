"""``FTRL``: follow-the-regularized-leader, proximal form (MindSpore ``nn.FTRL``).

The update itself is `_kernels.ftrl`, a function of plain torch tensors, so a
parameter server can run it without this class.
"""

from __future__ import annotations

from typing import Any

from spore.nn.optim import _kernels
from spore.nn.optim._checks import check_bool, check_float, float32
from spore.nn.optim.optimizer import Optimizer, _Update

__all__ = ["FTRL"]


class FTRL(Optimizer):
    """FTRL-proximal, as MindSpore documents it.

    Each step: coupled decay ``g += wd*w`` (every parameter when ungrouped: FTRL
    ignores the 'beta'/'gamma' name filter; in groups, the groups with weight
    decay > 0), ``g /= loss_scale``, then with ``p = -lr_power``::

        accum_new = accum + g*g
        linear += g - (accum_new**p - accum**p) / lr * w
        w = (sign(linear)*l1 - linear) / (accum_new**p / lr + 2*l2)
            if |linear| > l1 else 0
        accum = accum_new

    MindSpore 2.10's dense CPU kernel uses ``+l1`` in place of
    ``sign(linear)*l1`` (so it differs where ``linear < -l1``); spore follows the
    documented formula, as MindSpore's sparse kernel does (see the README).
    Hyperparameters are float32. MindSpore 2.9+ marks ``nn.FTRL`` deprecated;
    spore keeps it without a warning.

    State: ``moments.<name>`` (the accumulators, ``initial_accum``) and
    ``linear.<name>`` (zeros).

    Args:
        params: Parameters or group dicts (see `Optimizer`); a group may not set
            ``lr``.
        initial_accum: Starting value of the accumulators, a float >= 0.
            Default: 0.1.
        learning_rate: A fixed float > 0 (no list, Tensor or schedule).
            Default: 0.001.
        lr_power: A float <= 0; 0 keeps the learning rate fixed. Default: -0.5.
        l1, l2: Regularization strengths, floats >= 0. Defaults: 0.0.
        use_locking: Accepted (bool); updates are always in place.
        loss_scale, weight_decay: See `Optimizer`.

    Raises:
        TypeError: If ``initial_accum``, ``learning_rate``, ``lr_power``, ``l1``
            or ``l2`` is not a float, or ``use_locking`` not a bool.
        ValueError: If the learning rate is dynamic or grouped, ``learning_rate``
            <= 0, ``lr_power`` > 0, or ``initial_accum``, ``l1`` or ``l2`` < 0.

    Examples:
        >>> import numpy as np
        >>> from spore import Parameter, Tensor
        >>> w = Parameter(Tensor(np.zeros(2, np.float32)), name="w")
        >>> opt = FTRL([w], learning_rate=0.1)
        >>> opt((Tensor(np.array([1.0, -1.0], np.float32)),))
        (True,)
        >>> [round(float(v), 6) for v in w.asnumpy()]
        [-0.095346, 0.095346]
    """

    _state_prefixes = ("moments", "linear")

    def __init__(
        self,
        params: Any,
        initial_accum: float = 0.1,
        learning_rate: Any = 0.001,
        lr_power: float = -0.5,
        l1: float = 0.0,
        l2: float = 0.0,
        use_locking: bool = False,
        loss_scale: float = 1.0,
        weight_decay: Any = 0.0,
    ) -> None:
        # MindSpore parity: the base checks come first, then FTRL's own, in
        # MindSpore 2.10's order (so the same error wins when several apply).
        super().__init__(learning_rate, params, weight_decay, loss_scale)
        if self.dynamic_lr or self.is_group_lr:
            raise ValueError(
                "For 'FTRL', the learning rate should be one fixed float, but got "
                f"dynamic_lr={self.dynamic_lr} and group lr={self.is_group_lr}; "
                "give 'learning_rate' as a float and no 'lr' in the groups."
            )
        check_float(initial_accum, "initial_accum", "FTRL", 0.0)
        check_float(learning_rate, "learning_rate", "FTRL", 0.0, None, "(]")
        check_float(lr_power, "lr_power", "FTRL", None, 0.0)
        check_float(l1, "l1", "FTRL", 0.0)
        check_float(l2, "l2", "FTRL", 0.0)
        check_bool(use_locking, "use_locking", "FTRL")
        self.moments = self.parameters.clone(prefix="moments", init=initial_accum)
        self.linear = self.parameters.clone(prefix="linear", init="zeros")
        self.l1, self.l2 = float32(l1), float32(l2)
        self.lr, self.lr_power = float32(learning_rate), float32(lr_power)
        self.use_locking = use_locking
        self._initial_accum = float32(initial_accum)
        if not self.is_group:
            # MindSpore parity: ungrouped FTRL decays every parameter.
            self.decay_flags = (True,) * self.param_length
            self.exec_weight_decay = self._decays(0)
            self.__dict__["_buckets"] = self._make_buckets()

    def _ps_config(self) -> dict:
        """FTRL's own settings, for a parameter server (Note [PS step]): a server
        builds ``FTRL([param], learning_rate=..., weight_decay=..., loss_scale=...,
        **config)``."""
        return {
            "initial_accum": self._initial_accum,
            "lr_power": self.lr_power,
            "l1": self.l1,
            "l2": self.l2,
            "use_locking": self.use_locking,
        }

    def _apply(self, update: _Update) -> None:
        params, grads, (accums, linears), lr, wd, _ = update  # no fused FTRL kernel
        _kernels.ftrl(
            params,
            _kernels.with_decay(grads, params, wd),
            accums,
            linears,
            lr=lr,
            l1=self.l1,
            l2=self.l2,
            lr_power=self.lr_power,
        )
