"""``Conv2d`` with MindSpore's pad modes (``'same'``, ``'valid'``, ``'pad'``)."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from spore.common import dtype as mstype
from spore.common.initializer import HeUniform, Uniform
from spore.common.tensor import Tensor
from spore.nn import _validate
from spore.nn.cell import Cell

__all__ = ["Conv2d"]

_PAD_MODES = ("same", "valid", "pad")


def same_padding(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """(before, after) padding so the output has ``ceil(size / stride)`` items.

    The odd item goes after (bottom/right), as MindSpore's 'same' mode does.
    """
    out = -(-size // stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def _check_padding(padding: Any, pad_mode: str) -> tuple[int, int, int, int]:
    """Conv2d's padding as (top, bottom, left, right)."""
    if _validate.is_int(padding):
        pads = (padding,) * 4
    elif (
        isinstance(padding, tuple)
        and len(padding) == 4
        and all(map(_validate.is_int, padding))
    ):
        pads = padding
    else:
        raise TypeError(
            "For 'Conv2d', the 'padding' should be an int or a tuple of four ints, "
            f"but got {padding!r}."
        )
    if min(pads) < 0:
        raise ValueError(
            "For 'Conv2d', every item of 'padding' should be >= 0, but got "
            f"{padding!r}."
        )
    if pad_mode != "pad" and any(pads):
        raise ValueError(
            "For 'Conv2d', the 'padding' should be 0 when 'pad_mode' is not 'pad', "
            f"but got padding={padding!r} with pad_mode={pad_mode!r}."
        )
    return pads  # type: ignore[return-value]


class Conv2d(Cell):
    """2-D convolution over NCHW input.

    Args:
        in_channels: Input channels.
        out_channels: Output channels.
        kernel_size: An int or (height, width).
        stride: An int or (height, width). Default: ``1``.
        pad_mode: ``'same'`` (output ``ceil(in / stride)``, extra padding at the
            bottom/right), ``'valid'`` (none) or ``'pad'`` (``padding``).
            Default: ``'same'``.
        padding: With ``'pad'``: an int or (top, bottom, left, right). Default: ``0``.
        dilation: An int or (height, width). Default: ``1``.
        group: Groups; must divide both channel counts. Default: ``1``.
        has_bias: Whether to add ``bias``. Default: ``False``.
        weight_init: Initializer of ``weight``, shape ``(out_channels, in_channels //
            group, kh, kw)``. Default: ``None``, i.e. ``HeUniform(math.sqrt(5))``.
        bias_init: Initializer of ``bias``. Default: ``None``, i.e.
            ``Uniform(1 / math.sqrt(fan_in))``.
        data_format: Only ``'NCHW'``.
        dtype: The Parameters' dtype. Default: ``spore.float32``.

    Raises:
        TypeError: If an argument has the wrong type.
        ValueError: If a size is out of range, ``pad_mode`` unknown, ``padding``
            given without ``'pad'``, or ``group`` does not divide the channels.

    Examples:
        >>> from spore import nn
        >>> nn.Conv2d(3, 8, 3).weight.shape
        (8, 3, 3, 3)
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        pad_mode: str = "same",
        padding: int | tuple[int, int, int, int] = 0,
        dilation: int | tuple[int, int] = 1,
        group: int = 1,
        has_bias: bool = False,
        weight_init: Any = None,
        bias_init: Any = None,
        data_format: str = "NCHW",
        dtype: mstype.Type = mstype.float32,
    ) -> None:
        cls = "Conv2d"
        v = _validate
        in_channels = v.check_positive_int(in_channels, "in_channels", cls)
        out_channels = v.check_positive_int(out_channels, "out_channels", cls)
        kernel = v.check_int_pair(kernel_size, "kernel_size", cls)
        strides = v.check_int_pair(stride, "stride", cls)
        dilations = v.check_int_pair(dilation, "dilation", cls)
        pad_mode = v.check_choice(pad_mode, "pad_mode", cls, _PAD_MODES)
        pads = _check_padding(padding, pad_mode)
        group = v.check_positive_int(group, "group", cls)
        if in_channels % group or out_channels % group:
            raise ValueError(
                f"For 'Conv2d', the 'group' should divide 'in_channels' and "
                f"'out_channels', but got group={group}, in_channels={in_channels}, "
                f"out_channels={out_channels}."
            )
        has_bias = v.check_bool(has_bias, "has_bias", cls)
        v.check_choice(data_format, "data_format", cls, ("NCHW",))
        v.check_number_type(dtype, "dtype", cls)
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.dilation = kernel, strides, dilations
        self.pad_mode, self.padding, self.group = pad_mode, padding, group
        self.has_bias, self.data_format = has_bias, data_format
        self._pads = pads
        shape = (out_channels, in_channels // group, *kernel)
        if weight_init is None:
            weight_init = HeUniform(math.sqrt(5))
        self.weight = v.make_parameter(
            weight_init, shape, dtype, "weight", cls, "weight_init"
        )
        self.bias = None
        if has_bias:
            if bias_init is None:
                fan_in = (in_channels // group) * kernel[0] * kernel[1]
                bias_init = Uniform(1 / math.sqrt(fan_in))
            self.bias = v.make_parameter(
                bias_init, (out_channels,), dtype, "bias", cls, "bias_init"
            )

    def construct(self, x: Any) -> Tensor:
        data = _validate.to_torch(x, "x", self.cls_name)
        padding: Any = 0
        if self.pad_mode == "same":
            top, bottom = same_padding(
                data.shape[-2], self.kernel_size[0], self.stride[0], self.dilation[0]
            )
            left, right = same_padding(
                data.shape[-1], self.kernel_size[1], self.stride[1], self.dilation[1]
            )
            pads = (top, bottom, left, right)
        else:
            pads = self._pads
        top, bottom, left, right = pads
        if top == bottom and left == right:
            padding = (top, left)
        else:
            data = F.pad(data, (left, right, top, bottom))
        bias = self.bias.to_torch() if self.bias is not None else None
        out: torch.Tensor = F.conv2d(
            data,
            self.weight.to_torch(),
            bias,
            stride=self.stride,
            padding=padding,
            dilation=self.dilation,
            groups=self.group,
        )
        return _validate.wrap(out)

    def extend_repr(self) -> str:
        return (
            f"input_channels={self.in_channels}, output_channels={self.out_channels}, "
            f"kernel_size={self.kernel_size}, stride={self.stride}, "
            f"pad_mode={self.pad_mode}, padding={self.padding}, "
            f"dilation={self.dilation}, group={self.group}, has_bias={self.has_bias}"
        )
