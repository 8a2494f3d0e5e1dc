"""Basic layers: ``Dense``, ``Dropout``, ``Flatten``."""

from __future__ import annotations

import math
from typing import Any

import torch.nn.functional as F

from spore.common import dtype as mstype
from spore.common.initializer import HeUniform, Uniform
from spore.common.tensor import Tensor
from spore.nn import _validate
from spore.nn.cell import Cell
from spore.nn.layer.activation import get_activation

__all__ = ["Dense", "Dropout", "Flatten"]


def _activation_cell(activation: Any, cls: str) -> Cell | None:
    if activation is None or isinstance(activation, Cell):
        return activation
    if isinstance(activation, str):
        return get_activation(activation)
    raise TypeError(
        f"For '{cls}', the 'activation' should be str, Cell or None, but got "
        f"{type(activation).__name__}."
    )


class Dense(Cell):
    """Fully connected layer: ``activation(x @ weight.T + bias)``.

    Args:
        in_channels: Size of the last input dimension.
        out_channels: Size of the last output dimension.
        weight_init: Initializer of ``weight`` (shape ``(out_channels,
            in_channels)``). Default: ``None``, i.e. ``HeUniform(math.sqrt(5))``.
        bias_init: Initializer of ``bias`` (shape ``(out_channels,)``). Default:
            ``None``, i.e. ``Uniform(1 / math.sqrt(in_channels))``.
        has_bias: Whether to add ``bias``. Default: ``True``.
        activation: An activation name (``'relu'``...), a Cell or None.
        dtype: The Parameters' dtype. Default: ``spore.float32``.

    Raises:
        TypeError: If a channel count is not an int, ``has_bias`` not a bool,
            ``activation`` not a str/Cell/None.
        ValueError: If a channel count is <= 0, or an init Tensor has the wrong shape.
        KeyError: If ``activation`` names an unknown activation.

    Examples:
        >>> from spore import nn
        >>> [name for name, _ in nn.Dense(3, 4).parameters_and_names()]
        ['weight', 'bias']
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        weight_init: Any = None,
        bias_init: Any = None,
        has_bias: bool = True,
        activation: Any = None,
        dtype: mstype.Type = mstype.float32,
    ) -> None:
        cls = "Dense"
        in_channels = _validate.check_positive_int(in_channels, "in_channels", cls)
        out_channels = _validate.check_positive_int(out_channels, "out_channels", cls)
        has_bias = _validate.check_bool(has_bias, "has_bias", cls)
        _validate.check_number_type(dtype, "dtype", cls)
        act = _activation_cell(activation, cls)
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.has_bias = has_bias
        if weight_init is None:
            # The torch.nn.Linear default, as MindSpore 2.x adopted it (a=sqrt(5)).
            weight_init = HeUniform(math.sqrt(5))
        self.weight = _validate.make_parameter(
            weight_init,
            (out_channels, in_channels),
            dtype,
            "weight",
            cls,
            "weight_init",
        )
        self.bias = None
        if has_bias:
            if bias_init is None:
                bias_init = Uniform(1 / math.sqrt(in_channels))
            self.bias = _validate.make_parameter(
                bias_init, (out_channels,), dtype, "bias", cls, "bias_init"
            )
        self.activation = act
        self.activation_flag = act is not None

    def construct(self, x: Any) -> Tensor:
        data = _validate.to_torch(x, "x", self.cls_name)
        bias = self.bias.to_torch() if self.bias is not None else None
        out = _validate.wrap(F.linear(data, self.weight.to_torch(), bias))
        if self.activation is not None:
            out = self.activation(out)
        return out

    def shard(self, in_strategy: Any, parameter_plan: Any = None) -> Any:
        """Declare the weight layouts from a MindSpore-style strategy; return self.

        See `spore.parallel.shard` for the strategy forms.
        """
        from spore.parallel.shard import shard  # the processes layer, loaded on use

        return shard(self, in_strategy, parameter_plan)

    def extend_repr(self) -> str:
        text = f"input_channels={self.in_channels}, output_channels={self.out_channels}"
        text += f", has_bias={self.has_bias}"
        if self.activation_flag:
            text += f", activation={self.activation}"
        return text


class Dropout(Cell):
    """Zero elements with probability ``p`` in training mode, scaling the rest.

    Identity in evaluation mode (the default until ``set_train()``).

    Args:
        keep_prob: The keep probability, in (0, 1] (MindSpore 1.x style; it wins
            over ``p`` when both are given). Default: ``None``.
        p: The drop probability, in [0, 1). Default: ``None``; 0.5 when both are
            None.
        dtype: Accepted for MindSpore compatibility.

    Raises:
        TypeError: If ``keep_prob`` or ``p`` is not a float.
        ValueError: If it is out of range.
    """

    def __init__(
        self, keep_prob: float | None = None, p: float | None = None, dtype: Any = None
    ) -> None:
        if keep_prob is not None:
            if not isinstance(keep_prob, float):
                raise TypeError(
                    "For 'Dropout', the 'keep_prob' should be float, but got "
                    f"{type(keep_prob).__name__}."
                )
            keep = _validate.check_float_in(
                keep_prob, "keep_prob", "Dropout", 0, 1, "(]"
            )
        elif p is not None:
            if not isinstance(p, float):
                raise TypeError(
                    f"For 'Dropout', the 'p' should be float, but got "
                    f"{type(p).__name__}."
                )
            keep = 1.0 - _validate.check_float_in(p, "p", "Dropout", 0, 1, "[)")
        else:
            keep = 0.5
        super().__init__()
        self.keep_prob = keep
        self.p = 1.0 - keep

    def construct(self, x: Any) -> Any:
        if not self.training or self.keep_prob == 1.0:
            return x
        data = _validate.to_torch(x, "x", self.cls_name)
        return _validate.wrap(F.dropout(data, p=self.p, training=True))

    def extend_repr(self) -> str:
        return f"p={self.p}"


class Flatten(Cell):
    """Flatten dimensions ``start_dim`` to ``end_dim`` into one.

    Args:
        start_dim: The first dimension flattened. Default: ``1``.
        end_dim: The last dimension flattened. Default: ``-1``.

    Raises:
        TypeError: If ``start_dim`` or ``end_dim`` is not an int.
    """

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        for arg, value in (("start_dim", start_dim), ("end_dim", end_dim)):
            if not _validate.is_int(value):
                raise TypeError(
                    f"For 'Flatten', the '{arg}' should be int, but got "
                    f"{type(value).__name__}."
                )
        super().__init__()
        self.start_dim = start_dim
        self.end_dim = end_dim

    def construct(self, x: Any) -> Tensor:
        data = _validate.to_torch(x, "x", self.cls_name)
        if data.ndim == 0:
            return _validate.wrap(data.reshape(1))
        return _validate.wrap(data.flatten(self.start_dim, self.end_dim))
