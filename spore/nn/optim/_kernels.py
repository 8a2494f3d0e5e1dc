"""Update kernels: torch's fused multi-tensor optimizers, ``_foreach`` fallbacks.

Every function updates lists of torch tensors in place, in one call over all of
them. MindSpore's formulas map exactly (in real arithmetic) onto torch's fused CPU
and CUDA kernels; see Note [fused kernels]. Where no fused kernel fits (Adam's
nesterov form, SGD with dampening and no momentum, dtypes or devices the fused
kernels refuse) the same formula runs on ``_ops._foreach_*`` ops.

Note [fused kernels]
- Momentum: ``v = m*v + g; w -= lr*v`` is torch's SGD with momentum and
  dampening 0 (``is_first_step=False``: the buffer starts at zero, so the first
  step gives ``v = g`` as MindSpore does). The documented nesterov form
  ``w -= lr*(g + m*v)`` is torch's nesterov.
- SGD: MindSpore's ``stat`` flag (1 until the first step) is torch's
  ``is_first_step``.
- Adam: MindSpore adds eps to sqrt(v), not to the bias-corrected sqrt(v_hat):
  ``w -= lr*sqrt(1-b2p)/(1-b1p) * m/(sqrt(v)+eps)`` with the beta powers kept as
  float32 state. Passing a step count of 2**40 makes torch's bias corrections
  ``1 - beta**step`` exactly 1 (the power underflows to 0 for every beta in
  (0, 1)), so torch computes ``w -= lr_t * m/(sqrt(v)+eps)`` with our ``lr_t``.
- AdamWeightDecay has no bias correction (same 2**40 trick) and decoupled decay:
  torch's ``w *= 1 - lr*wd`` followed by ``w -= lr*m/(sqrt(v)+eps)`` equals
  MindSpore's ``w -= lr*(m/(sqrt(v)+eps) + wd*w)`` (both use the old ``w``).
"""

from __future__ import annotations

from typing import Any

import torch

Tensors = list[torch.Tensor]
# torch's fused and ``_foreach`` ops are public in practice (torch.optim calls them)
# but left out of torch's ``__all__``; reach them through an untyped alias.
_ops: Any = torch

_FUSED_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
_FUSED_DEVICES = ("cpu", "cuda")
_NO_BIAS_CORRECTION_STEP = float(2**40)
_step_tensors: dict[torch.device, torch.Tensor] = {}


def can_fuse(tensors: Tensors) -> bool:
    """Whether torch's fused kernels accept these tensors (one device and dtype)."""
    first = tensors[0]
    if first.dtype not in _FUSED_DTYPES or first.device.type not in _FUSED_DEVICES:
        return False
    return all(t.is_contiguous() for t in tensors)


def _no_bias_correction_steps(device: torch.device, count: int) -> Tensors:
    step = _step_tensors.get(device)
    if step is None:
        step = torch.tensor(
            _NO_BIAS_CORRECTION_STEP, dtype=torch.float32, device=device
        )
        _step_tensors[device] = step
    return [step] * count


def _with_decay(grads: Tensors, params: Tensors, weight_decay: float) -> Tensors:
    if weight_decay == 0.0:
        return grads
    return _ops._foreach_add(grads, params, alpha=weight_decay)


def momentum(
    params: Tensors,
    grads: Tensors,
    moments: Tensors,
    *,
    lr: float,
    momentum: float,
    weight_decay: float,
    nesterov: bool,
    fused: bool,
) -> None:
    """``g += wd*w; v = m*v + g; w -= lr*v`` (nesterov: ``w -= lr*(g + m*v)``)."""
    if fused and momentum != 0.0:
        _ops._fused_sgd_(
            params,
            grads,
            moments,
            weight_decay=weight_decay,
            momentum=momentum,
            lr=lr,
            dampening=0.0,
            nesterov=nesterov,
            maximize=False,
            is_first_step=False,
        )
        return
    # With momentum 0 torch's kernel would leave the buffer alone; MindSpore
    # stores v = g.
    grads = _with_decay(grads, params, weight_decay)
    _ops._foreach_mul_(moments, momentum)
    _ops._foreach_add_(moments, grads)
    if nesterov:
        _ops._foreach_add_(params, grads, alpha=-lr)
        _ops._foreach_add_(params, moments, alpha=-lr * momentum)
    else:
        _ops._foreach_add_(params, moments, alpha=-lr)


