"""``Callback``, ``RunContext`` and the per-run parameters callbacks read.

MindSpore 2.x has two sets of hook names: the old ``begin``/``epoch_begin``/
``step_begin``/``step_end``/``epoch_end``/``end`` (training only) and the newer
``on_train_*``/``on_eval_*``. The newer training hooks call the old ones by
default, so a callback written either way works; `Model` calls only the newer ones.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["Callback", "RunContext"]


class _InternalCallbackParam(dict):
    """The run's state (MindSpore's ``cb_params``): a dict whose keys are also
    attributes, e.g. ``cb_params.cur_epoch_num``.

    Fields set by `Model`: ``train_network`` / ``eval_network``, ``network``,
    ``epoch_num``, ``batch_num``, ``cur_epoch_num``, ``cur_step_num`` (counted
    over the whole run), ``net_outputs``, ``loss_fn``, ``optimizer``,
    ``train_dataset`` / ``valid_dataset``, ``dataset_sink_mode``, ``mode``
    (``'train'`` or ``'eval'``), ``parallel_mode``, ``device_number``,
    ``initial_epoch``, ``list_callback``; after an evaluation inside `Model.fit`,
    ``eval_results``.
    """

    def __getattr__(self, key: str) -> Any:
        try:
            return self[key]
        except KeyError:
            raise AttributeError(
                f"'cb_params' has no field '{key}'; known fields: {sorted(self)}."
            ) from None

    def __setattr__(self, key: str, value: Any) -> None:
        self[key] = value


class RunContext:
    """What a callback receives: the run's parameters and a way to stop it.

    Args:
        original_args: The run's parameters (a dict; `Model` passes its
            ``cb_params``).

    Raises:
        TypeError: If ``original_args`` is not a dict.

    Examples:
        >>> ctx = RunContext({"cur_epoch_num": 1})
        >>> ctx.request_stop()
        >>> ctx.get_stop_requested()
        True
    """

    def __init__(self, original_args: dict[str, Any]) -> None:
        if not isinstance(original_args, dict):
            raise TypeError(
                "For 'RunContext', the 'original_args' should be a dict, but got "
                f"{type(original_args).__name__}."
            )
        self._original_args = original_args
        self._stop_requested = False

    def original_args(self) -> Any:
        """The run's parameters (``cb_params``)."""
        return self._original_args

    def request_stop(self) -> None:
        """Ask the run to stop after the current step."""
        self._stop_requested = True

    def get_stop_requested(self) -> bool:
        """Whether a callback asked the run to stop."""
        return self._stop_requested


class Callback:
    """Base class of callbacks: override the hooks you need; each gets a `RunContext`.

    Training: ``on_train_begin``, ``on_train_epoch_begin``, ``on_train_step_begin``,
    ``on_train_step_end``, ``on_train_epoch_end``, ``on_train_end`` (by default each
    calls the old name: ``begin``, ``epoch_begin``, ``step_begin``, ``step_end``,
    ``epoch_end``, ``end``). Evaluation: ``on_eval_begin``, ``on_eval_epoch_begin``,
    ``on_eval_step_begin``, ``on_eval_step_end``, ``on_eval_epoch_end``,
    ``on_eval_end``.

    Examples:
        >>> class StopAtStep(Callback):
        ...     def on_train_step_end(self, run_context):
        ...         if run_context.original_args().cur_step_num >= 3:
        ...             run_context.request_stop()
    """

    def __enter__(self) -> Callback:
        return self

    def __exit__(self, *exc: Any) -> None:
        return None

    # ---- the old names (training) ------------------------------------------------

    def begin(self, run_context: RunContext) -> None:
        """Once, before training."""

    def epoch_begin(self, run_context: RunContext) -> None:
        """Before each training epoch."""

    def epoch_end(self, run_context: RunContext) -> None:
        """After each training epoch."""

    def step_begin(self, run_context: RunContext) -> None:
        """Before each training step."""

    def step_end(self, run_context: RunContext) -> None:
        """After each training step."""

    def end(self, run_context: RunContext) -> None:
        """Once, after training."""

    # ---- training ----------------------------------------------------------------

    def on_train_begin(self, run_context: RunContext) -> None:
        self.begin(run_context)

    def on_train_epoch_begin(self, run_context: RunContext) -> None:
        self.epoch_begin(run_context)

    def on_train_epoch_end(self, run_context: RunContext) -> None:
        self.epoch_end(run_context)

    def on_train_step_begin(self, run_context: RunContext) -> None:
        self.step_begin(run_context)

    def on_train_step_end(self, run_context: RunContext) -> None:
        self.step_end(run_context)

    def on_train_end(self, run_context: RunContext) -> None:
        self.end(run_context)

    # ---- evaluation --------------------------------------------------------------

    def on_eval_begin(self, run_context: RunContext) -> None:
        """Once, before evaluation."""

    def on_eval_epoch_begin(self, run_context: RunContext) -> None:
        """Before the pass over the evaluation data."""

    def on_eval_epoch_end(self, run_context: RunContext) -> None:
        """After the pass over the evaluation data."""

    def on_eval_step_begin(self, run_context: RunContext) -> None:
        """Before each evaluation step."""

    def on_eval_step_end(self, run_context: RunContext) -> None:
        """After each evaluation step."""

    def on_eval_end(self, run_context: RunContext) -> None:
        """Once, after evaluation."""


