"""Pooling: ``MaxPool2d`` and ``AvgPool2d`` with MindSpore's pad modes."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from spore.common.tensor import Tensor
from spore.nn import _validate
from spore.nn.cell import Cell
from spore.nn.layer.conv import same_padding

__all__ = ["AvgPool2d", "MaxPool2d"]

_PAD_MODES = ("same", "valid", "pad")


class _Pool2d(Cell):
    def __init__(
        self,
        kernel_size: Any,
        stride: Any,
        pad_mode: str,
        padding: Any,
        ceil_mode: bool,
        data_format: str,
    ) -> None:
        cls = type(self).__name__
        v = _validate
        kernel = v.check_int_pair(kernel_size, "kernel_size", cls)
        strides = v.check_int_pair(stride, "stride", cls)
        if not isinstance(pad_mode, str):
            raise TypeError(
                f"For '{cls}', the 'pad_mode' should be str, but got "
                f"{type(pad_mode).__name__}."
            )
        # MindSpore accepts the pad mode in any case ('VALID', 'same').
        mode = v.check_choice(pad_mode.lower(), "pad_mode", cls, _PAD_MODES)
        pads = v.check_int_pair(padding, "padding", cls, minimum=0)
        if mode != "pad" and any(pads):
            raise ValueError(
                f"For '{cls}', the 'padding' should be 0 when 'pad_mode' is not 'pad', "
                f"but got padding={padding!r} with pad_mode={pad_mode!r}."
            )
        if mode == "pad" and (pads[0] > kernel[0] // 2 or pads[1] > kernel[1] // 2):
            raise ValueError(
                f"For '{cls}', the 'padding' should be at most half of 'kernel_size' "
                f"{kernel}, but got {padding!r}."
            )
        v.check_bool(ceil_mode, "ceil_mode", cls)
        v.check_choice(data_format, "data_format", cls, ("NCHW",))
        super().__init__()
        self.kernel_size, self.stride, self.pad_mode = kernel, strides, mode
        self.padding, self.ceil_mode, self.data_format = pads, ceil_mode, data_format

    def _same_pads(self, data: torch.Tensor) -> tuple[int, int, int, int]:
        top, bottom = same_padding(
            data.shape[-2], self.kernel_size[0], self.stride[0], 1
        )
        left, right = same_padding(
            data.shape[-1], self.kernel_size[1], self.stride[1], 1
        )
        return left, right, top, bottom

    def extend_repr(self) -> str:
        return (
            f"kernel_size={self.kernel_size}, stride={self.stride}, "
            f"pad_mode={self.pad_mode.upper()}"
        )


class MaxPool2d(_Pool2d):
    """2-D max pooling over NCHW (or CHW) input.

    Args:
        kernel_size: An int or (height, width). Default: ``1``.
        stride: An int or (height, width). Default: ``1``.
        pad_mode: ``'valid'``, ``'same'`` (output ``ceil(in / stride)``) or
            ``'pad'`` (any case). Default: ``'valid'``.
        padding: With ``'pad'``: an int or (height, width). Default: ``0``.
        dilation: An int or (height, width). Default: ``1``.
        return_indices: Also return the argmax indices. Default: ``False``.
        ceil_mode: Round the output size up. Default: ``False``.
        data_format: Only ``'NCHW'``.

    Raises:
        TypeError, ValueError: For arguments of the wrong type or range.

    Examples:
        >>> import numpy as np
        >>> from spore import Tensor, nn
        >>> nn.MaxPool2d(2, 2)(Tensor(np.ones((1, 1, 4, 4), np.float32))).shape
        (1, 1, 2, 2)
    """

    def __init__(
        self,
        kernel_size: int | tuple[int, int] = 1,
        stride: int | tuple[int, int] = 1,
        pad_mode: str = "valid",
        padding: int | tuple[int, int] = 0,
        dilation: int | tuple[int, int] = 1,
        return_indices: bool = False,
        ceil_mode: bool = False,
        data_format: str = "NCHW",
    ) -> None:
        super().__init__(kernel_size, stride, pad_mode, padding, ceil_mode, data_format)
        self.dilation = _validate.check_int_pair(dilation, "dilation", "MaxPool2d")
        self.return_indices = _validate.check_bool(
            return_indices, "return_indices", "MaxPool2d"
        )

    def construct(self, x: Any) -> Any:
        data = _validate.to_torch(x, "x", self.cls_name)
        padding: Any = self.padding if self.pad_mode == "pad" else 0
        if self.pad_mode == "same":
            data = F.pad(data, self._same_pads(data), value=float("-inf"))
        out = F.max_pool2d(
            data,
            self.kernel_size,
            self.stride,
            padding=padding,
            dilation=self.dilation,
            ceil_mode=self.ceil_mode,
            return_indices=self.return_indices,
        )
        if self.return_indices:
            values, indices = out
            return _validate.wrap(values), _validate.wrap(indices)
        return _validate.wrap(out)


class AvgPool2d(_Pool2d):
    """2-D average pooling over NCHW (or CHW) input.

    Args:
        kernel_size: An int or (height, width). Default: ``1``.
        stride: An int or (height, width). Default: ``1``.
        pad_mode: ``'valid'``, ``'same'`` (padding not counted in the average) or
            ``'pad'`` (any case). Default: ``'valid'``.
        padding: With ``'pad'``: an int or (height, width). Default: ``0``.
        ceil_mode: Round the output size up. Default: ``False``.
        count_include_pad: With ``'pad'``: count padding in the average.
            Default: ``True``.
        divisor_override: With ``'pad'``: a fixed divisor, or None.
        data_format: Only ``'NCHW'``.

    Raises:
        TypeError, ValueError: For arguments of the wrong type or range.
    """

    def __init__(
        self,
        kernel_size: int | tuple[int, int] = 1,
        stride: int | tuple[int, int] = 1,
        pad_mode: str = "valid",
        padding: int | tuple[int, int] = 0,
        ceil_mode: bool = False,
        count_include_pad: bool = True,
        divisor_override: int | None = None,
        data_format: str = "NCHW",
    ) -> None:
        super().__init__(kernel_size, stride, pad_mode, padding, ceil_mode, data_format)
        self.count_include_pad = _validate.check_bool(
            count_include_pad, "count_include_pad", "AvgPool2d"
        )
        if divisor_override is not None:
            _validate.check_positive_int(
                divisor_override, "divisor_override", "AvgPool2d"
            )
        self.divisor_override = divisor_override

    def construct(self, x: Any) -> Tensor:
        data = _validate.to_torch(x, "x", self.cls_name)
        if self.pad_mode == "same":
            pads = self._same_pads(data)
            total = F.avg_pool2d(F.pad(data, pads), self.kernel_size, self.stride)
            ones = torch.ones_like(data[..., :1, :, :] if data.ndim == 4 else data[:1])
            count = F.avg_pool2d(F.pad(ones, pads), self.kernel_size, self.stride)
            return _validate.wrap(total / count)
        padding: Any = self.padding if self.pad_mode == "pad" else 0
        out = F.avg_pool2d(
            data,
            self.kernel_size,
            self.stride,
            padding=padding,
            ceil_mode=self.ceil_mode,
            count_include_pad=self.count_include_pad,
            divisor_override=self.divisor_override,
        )
        return _validate.wrap(out)