def sgd(
    params: Tensors,
    grads: Tensors,
    accums: Tensors,
    *,
    first_step: bool,
    lr: float,
    momentum: float,
    dampening: float,
    weight_decay: float,
    nesterov: bool,
    fused: bool,
) -> None:
    """MindSpore's SGD; ``first_step`` is its ``stat == 1`` (then ``accum = g``).

    With momentum 0 and dampening 0 the accumulator is not used (``w -= lr*g``).
    With momentum 0 and dampening > 0 the documented formula runs: the first step
    stores ``accum = g``, later ones ``accum = (1-dampening)*g``.
    """
    plain = momentum == 0.0 and dampening == 0.0
    if fused and (momentum != 0.0 or plain):
        _ops._fused_sgd_(
            params,
            grads,
            accums if not plain else [],
            weight_decay=weight_decay,
            momentum=momentum,
            lr=lr,
            dampening=dampening,
            nesterov=nesterov,
            maximize=False,
            is_first_step=first_step,
        )
        return
    grads = _with_decay(grads, params, weight_decay)
    if plain:
        _ops._foreach_add_(params, grads, alpha=-lr)
        return
    if first_step:
        _ops._foreach_copy_(accums, grads)
    else:
        _ops._foreach_mul_(accums, momentum)
        _ops._foreach_add_(accums, grads, alpha=1.0 - dampening)
    if nesterov:
        _ops._foreach_add_(params, grads, alpha=-lr)
        _ops._foreach_add_(params, accums, alpha=-lr * momentum)
    else:
        _ops._foreach_add_(params, accums, alpha=-lr)


def adam(
    params: Tensors,
    grads: Tensors,
    moment1: Tensors,
    moment2: Tensors,
    vhat: Tensors | None,
    *,
    lr_t: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    nesterov: bool,
    fused: bool,
) -> None:
    """MindSpore's Adam with ``lr_t = lr*sqrt(1-b2p)/(1-b1p)`` already applied.

    ``m += (g-m)(1-b1); v += (g*g-v)(1-b2)``; amsgrad: ``vhat = max(vhat, v)``;
    ``w -= lr_t*m/(sqrt(v)+eps)``; nesterov:
    ``w -= lr_t*(b1*m+(1-b1)*g)/(sqrt(v)+eps)``.
    """
    if fused and not nesterov:
        _ops._fused_adam_(
            params,
            grads,
            moment1,
            moment2,
            vhat if vhat is not None else [],
            _no_bias_correction_steps(params[0].device, len(params)),
            lr=lr_t,
            beta1=beta1,
            beta2=beta2,
            weight_decay=weight_decay,
            eps=eps,
            amsgrad=vhat is not None,
            maximize=False,
        )
        return
    grads = _with_decay(grads, params, weight_decay)
    _ops._foreach_lerp_(moment1, grads, 1.0 - beta1)
    _ops._foreach_mul_(moment2, beta2)
    _ops._foreach_addcmul_(moment2, grads, grads, value=1.0 - beta2)
    if vhat is not None:
        _ops._foreach_maximum_(vhat, moment2)
    denom = _ops._foreach_sqrt(vhat if vhat is not None else moment2)
    _ops._foreach_add_(denom, eps)
    if nesterov:
        numerator = _ops._foreach_mul(moment1, beta1)
        _ops._foreach_add_(numerator, grads, alpha=1.0 - beta1)
    else:
        numerator = moment1
    _ops._foreach_addcdiv_(params, numerator, denom, value=-lr_t)


