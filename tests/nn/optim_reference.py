"""A float64 numpy re-implementation of the optimizer formulas, one parameter at a time.

Written from the documented formulas (fixture README), independent of spore's
kernels. Hyperparameters are rounded to float32 first, as MindSpore stores them.
``formula`` uses the fixture's ``reference_formula`` keys: ``kind`` (sgd, momentum,
adam, adamw), ``lr`` (float, per-name dict, or per-step list), ``wd`` (float or
per-name dict), ``momentum``, ``dampening``, ``nesterov``, ``loss_scale``,
``beta1``, ``beta2``, ``eps``, ``amsgrad``.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def f32(value: float) -> float:
    return float(np.float32(value))


def _per_name(value: Any, name: str) -> float:
    return value[name] if isinstance(value, dict) else value


class Reference:
    """Steps a dict of float64 arrays; ``decay[name]``: where weight decay applies."""

    def __init__(
        self,
        formula: dict[str, Any],
        params: dict[str, np.ndarray],
        decay: dict[str, bool],
    ) -> None:
        self.f = formula
        self.params = {k: np.array(v, np.float64) for k, v in params.items()}
        self.decay = decay
        self.step_count = 0
        self.accum = self._zeros()
        self.stat = {k: True for k in self.params}
        self.m = self._zeros()
        self.v = self._zeros()
        self.vhat = self._zeros()
        self.b1p = 1.0
        self.b2p = 1.0

    def _zeros(self) -> dict[str, np.ndarray]:
        return {k: np.zeros_like(v) for k, v in self.params.items()}

    def lr(self, name: str) -> float:
        lr = self.f["lr"]
        if isinstance(lr, list):
            return f32(lr[self.step_count])
        return f32(_per_name(lr, name))

    def wd(self, name: str) -> float:
        if not self.decay[name]:
            return 0.0
        return f32(_per_name(self.f.get("wd", 0.0), name))

    def step(self, grads: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        kind = self.f["kind"]
        if kind == "adam":
            # The beta powers are float32 state in MindSpore; rounding them moves
            # lr_t by ~1e-5 relative after a few steps, so the reference rounds too.
            self.b1p = f32(self.b1p * f32(self.f["beta1"]))
            self.b2p = f32(self.b2p * f32(self.f["beta2"]))
        for name, w in self.params.items():
            g = np.array(grads[name], np.float64)
            lr = self.lr(name)
            if kind == "adamw":
                self._adamw(name, w, g, lr)
                continue
            scale = f32(self.f.get("loss_scale", 1.0))
            g = (g + self.wd(name) * scale * w) * f32(1.0 / scale)
            getattr(self, "_" + kind)(name, w, g, lr)
        self.step_count += 1
        return {k: v.copy() for k, v in self.params.items()}

    def _sgd(self, name: str, w: np.ndarray, g: np.ndarray, lr: float) -> None:
        m, d = f32(self.f.get("momentum", 0.0)), f32(self.f.get("dampening", 0.0))
        if m == 0.0 and d == 0.0:
            w -= lr * g
            return
        if self.stat[name]:
            self.accum[name] = g.copy()
            self.stat[name] = False
        else:
            self.accum[name] = m * self.accum[name] + (1.0 - d) * g
        if self.f.get("nesterov", False):
            w -= lr * (g + m * self.accum[name])
        else:
            w -= lr * self.accum[name]

    def _momentum(self, name: str, w: np.ndarray, g: np.ndarray, lr: float) -> None:
        m = f32(self.f["momentum"])
        self.accum[name] = m * self.accum[name] + g
        if self.f.get("nesterov", False):
            w -= lr * (g + m * self.accum[name])
        else:
            w -= lr * self.accum[name]

    def _adam(self, name: str, w: np.ndarray, g: np.ndarray, lr: float) -> None:
        b1, b2, eps = f32(self.f["beta1"]), f32(self.f["beta2"]), f32(self.f["eps"])
        self.m[name] += (g - self.m[name]) * (1.0 - b1)
        self.v[name] += (g * g - self.v[name]) * (1.0 - b2)
        lr_t = lr * np.sqrt(1.0 - self.b2p) / (1.0 - self.b1p)
        v = self.v[name]
        if self.f.get("amsgrad", False):
            self.vhat[name] = np.maximum(self.vhat[name], v)
            v = self.vhat[name]
        if self.f.get("nesterov", False):
            numerator = b1 * self.m[name] + (1.0 - b1) * g
        else:
            numerator = self.m[name]
        w -= lr_t * numerator / (np.sqrt(v) + eps)

    def _adamw(self, name: str, w: np.ndarray, g: np.ndarray, lr: float) -> None:
        b1, b2, eps = f32(self.f["beta1"]), f32(self.f["beta2"]), f32(self.f["eps"])
        self.m[name] = b1 * self.m[name] + (1.0 - b1) * g
        self.v[name] = b2 * self.v[name] + (1.0 - b2) * g * g
        update = self.m[name] / (np.sqrt(self.v[name]) + eps) + self.wd(name) * w
        w -= lr * update
