"""``Adam`` and ``AdamWeightDecay`` (MindSpore ``nn.Adam``, ``nn.AdamWeightDecay``)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from spore.common.parameter import Parameter
from spore.common.tensor import Tensor
from spore.nn.optim import _kernels
from spore.nn.optim._checks import check_bool, check_float, float32
from spore.nn.optim.optimizer import Optimizer, _Update

__all__ = ["Adam", "AdamWeightDecay"]


def _check_betas_eps(cls: str, beta1: Any, beta2: Any, eps: Any) -> None:
    check_float(beta1, "beta1", cls, 0.0, 1.0, "()")
    check_float(beta2, "beta2", cls, 0.0, 1.0, "()")
    check_float(eps, "eps", cls, 0.0, None, "(]")


class Adam(Optimizer):
    """Adam, as MindSpore 2.10 computes it (eps is added to sqrt(v)).

    Each step: coupled decay ``g += wd*w``, ``g /= loss_scale``,
    ``beta1_power *= beta1; beta2_power *= beta2`` (float32 state, start at 1),
    ``m += (g-m)(1-beta1); v += (g*g-v)(1-beta2)``,
    ``lr_t = lr*sqrt(1-beta2_power)/(1-beta1_power)``, then
    ``w -= lr_t*m/(sqrt(v)+eps)``. With ``use_nesterov``:
    ``w -= lr_t*(beta1*m + (1-beta1)*g)/(sqrt(v)+eps)``. With ``use_amsgrad``:
    ``vhat = max(vhat, v)`` replaces ``v`` in the denominator. Hyperparameters
    are float32 (``1-beta`` is computed from the float32 beta).

    State: ``beta1_power``, ``beta2_power`` (0-d), ``moment1.<name>``,
    ``moment2.<name>`` (and ``vhat.<name>`` with amsgrad).

    Args:
        params: Parameters or group dicts (see `Optimizer`).
        learning_rate: See `Optimizer`. Default: 1e-3.
        beta1, beta2: Floats in (0, 1). Defaults: 0.9, 0.999.
        eps: A float > 0. Default: 1e-8.
        use_locking: Accepted (bool); updates are always in place.
        use_nesterov: Nesterov form. Default: ``False``.
        weight_decay, loss_scale: See `Optimizer`.
        use_amsgrad: AMSGrad. Works on 0-d Parameters too (MindSpore 2.10's CPU
            kernel refuses them; see the README). Default: ``False``.
        kwargs: ``use_lazy`` and ``use_offload`` (bools) are accepted; on dense
            gradients they compute the same update.

    Raises:
        TypeError: If a hyperparameter has the wrong type or an unknown keyword is
            given.
        ValueError: If ``beta1``/``beta2`` are outside (0, 1) or ``eps`` <= 0.
    """

    _state_prefixes = ("moment1", "moment2")

    def __init__(
        self,
        params: Any,
        learning_rate: Any = 1e-3,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        use_locking: bool = False,
        use_nesterov: bool = False,
        weight_decay: Any = 0.0,
        loss_scale: float = 1.0,
        use_amsgrad: bool = False,
        **kwargs: Any,
    ) -> None:
        _check_betas_eps("Adam", beta1, beta2, eps)
        check_bool(use_locking, "use_locking", "Adam")
        check_bool(use_nesterov, "use_nesterov", "Adam")
        check_bool(use_amsgrad, "use_amsgrad", "Adam")
        for key, value in kwargs.items():
            if key not in ("use_lazy", "use_offload"):
                raise TypeError(
                    f"For 'Adam', got an unexpected keyword argument '{key}'."
                )
            check_bool(value, key, "Adam")
        super().__init__(learning_rate, params, weight_decay, loss_scale)
        self.beta1, self.beta2, self.eps = float32(beta1), float32(beta2), float32(eps)
        self.use_locking = use_locking
        self.use_nesterov = use_nesterov
        self.use_amsgrad = use_amsgrad
        self.use_lazy = kwargs.get("use_lazy", False)
        self.use_offload = kwargs.get("use_offload", False)
        self.beta1_power = Parameter(Tensor(np.float32(1.0)), name="beta1_power")
        self.beta2_power = Parameter(Tensor(np.float32(1.0)), name="beta2_power")
        self.moment1 = self.parameters.clone(prefix="moment1", init="zeros")
        self.moment2 = self.parameters.clone(prefix="moment2", init="zeros")
        if use_amsgrad:
            self.vhat = self.parameters.clone(prefix="vhat", init="zeros")
            self._state_prefixes = ("moment1", "moment2", "vhat")
        self.__dict__["_lr_scale"] = 1.0

    def _before_update(self) -> None:
        beta1_power = self.beta1_power._materialized()
        beta2_power = self.beta2_power._materialized()
        # float32 products, as MindSpore keeps them.
        beta1_power.mul_(self.beta1)
        beta2_power.mul_(self.beta2)
        b1p, b2p = float(beta1_power), float(beta2_power)
        self.__dict__["_lr_scale"] = math.sqrt(1.0 - b2p) / (1.0 - b1p)

    def _ps_config(self) -> dict:
        """Adam's own settings, for a parameter server (Note [PS step])."""
        return {
            "beta1": float(self.beta1),
            "beta2": float(self.beta2),
            "eps": float(self.eps),
            "use_locking": self.use_locking,
            "use_nesterov": self.use_nesterov,
            "use_amsgrad": self.use_amsgrad,
            "use_lazy": self.use_lazy,
        }

    def _apply(self, update: _Update) -> None:
        params, grads, states, lr, wd, fused = update
        _kernels.adam(
            params,
            grads,
            states[0],
            states[1],
            states[2] if self.use_amsgrad else None,
            lr_t=lr * self._lr_scale,
            beta1=self.beta1,
            beta2=self.beta2,
            eps=self.eps,
            weight_decay=wd,
            nesterov=self.use_nesterov,
            fused=fused,
        )