_HOOKS = (
    "on_train_begin",
    "on_train_epoch_begin",
    "on_train_step_begin",
    "on_train_step_end",
    "on_train_epoch_end",
    "on_train_end",
    "on_eval_begin",
    "on_eval_epoch_begin",
    "on_eval_step_begin",
    "on_eval_step_end",
    "on_eval_epoch_end",
    "on_eval_end",
)


def check_callbacks(callbacks: Any, what: str) -> list[Callback]:
    """``callbacks`` (None, one Callback, or a list/tuple of them) as a list.

    Raises:
        TypeError: If it, or an item, is not a Callback.
    """
    if callbacks is None:
        return []
    if isinstance(callbacks, Callback):
        return [callbacks]
    if not isinstance(callbacks, (list, tuple)):
        raise TypeError(
            f"For '{what}', the 'callbacks' should be a Callback, a list of Callbacks "
            f"or None, but got {type(callbacks).__name__}."
        )
    for index, item in enumerate(callbacks):
        if not isinstance(item, Callback):
            raise TypeError(
                f"For '{what}', every item of 'callbacks' should be a Callback, but "
                f"item {index} is a {type(item).__name__}."
            )
    return list(callbacks)


class CallbackList(Callback):
    """Several callbacks called as one, in order (MindSpore's ``_CallbackManager``).

    Only hooks that some callback overrides are dispatched, so an unused hook
    costs nothing per step.
    """

    def __init__(self, callbacks: Iterable[Callback]) -> None:
        self._callbacks = list(callbacks)
        for hook in _HOOKS:
            bound = [
                getattr(cb, hook) for cb in self._callbacks if _overrides(cb, hook)
            ]
            setattr(self, hook, _dispatcher(bound))

    def __enter__(self) -> CallbackList:
        for callback in self._callbacks:
            callback.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        for callback in self._callbacks:
            callback.__exit__(*exc)


_OLD_NAMES = {
    "on_train_begin": "begin",
    "on_train_epoch_begin": "epoch_begin",
    "on_train_epoch_end": "epoch_end",
    "on_train_step_begin": "step_begin",
    "on_train_step_end": "step_end",
    "on_train_end": "end",
}


def _overrides(callback: Callback, hook: str) -> bool:
    """Whether ``hook`` (or the old name it calls) does anything for ``callback``."""
    kind = type(callback)
    own = getattr(callback, "__dict__", {})
    if hook in own or getattr(kind, hook) is not getattr(Callback, hook):
        return True
    old = _OLD_NAMES.get(hook)
    if old is None:
        return False
    return old in own or getattr(kind, old) is not getattr(Callback, old)


def _dispatcher(bound: list[Any]) -> Any:
    if not bound:
        return _nothing
    if len(bound) == 1:
        return bound[0]

    def call_all(run_context: RunContext) -> None:
        for hook in bound:
            hook(run_context)

    return call_all


def _nothing(run_context: RunContext) -> None:
    return None
