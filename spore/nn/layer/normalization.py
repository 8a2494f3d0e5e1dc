"""Normalisation layers: ``BatchNorm1d``, ``BatchNorm2d``, ``LayerNorm``."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from spore.common import dtype as mstype
from spore.common.tensor import Tensor
from spore.nn import _validate
from spore.nn.cell import Cell

__all__ = ["BatchNorm1d", "BatchNorm2d", "LayerNorm"]


class _BatchNorm(Cell):
    """Batch normalisation over the channel axis (1) of the input.

    Parameters (MindSpore's order and names): ``moving_mean`` (named ``mean``
    until a parent names it by path), ``moving_variance`` (``variance``), both
    non-trainable; ``gamma`` and ``beta``, trainable when ``affine``.
    """

    _input_dims: tuple[int, ...] = ()

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float = 0.9,
        affine: bool = True,
        gamma_init: Any = "ones",
        beta_init: Any = "zeros",
        moving_mean_init: Any = "zeros",
        moving_var_init: Any = "ones",
        use_batch_statistics: bool | None = None,
        data_format: str = "NCHW",
        dtype: mstype.Type = mstype.float32,
    ) -> None:
        cls = type(self).__name__
        v = _validate
        num_features = v.check_positive_int(num_features, "num_features", cls)
        eps = v.check_float_in(eps, "eps", cls, 0, float("inf"), "(]")
        momentum = v.check_float_in(momentum, "momentum", cls, 0, 1, "[]")
        affine = v.check_bool(affine, "affine", cls)
        if use_batch_statistics is not None and not isinstance(
            use_batch_statistics, bool
        ):
            # MindSpore parity: 2.10 raises ValueError (not TypeError) here.
            raise ValueError(
                f"For '{cls}', the 'use_batch_statistics' should be bool or None, but "
                f"got {type(use_batch_statistics).__name__}."
            )
        v.check_choice(data_format, "data_format", cls, ("NCHW",))
        v.check_number_type(dtype, "dtype", cls)
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.use_batch_statistics = affine, use_batch_statistics
        self.data_format = data_format
        shape = (num_features,)
        make = v.make_parameter
        self.moving_mean = make(
            moving_mean_init, shape, dtype, "mean", cls, "moving_mean_init", False
        )
        self.moving_variance = make(
            moving_var_init, shape, dtype, "variance", cls, "moving_var_init", False
        )
        self.gamma = make(gamma_init, shape, dtype, "gamma", cls, "gamma_init", affine)
        self.beta = make(beta_init, shape, dtype, "beta", cls, "beta_init", affine)

    def _check_input(self, data: torch.Tensor) -> None:
        if data.ndim not in self._input_dims:
            raise ValueError(
                f"For '{self.cls_name}', the input should have "
                f"{' or '.join(map(str, self._input_dims))} dimensions, but got "
                f"shape {tuple(data.shape)}."
            )

    def construct(self, x: Any) -> Tensor:
        data = _validate.to_torch(x, "x", self.cls_name)
        self._check_input(data)
        use_batch = self.use_batch_statistics
        if use_batch is None:
            use_batch = self.training
        out = F.batch_norm(
            data,
            self.moving_mean.to_torch(),
            self.moving_variance.to_torch(),
            self.gamma.to_torch(),
            self.beta.to_torch(),
            training=use_batch,
            # MindSpore: moving = momentum * moving + (1 - momentum) * batch;
            # torch weighs the batch statistic by its momentum.
            momentum=1.0 - self.momentum,
            eps=self.eps,
        )
        return _validate.wrap(out)

    def extend_repr(self) -> str:
        return (
            f"num_features={self.num_features}, eps={self.eps}, "
            f"momentum={self.momentum}, gamma={self.gamma}, beta={self.beta}, "
            f"moving_mean={self.moving_mean}, moving_variance={self.moving_variance}"
        )


class BatchNorm1d(_BatchNorm):
    """Batch normalisation of (N, C) or (N, C, L) input.

    Args:
        num_features: C.
        eps: Added to the variance. Default: ``1e-5``.
        momentum: Weight of the old moving statistics. Default: ``0.9``.
        affine: Whether ``gamma``/``beta`` are trainable. Default: ``True``.
        gamma_init, beta_init, moving_mean_init, moving_var_init: Initializers.
        use_batch_statistics: None (batch statistics in training mode only), True
            or False. Default: ``None``.
        data_format: Only ``'NCHW'``.
        dtype: The Parameters' dtype. Default: ``spore.float32``.

    Raises:
        TypeError, ValueError: For arguments of the wrong type or range.

    Examples:
        >>> from spore import nn
        >>> [k for k, _ in nn.BatchNorm1d(4).parameters_and_names()]
        ['moving_mean', 'moving_variance', 'gamma', 'beta']
    """

    _input_dims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch normalisation of (N, C, H, W) input; arguments as `BatchNorm1d`.

    Examples:
        >>> from spore import nn
        >>> bn = nn.BatchNorm2d(3)
        >>> (bn.moving_mean.requires_grad, bn.gamma.requires_grad)
        (False, True)
    """

    _input_dims = (4,)