def adam_weight_decay(
    params: Tensors,
    grads: Tensors,
    moment1: Tensors,
    moment2: Tensors,
    *,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    fused: bool,
) -> None:
    """``m = b1*m+(1-b1)*g; v = b2*v+(1-b2)*g*g; w -= lr*(m/(sqrt(v)+eps) + wd*w)``."""
    if fused:
        _ops._fused_adamw_(
            params,
            grads,
            moment1,
            moment2,
            [],
            _no_bias_correction_steps(params[0].device, len(params)),
            lr=lr,
            beta1=beta1,
            beta2=beta2,
            weight_decay=weight_decay,
            eps=eps,
            amsgrad=False,
            maximize=False,
        )
        return
    _ops._foreach_mul_(moment1, beta1)
    _ops._foreach_add_(moment1, grads, alpha=1.0 - beta1)
    _ops._foreach_mul_(moment2, beta2)
    _ops._foreach_addcmul_(moment2, grads, grads, value=1.0 - beta2)
    denom = _ops._foreach_sqrt(moment2)
    _ops._foreach_add_(denom, eps)
    if weight_decay != 0.0:
        _ops._foreach_mul_(params, 1.0 - lr * weight_decay)
    _ops._foreach_addcdiv_(params, moment1, denom, value=-lr)


def ftrl(
    params: Tensors,
    grads: Tensors,
    accums: Tensors,
    linears: Tensors,
    *,
    lr: float,
    l1: float,
    l2: float,
    lr_power: float,
) -> None:
    """MindSpore's FTRL-proximal update (``ApplyFtrl``), in place, on plain tensors.

    Element by element, with ``p = -lr_power`` (square roots when ``p == 0.5``)::

        accum_new = accum + g*g
        linear += g - (accum_new**p - accum**p) / lr * w
        w = (sign(linear)*l1 - linear) / (accum_new**p / lr + 2*l2)
            if |linear| > l1 else 0
        accum = accum_new

    Needs nothing but torch tensors and floats, so a parameter server can run
    the same update on the slices it holds. ``grads`` are left unchanged.
    """
    if not params:
        return
    power = -lr_power
    if power == 0.5:  # as MindSpore's sparse kernel: sqrt is correctly rounded
        old_power = _ops._foreach_sqrt(accums)
        _ops._foreach_addcmul_(accums, grads, grads)
        new_power = _ops._foreach_sqrt(accums)
    else:
        old_power = _ops._foreach_pow(accums, power)
        _ops._foreach_addcmul_(accums, grads, grads)
        new_power = _ops._foreach_pow(accums, power)
    # linear += g - sigma*w, with sigma = (new - old)/lr, built in old_power's
    # buffer as g + (old - new)/lr*w (negation is exact, so the sum is the same).
    _ops._foreach_sub_(old_power, new_power)
    _ops._foreach_div_(old_power, lr)
    _ops._foreach_mul_(old_power, params)
    _ops._foreach_add_(old_power, grads)
    _ops._foreach_add_(linears, old_power)
    quadratic = new_power
    _ops._foreach_div_(quadratic, lr)
    _ops._foreach_add_(quadratic, 2.0 * l2)
    # clamp(linear, -l1, l1) is sign(linear)*l1 exactly where |linear| > l1.
    numerator = _ops._foreach_clamp_min(linears, -l1)
    _ops._foreach_clamp_max_(numerator, l1)
    _ops._foreach_sub_(numerator, linears)
    _ops._foreach_div_(numerator, quadratic)
    for param, linear, value in zip(params, linears, numerator, strict=True):
        # where(), not the quotient alone: 0/0 (accum and l2 both 0) must give 0.
        param.copy_(torch.where(linear.abs() > l1, value, 0.0))


def scaled(grads: Tensors, factor: float) -> Tensors:
    """New tensors ``g * factor`` (the caller's gradients are left alone)."""
    return _ops._foreach_mul(grads, factor)


def with_decay(grads: Tensors, params: Tensors, weight_decay: float) -> Tensors:
    """New tensors ``g + weight_decay * w`` (``grads`` itself when the decay is 0)."""
    return _with_decay(grads, params, weight_decay)


def centralize(grads: Tensors) -> Tensors:
    """Gradient centralization: subtract the mean over every axis but the first."""
    out = []
    for grad in grads:
        axes = tuple(range(1, grad.ndim))
        out.append(grad - grad.mean(dim=axes, keepdim=True))
    return out
