"""``LossMonitor``: print the training loss every few steps, in MindSpore's format."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from spore.train.callback._callback import Callback, RunContext

__all__ = ["LossMonitor"]


def loss_value(outputs: Any) -> float | None:
    """The loss in a network's outputs as a float: the first item of a tuple or
    list, averaged if it has several elements; None when there is none."""
    if isinstance(outputs, (tuple, list)):
        if not outputs:
            return None
        outputs = outputs[0]
    if outputs is None:
        return None
    if hasattr(outputs, "asnumpy"):
        array = outputs.asnumpy()
    elif hasattr(outputs, "detach"):
        array = outputs.detach().cpu().numpy()
    else:
        array = np.asarray(outputs)
    if array.size == 1:
        return float(array.reshape(()))
    return float(np.mean(array))


def step_in_epoch(cb_params: Any, epoch_first_step: int) -> int:
    """The step number counted inside the current epoch (1-based)."""
    batch_num = cb_params.get("batch_num")
    if batch_num:
        return (cb_params.cur_step_num - 1) % batch_num + 1
    return cb_params.cur_step_num - epoch_first_step


class LossMonitor(Callback):
    """Print ``epoch: E step: S, loss is L`` every ``per_print_times`` steps.

    ``S`` counts steps inside the epoch. The loss is the network's output (the
    first item when it returns several), averaged over its elements.

    Args:
        per_print_times: Print every this many steps; 0 prints nothing.
            Default: ``1``.

    Raises:
        TypeError: If ``per_print_times`` is not an int.
        ValueError: If ``per_print_times`` is negative; during training, if the
            loss is NaN or infinite.

    Examples:
        >>> from spore.train import LossMonitor
        >>> LossMonitor(per_print_times=10)._per_print_times
        10
    """

    def __init__(self, per_print_times: int = 1) -> None:
        if isinstance(per_print_times, bool) or not isinstance(per_print_times, int):
            raise TypeError(
                "For 'LossMonitor', the 'per_print_times' should be int, but got "
                f"{type(per_print_times).__name__}."
            )
        if per_print_times < 0:
            raise ValueError(
                "For 'LossMonitor', the 'per_print_times' should be >= 0, but got "
                f"{per_print_times}."
            )
        self._per_print_times = per_print_times
        self._last_print_step = 0
        self._epoch_first_step = 0

    def on_train_begin(self, run_context: RunContext) -> None:
        self._last_print_step = run_context.original_args().cur_step_num

    def on_train_epoch_begin(self, run_context: RunContext) -> None:
        self._epoch_first_step = run_context.original_args().cur_step_num

    def on_train_step_end(self, run_context: RunContext) -> None:
        cb_params = run_context.original_args()
        step = step_in_epoch(cb_params, self._epoch_first_step)
        loss = loss_value(cb_params.net_outputs)
        if loss is None:
            return
        if math.isnan(loss) or math.isinf(loss):
            raise ValueError(
                f"epoch: {cb_params.cur_epoch_num} step: {step}. Invalid loss "
                f"{loss}, terminating training."
            )
        if (
            self._per_print_times
            and cb_params.cur_step_num - self._last_print_step >= self._per_print_times
        ):
            self._last_print_step = cb_params.cur_step_num
            epoch = cb_params.cur_epoch_num
            print(f"epoch: {epoch} step: {step}, loss is {loss}", flush=True)