class AdamWeightDecay(Optimizer):
    """Adam with decoupled weight decay and no bias correction.

    ``m = beta1*m + (1-beta1)*g; v = beta2*v + (1-beta2)*g*g``, then
    ``w -= lr*(m/(sqrt(v)+eps) + wd*w)``, with ``wd`` only where ``decay_flags``
    is set. spore applies the decay as torch's fused AdamW does,
    ``w *= 1 - lr*wd`` before ``w -= lr*m/(sqrt(v)+eps)``: the same in real
    arithmetic, with the factor rounded to float32.

    State: ``adam_m.<name>``, ``adam_v.<name>`` (zeros).

    Args:
        params: Parameters or group dicts (see `Optimizer`).
        learning_rate: See `Optimizer`. Default: 1e-3.
        beta1, beta2: Floats in (0, 1). Defaults: 0.9, 0.999.
        eps: A float > 0. Default: 1e-6.
        weight_decay: See `Optimizer`. Default: 0.0.

    Raises:
        TypeError: If a hyperparameter has the wrong type.
        ValueError: If ``beta1``/``beta2`` are outside (0, 1) or ``eps`` <= 0.
    """

    _state_prefixes = ("adam_m", "adam_v")
    _coupled_decay = False

    def __init__(
        self,
        params: Any,
        learning_rate: Any = 1e-3,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-6,
        weight_decay: Any = 0.0,
    ) -> None:
        _check_betas_eps("AdamWeightDecay", beta1, beta2, eps)
        super().__init__(learning_rate, params, weight_decay)
        self.beta1, self.beta2, self.eps = float32(beta1), float32(beta2), float32(eps)
        self.adam_m = self.parameters.clone(prefix="adam_m", init="zeros")
        self.adam_v = self.parameters.clone(prefix="adam_v", init="zeros")

    def _apply(self, update: _Update) -> None:
        params, grads, (moment1, moment2), lr, wd, fused = update
        _kernels.adam_weight_decay(
            params,
            grads,
            moment1,
            moment2,
            lr=lr,
            beta1=self.beta1,
            beta2=self.beta2,
            eps=self.eps,
            weight_decay=wd,
            fused=fused,
        )