class LayerNorm(Cell):
    """Layer normalisation over the axes from ``begin_norm_axis`` on.

    Args:
        normalized_shape: Shape of ``gamma``/``beta``: the input's shape from
            ``begin_params_axis`` on. A tuple or list.
        begin_norm_axis: First axis normalised. Default: ``-1``.
        begin_params_axis: First axis ``gamma``/``beta`` apply to. Default: ``-1``.
        gamma_init, beta_init: Initializers. Default: ``'ones'``, ``'zeros'``.
        epsilon: Added to the variance. Default: ``1e-7``.
        dtype: The Parameters' dtype. Default: ``spore.float32``.

    Raises:
        TypeError: If ``normalized_shape`` is not a tuple/list or an axis not an int.
        ValueError: If ``normalized_shape`` has a non-positive item.

    Examples:
        >>> from spore import nn
        >>> nn.LayerNorm((4,)).gamma.shape
        (4,)
    """

    def __init__(
        self,
        normalized_shape: tuple[int, ...] | list[int],
        begin_norm_axis: int = -1,
        begin_params_axis: int = -1,
        gamma_init: Any = "ones",
        beta_init: Any = "zeros",
        epsilon: float = 1e-7,
        dtype: mstype.Type = mstype.float32,
    ) -> None:
        cls = "LayerNorm"
        v = _validate
        if not isinstance(normalized_shape, (tuple, list)):
            raise TypeError(
                "For 'LayerNorm', the 'normalized_shape' should be tuple or list, but "
                f"got {type(normalized_shape).__name__}."
            )
        shape = tuple(
            v.check_positive_int(d, "normalized_shape", cls) for d in normalized_shape
        )
        for arg, value in (
            ("begin_norm_axis", begin_norm_axis),
            ("begin_params_axis", begin_params_axis),
        ):
            if not v.is_int(value):
                raise TypeError(
                    f"For 'LayerNorm', the '{arg}' should be int, but got "
                    f"{type(value).__name__}."
                )
        epsilon = v.check_float_in(epsilon, "epsilon", cls, 0, float("inf"), "(]")
        v.check_number_type(dtype, "dtype", cls)
        super().__init__()
        self.normalized_shape = shape
        self.begin_norm_axis, self.begin_params_axis = (
            begin_norm_axis,
            begin_params_axis,
        )
        self.epsilon = epsilon
        self.gamma = v.make_parameter(
            gamma_init, shape, dtype, "gamma", cls, "gamma_init"
        )
        self.beta = v.make_parameter(beta_init, shape, dtype, "beta", cls, "beta_init")

    def construct(self, x: Any) -> Tensor:
        data = _validate.to_torch(x, "x", self.cls_name)
        ndim = data.ndim
        norm_axis = self.begin_norm_axis % ndim
        params_axis = self.begin_params_axis % ndim
        if tuple(data.shape[params_axis:]) != self.normalized_shape:
            raise ValueError(
                f"For 'LayerNorm', the input's shape from axis {params_axis} on should "
                f"be {self.normalized_shape}, but got {tuple(data.shape)}."
            )
        gamma, beta = self.gamma.to_torch(), self.beta.to_torch()
        if norm_axis == params_axis:
            out = F.layer_norm(data, self.normalized_shape, gamma, beta, self.epsilon)
        else:
            dims = tuple(range(norm_axis, ndim))
            var, mean = torch.var_mean(data, dim=dims, keepdim=True, correction=0)
            out = (data - mean) * torch.rsqrt(var + self.epsilon) * gamma + beta
        return _validate.wrap(out)

    def extend_repr(self) -> str:
        return (
            f"normalized_shape={self.normalized_shape}, "
            f"begin_norm_axis={self.begin_norm_axis}, "
            f"begin_params_axis={self.begin_params_axis}, "
            f"gamma={self.gamma}, beta={self.beta}"
        )
