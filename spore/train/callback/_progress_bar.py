"""``ProgressBar``: a tqdm progress bar over training steps (spore's own callback)."""

from __future__ import annotations

from typing import IO, Any

from spore.train.callback._callback import Callback, RunContext
from spore.train.callback._loss_monitor import loss_value

__all__ = ["ProgressBar"]


class ProgressBar(Callback):
    """Show training progress with tqdm: the latest loss and, after an evaluation
    run by `Model.fit`, its results (as ``val_<name>``).

    Args:
        per_epoch: One bar per epoch (``epoch E/N``); False gives one bar for the
            whole run, with the epoch in its text. Default: ``True``.
        show_loss: Show the latest loss. Default: ``True``.
        leave: Keep finished bars on screen. Default: ``True``.
        file: Where bars are written. Default: ``None`` (tqdm's: stderr).
        disable: Hide the bar; None hides it when ``file`` is not a terminal.
            Default: ``False``.
        mininterval: Least seconds between two redraws. Default: ``0.1``.

    Raises:
        TypeError: If ``per_epoch``, ``show_loss`` or ``leave`` is not a bool.

    Examples:
        >>> from spore.train import ProgressBar
        >>> ProgressBar(per_epoch=False).per_epoch
        False
    """

    def __init__(
        self,
        per_epoch: bool = True,
        show_loss: bool = True,
        leave: bool = True,
        file: IO[str] | None = None,
        disable: bool | None = False,
        mininterval: float = 0.1,
    ) -> None:
        flags = (("per_epoch", per_epoch), ("show_loss", show_loss), ("leave", leave))
        for arg, value in flags:
            if not isinstance(value, bool):
                raise TypeError(
                    f"For 'ProgressBar', the '{arg}' should be bool, but got "
                    f"{type(value).__name__}."
                )
        self.per_epoch = per_epoch
        self.show_loss = show_loss
        self.leave = leave
        self.file = file
        self.disable = disable
        self.mininterval = mininterval
        self._bar: Any = None
        self._results = ""

    def _open(self, total: int | None, desc: str) -> None:
        from tqdm import tqdm  # a core dependency, imported when first used

        self._close()
        self._bar = tqdm(
            total=total,
            desc=desc,
            unit="step",
            leave=self.leave,
            file=self.file,
            disable=self.disable,
            mininterval=self.mininterval,
            dynamic_ncols=True,
        )

    def on_train_begin(self, run_context: RunContext) -> None:
        self._results = ""
        if not self.per_epoch:
            cb_params = run_context.original_args()
            batch_num = cb_params.get("batch_num")
            epochs = cb_params.epoch_num - cb_params.get("initial_epoch", 0)
            self._open(epochs * batch_num if batch_num else None, "train")

    def on_train_epoch_begin(self, run_context: RunContext) -> None:
        if self.per_epoch:
            cb_params = run_context.original_args()
            self._results = ""
            self._open(
                cb_params.get("batch_num") or None,
                f"epoch {cb_params.cur_epoch_num}/{cb_params.epoch_num}",
            )

    def on_train_step_end(self, run_context: RunContext) -> None:
        bar = self._bar
        if bar is None:
            return
        bar.update(1)
        if not bar.disable:
            # refresh=False: tqdm redraws at most every `mininterval` seconds.
            bar.set_postfix_str(self._postfix(run_context), refresh=False)

    def on_train_epoch_end(self, run_context: RunContext) -> None:
        results = run_context.original_args().get("eval_results")
        if results:
            self._results = ", ".join(
                f"val_{name}={_short(value)}" for name, value in results.items()
            )
        if self._bar is not None and not self._bar.disable:
            self._bar.set_postfix_str(self._postfix(run_context), refresh=False)
        if self.per_epoch:
            self._close()

    def on_train_end(self, run_context: RunContext) -> None:
        self._close()

    def _postfix(self, run_context: RunContext) -> str:
        cb_params = run_context.original_args()
        parts = []
        if not self.per_epoch:
            parts.append(f"epoch={cb_params.cur_epoch_num}/{cb_params.epoch_num}")
        if self.show_loss:
            loss = loss_value(cb_params.net_outputs)
            if loss is not None:
                parts.append(f"loss={loss:.4f}")
        if self._results:
            parts.append(self._results)
        return ", ".join(parts)

    def _close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _short(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)
