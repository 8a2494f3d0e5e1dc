"""Callbacks (spore/train/callback/): hooks, RunContext, LossMonitor, ProgressBar."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest
from train_helpers import cross_entropy, dense_net, momentum, separable_batches

from spore import Model, Tensor, nn
from spore.train import Callback, LossMonitor, ProgressBar, RunContext
from spore.train.callback._callback import _InternalCallbackParam


def _model(metrics: Any = None) -> Model:
    net = dense_net()
    return Model(net, cross_entropy(), momentum(net), metrics=metrics)


_HOOKS = [
    f"on_{mode}_{event}"
    for mode in ("train", "eval")
    for event in ("begin", "epoch_begin", "step_begin", "step_end", "epoch_end", "end")
]


def _logging_hook(name: str) -> Any:
    def hook(self: _Log, run_context: RunContext) -> None:
        self.calls.append(name)

    return hook


class _Log(Callback):
    """Records every hook called, by its new name."""

    def __init__(self) -> None:
        self.calls: list[str] = []


for _name in _HOOKS:
    setattr(_Log, _name, _logging_hook(_name))


class _OldStyle(Callback):
    def __init__(self) -> None:
        self.calls: list[str] = []

    def begin(self, run_context: RunContext) -> None:
        self.calls.append("begin")

    def step_end(self, run_context: RunContext) -> None:
        self.calls.append("step_end")

    def end(self, run_context: RunContext) -> None:
        self.calls.append("end")


class _ConstantLoss(nn.Cell):
    """A 'training network' that returns a fixed loss and trains nothing."""

    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value

    def construct(self, x: Any, y: Any) -> Tensor:
        return Tensor(np.float32(self.value))


# ---- hooks ---------------------------------------------------------------------------


def test_train_calls_hooks_in_order() -> None:
    log = _Log()
    _model().train(2, separable_batches(n_batches=1), callbacks=log)
    epoch = ["on_train_epoch_begin", "on_train_step_begin", "on_train_step_end",
             "on_train_epoch_end"]  # fmt: skip
    assert log.calls == ["on_train_begin", *epoch, *epoch, "on_train_end"]


def test_eval_calls_eval_hooks_in_order() -> None:
    log = _Log()
    _model(metrics={"accuracy"}).eval(separable_batches(n_batches=1), callbacks=log)
    assert log.calls == [
        "on_eval_begin",
        "on_eval_epoch_begin",
        "on_eval_step_begin",
        "on_eval_step_end",
        "on_eval_epoch_end",
        "on_eval_end",
    ]


def test_old_hook_names_are_called_by_the_new_ones() -> None:
    old = _OldStyle()
    _model().train(1, separable_batches(n_batches=2), callbacks=[old])
    assert old.calls == ["begin", "step_end", "step_end", "end"]


def test_request_stop_ends_training_after_the_step() -> None:
    class StopAtThree(Callback):
        def on_train_step_end(self, run_context: RunContext) -> None:
            if run_context.original_args().cur_step_num == 3:
                run_context.request_stop()

    log = _Log()
    _model().train(5, separable_batches(n_batches=2), callbacks=[StopAtThree(), log])
    assert log.calls.count("on_train_step_end") == 3


def test_cb_params_describe_the_run() -> None:
    seen: dict[str, Any] = {}

    class Peek(Callback):
        def on_train_end(self, run_context: RunContext) -> None:
            seen.update(run_context.original_args())

    model = _model()
    model.train(2, separable_batches(n_batches=3), callbacks=Peek())
    assert (seen["epoch_num"], seen["batch_num"], seen["cur_epoch_num"]) == (2, 3, 2)
    assert seen["cur_step_num"] == 6 and seen["mode"] == "train"
    assert seen["train_network"] is model.train_network


def test_eval_cb_params_hold_the_metrics_at_the_end() -> None:
    seen: dict[str, Any] = {}

    class Peek(Callback):
        def on_eval_end(self, run_context: RunContext) -> None:
            seen.update(run_context.original_args())

    model = _model(metrics={"accuracy"})
    result = model.eval(separable_batches(n_batches=1), callbacks=Peek())
    assert seen["metrics"] == result and seen["mode"] == "eval"


def test_cb_params_fields_are_attributes() -> None:
    params = _InternalCallbackParam(cur_epoch_num=3)
    params.cur_step_num = 7
    assert (params.cur_epoch_num, params["cur_step_num"]) == (3, 7)


def test_cb_params_unknown_field_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match=r"'cb_params' has no field 'nope'"):
        _ = _InternalCallbackParam().nope


def test_run_context_needs_a_dict() -> None:
    with pytest.raises(TypeError, match=r"For 'RunContext', the 'original_args'"):
        RunContext([1, 2])


def test_run_context_stop_request() -> None:
    context = RunContext({})
    before = context.get_stop_requested()
    context.request_stop()
    assert (before, context.get_stop_requested()) == (False, True)


# ---- LossMonitor ---------------------------------------------------------------------


def test_loss_monitor_prints_mindspore_format(
    capsys: pytest.CaptureFixture[str],
) -> None:
    Model(_ConstantLoss(2.2734382152557373)).train(
        2, separable_batches(n_batches=2), callbacks=LossMonitor()
    )
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "epoch: 1 step: 1, loss is 2.2734382152557373",
        "epoch: 1 step: 2, loss is 2.2734382152557373",
        "epoch: 2 step: 1, loss is 2.2734382152557373",
        "epoch: 2 step: 2, loss is 2.2734382152557373",
    ]


def test_loss_monitor_prints_every_n_steps(capsys: pytest.CaptureFixture[str]) -> None:
    Model(_ConstantLoss(1.0)).train(
        2, separable_batches(n_batches=3), callbacks=LossMonitor(per_print_times=2)
    )
    steps = [line.split(",")[0] for line in capsys.readouterr().out.splitlines()]
    assert steps == ["epoch: 1 step: 2", "epoch: 2 step: 1", "epoch: 2 step: 3"]


def test_loss_monitor_zero_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    Model(_ConstantLoss(1.0)).train(
        1, separable_batches(n_batches=2), callbacks=LossMonitor(0)
    )
    assert capsys.readouterr().out == ""


def test_loss_monitor_counts_steps_of_unsized_datasets(
    capsys: pytest.CaptureFixture[str],
) -> None:
    batches = (b for b in separable_batches(n_batches=2))
    Model(_ConstantLoss(0.5)).train(1, batches, callbacks=LossMonitor())
    assert capsys.readouterr().out.splitlines()[-1] == "epoch: 1 step: 2, loss is 0.5"


def test_loss_monitor_negative_is_a_value_error() -> None:
    with pytest.raises(ValueError, match=r"the 'per_print_times' should be >= 0"):
        LossMonitor(-1)


def test_loss_monitor_non_int_is_a_type_error() -> None:
    with pytest.raises(TypeError, match=r"the 'per_print_times' should be int"):
        LossMonitor(1.5)


def test_loss_monitor_nan_loss_stops_training() -> None:
    with pytest.raises(ValueError, match=r"epoch: 1 step: 1\. Invalid loss nan"):
        Model(_ConstantLoss(float("nan"))).train(
            1, separable_batches(n_batches=1), callbacks=LossMonitor()
        )


# ---- ProgressBar ---------------------------------------------------------------------


def test_progress_bar_shows_steps_and_loss_per_epoch() -> None:
    out = io.StringIO()
    Model(_ConstantLoss(0.25)).train(
        2, separable_batches(n_batches=3), callbacks=ProgressBar(file=out)
    )
    text = out.getvalue()
    assert "epoch 2/2" in text and "3/3" in text and "loss=0.2500" in text


def test_progress_bar_single_bar_counts_the_whole_run() -> None:
    out = io.StringIO()
    Model(_ConstantLoss(1.0)).train(
        2,
        separable_batches(n_batches=3),
        callbacks=ProgressBar(per_epoch=False, file=out),
    )
    assert "6/6" in out.getvalue() and "epoch=2/2" in out.getvalue()


def test_progress_bar_shows_fit_results() -> None:
    out = io.StringIO()
    data = separable_batches(n_batches=1)
    _model(metrics={"accuracy"}).fit(
        1, data, valid_dataset=data, callbacks=ProgressBar(file=out)
    )
    assert "val_accuracy=" in out.getvalue()


def test_progress_bar_disabled_writes_nothing() -> None:
    out = io.StringIO()
    Model(_ConstantLoss(1.0)).train(
        1, separable_batches(n_batches=2), callbacks=ProgressBar(file=out, disable=True)
    )
    assert out.getvalue() == ""


def test_progress_bar_flags_must_be_bools() -> None:
    with pytest.raises(
        TypeError, match=r"For 'ProgressBar', the 'leave' should be bool"
    ):
        ProgressBar(leave=1)


def test_hook_set_on_an_instance_is_called() -> None:
    seen: list[int] = []
    callback = Callback()
    callback.on_train_step_end = lambda ctx: seen.append(  # type: ignore[method-assign]
        ctx.original_args().cur_step_num
    )
    _model().train(1, separable_batches(n_batches=2), callbacks=callback)
    assert seen == [1, 2]
