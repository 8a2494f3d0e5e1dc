"""spore.train.Model: train, fit, eval, predict, and the datasets it accepts."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from train_helpers import (
    TupleIteratorDataset,
    cross_entropy,
    dense_net,
    momentum,
    separable_batches,
)

import spore
from spore import Model, Tensor, nn
from spore.train import Accuracy, Callback, Loss, RunContext


def _model(metrics: Any = None, **kwargs: Any) -> tuple[nn.Dense, Model]:
    net = dense_net()
    return net, Model(net, cross_entropy(), momentum(net), metrics=metrics, **kwargs)


class _Record(Callback):
    """Keeps cb_params fields seen at each epoch's end and each step's outputs."""

    def __init__(self) -> None:
        self.epochs: list[int] = []
        self.steps: list[int] = []
        self.batch_nums: list[Any] = []
        self.eval_results: list[Any] = []

    def on_train_step_end(self, run_context: RunContext) -> None:
        self.steps.append(run_context.original_args().cur_step_num)

    def on_train_epoch_end(self, run_context: RunContext) -> None:
        cb_params = run_context.original_args()
        self.epochs.append(cb_params.cur_epoch_num)
        self.batch_nums.append(cb_params.batch_num)
        self.eval_results.append(cb_params.get("eval_results"))


# ---- construction --------------------------------------------------------------------


def test_model_is_exported_at_top_level() -> None:
    assert spore.Model is Model and "Model" in spore.__all__


def test_train_network_is_train_one_step_over_with_loss() -> None:
    net, model = _model()
    train_net = model.train_network
    assert isinstance(train_net, nn.TrainOneStepCell)
    assert isinstance(train_net.network, nn.WithLossCell)
    assert train_net.network.backbone_network is net


def test_without_optimizer_the_train_network_is_with_loss() -> None:
    model = Model(dense_net(), cross_entropy())
    assert type(model.train_network) is nn.WithLossCell


def test_without_loss_the_optimizer_wraps_the_network() -> None:
    net = dense_net()
    loss_net = nn.WithLossCell(net, cross_entropy())
    model = Model(loss_net, optimizer=momentum(net))
    assert model.train_network.network is loss_net


def test_network_must_be_a_cell() -> None:
    with pytest.raises(TypeError, match=r"For 'Model', the 'network' should be a Cell"):
        Model(lambda x: x)


def test_metrics_need_loss_or_eval_network() -> None:
    with pytest.raises(ValueError, match=r"'metrics' need a 'loss_fn'"):
        Model(dense_net(), metrics={"accuracy"})


def test_unknown_metric_name_is_a_key_error() -> None:
    with pytest.raises(KeyError, match=r"the metric 'top9' is unknown"):
        _model(metrics={"top9"})


def test_eval_indexes_must_be_three_ints() -> None:
    net = dense_net()
    with pytest.raises(
        ValueError, match=r"the 'eval_indexes' should be None or a list"
    ):
        Model(net, eval_network=net, metrics={"accuracy"}, eval_indexes=[0, 1])


def test_amp_level_other_than_o0_is_not_implemented() -> None:
    with pytest.raises(NotImplementedError, match=r"the 'amp_level' 'O2' is not"):
        _model(amp_level="O2")


def test_unknown_amp_level_is_a_value_error() -> None:
    with pytest.raises(ValueError, match=r"the 'amp_level' should be one of"):
        _model(amp_level="O7")


# ---- train ---------------------------------------------------------------------------


def test_train_lowers_the_loss() -> None:
    data = separable_batches()
    _, model = _model(metrics={"loss"})
    before = model.eval(data)["loss"]
    model.train(5, data)
    assert model.eval(data)["loss"] < 0.5 * before


@pytest.mark.parametrize("kind", ["numpy", "spore", "torch"])
def test_train_accepts_batches_of(kind: str) -> None:
    convert = {
        "numpy": lambda a: a,
        "spore": Tensor,
        "torch": torch.from_numpy,
    }[kind]
    data = [(convert(x), convert(y)) for x, y in separable_batches()]
    net, model = _model()
    start = net.weight.asnumpy().copy()
    model.train(1, data)
    assert not np.array_equal(net.weight.asnumpy(), start)


def test_train_reads_create_tuple_iterator_once_per_epoch() -> None:
    dataset = TupleIteratorDataset(separable_batches(n_batches=3))
    record = _Record()
    _model()[1].train(2, dataset, callbacks=record)
    assert dataset.iterators_made == 2 and record.batch_nums == [3, 3]


def test_train_accepts_read_only_numpy_batches() -> None:
    data = separable_batches(n_batches=1)
    for x, y in data:
        x.flags.writeable = False
        y.flags.writeable = False
    record = _Record()
    _model()[1].train(1, data, callbacks=record)
    assert record.steps == [1]


def test_train_refuses_a_non_iterable_dataset() -> None:
    with pytest.raises(TypeError, match=r"For 'Model.train', the 'train_dataset'"):
        _model()[1].train(1, 42)


def test_train_refuses_a_one_shot_iterator_for_several_epochs() -> None:
    batches = iter(separable_batches())
    with pytest.raises(TypeError, match=r"the 'train_dataset' is a one-shot iterator"):
        _model()[1].train(2, batches)


def test_train_runs_a_generator_for_one_epoch() -> None:
    record = _Record()
    _model()[1].train(1, (b for b in separable_batches(3)), callbacks=record)
    assert record.steps == [1, 2, 3] and record.batch_nums == [3]


def test_batch_column_of_unknown_type_is_refused() -> None:
    with pytest.raises(TypeError, match=r"every column of a batch should be"):
        _model()[1].train(1, [("abc", np.zeros(2, np.int32))])


def test_initial_epoch_skips_epochs_and_counts_steps_from_there() -> None:
    record = _Record()
    _model()[1].train(3, separable_batches(2), callbacks=record, initial_epoch=1)
    assert record.epochs == [2, 3] and record.steps == [3, 4, 5, 6]


def test_initial_epoch_must_be_below_epoch() -> None:
    with pytest.raises(ValueError, match=r"the 'initial_epoch' should be < 'epoch'"):
        _model()[1].train(2, separable_batches(), initial_epoch=2)


def test_epoch_must_be_positive() -> None:
    with pytest.raises(
        ValueError, match=r"For 'Model.train', the 'epoch' should be >= 1"
    ):
        _model()[1].train(0, separable_batches())


def test_epoch_must_be_an_int() -> None:
    with pytest.raises(
        TypeError, match=r"For 'Model.train', the 'epoch' should be int"
    ):
        _model()[1].train(2.0, separable_batches())


def test_sink_size_must_be_minus_one_or_positive() -> None:
    with pytest.raises(ValueError, match=r"the 'sink_size' should be >= 1"):
        _model()[1].train(1, separable_batches(), sink_size=0)


def test_dataset_sink_mode_warns_and_trains_step_by_step() -> None:
    record = _Record()
    with pytest.warns(UserWarning, match=r"'dataset_sink_mode=True' has no device"):
        _model()[1].train(
            1, separable_batches(2), callbacks=record, dataset_sink_mode=True
        )
    assert record.steps == [1, 2]


def test_train_sets_the_network_to_training_mode() -> None:
    net, model = _model()
    model.train(1, separable_batches(1))
    assert net.training


def test_non_callback_in_callbacks_is_refused() -> None:
    with pytest.raises(TypeError, match=r"item 1 is a str"):
        _model()[1].train(1, separable_batches(), callbacks=[_Record(), "print"])


# ---- fit -----------------------------------------------------------------------------


def test_fit_puts_eval_results_in_cb_params_each_epoch() -> None:
    record = _Record()
    data = separable_batches()
    _model(metrics={"accuracy"})[1].fit(2, data, valid_dataset=data, callbacks=record)
    assert [sorted(r) for r in record.eval_results] == [["accuracy"], ["accuracy"]]


def test_fit_valid_frequency_chooses_the_epochs() -> None:
    record = _Record()
    data = separable_batches(1)
    _model(metrics={"accuracy"})[1].fit(
        4, data, valid_dataset=data, valid_frequency=2, callbacks=record
    )
    assert [r is not None for r in record.eval_results] == [False, True, False, True]


def test_fit_with_valid_dataset_needs_metrics() -> None:
    data = separable_batches(1)
    with pytest.raises(ValueError, match=r"a 'valid_dataset' needs 'metrics'"):
        _model()[1].fit(1, data, valid_dataset=data)


def test_fit_reaches_full_accuracy_on_separable_data() -> None:
    data = separable_batches()
    _, model = _model(metrics={"accuracy"})
    model.fit(10, data, valid_dataset=data)
    assert model.eval(data)["accuracy"] == 1.0


# ---- eval and predict ----------------------------------------------------------------


def test_eval_returns_each_metric_by_name() -> None:
    data = separable_batches(2)
    _, model = _model(metrics={"accuracy", "loss"})
    assert sorted(model.eval(data)) == ["accuracy", "loss"]


def test_eval_values_match_a_direct_computation() -> None:
    data = separable_batches(2)
    net, model = _model(metrics={"accuracy": Accuracy(), "loss": Loss()})
    correct, losses = [], []
    for x, y in data:
        logits = net(Tensor(x))
        correct.append(logits.asnumpy().argmax(1) == y)
        losses.append(float(cross_entropy()(logits, Tensor(y)).asnumpy()))
    result = model.eval(data)
    assert result["accuracy"] == pytest.approx(np.concatenate(correct).mean())
    assert result["loss"] == pytest.approx(np.mean(losses), rel=1e-6)


def test_eval_without_metrics_is_refused() -> None:
    with pytest.raises(
        ValueError, match=r"For 'Model.eval', the Model has no 'metrics'"
    ):
        _model()[1].eval(separable_batches())


def test_eval_refuses_a_non_iterable_dataset() -> None:
    with pytest.raises(TypeError, match=r"For 'Model.eval', the 'valid_dataset'"):
        _model(metrics={"accuracy"})[1].eval(3.5)


def test_eval_network_with_eval_indexes() -> None:
    net = dense_net()
    eval_net = nn.WithEvalCell(net, cross_entropy())
    model = Model(
        net, eval_network=eval_net, metrics={"accuracy"}, eval_indexes=[0, 1, 2]
    )
    assert model.eval(separable_batches(1))["accuracy"] >= 0.0


def test_eval_network_without_indexes_gives_all_outputs() -> None:
    net = dense_net()

    class LogitsAndLabel(nn.Cell):
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def construct(self, x: Any, y: Any) -> Any:
            return self.net(x), y

    model = Model(net, eval_network=LogitsAndLabel(), metrics={"accuracy"})
    data = [(np.eye(3, 4, dtype=np.float32), np.array([3, 3, 3], np.int32))]
    assert model.eval(data) == {"accuracy": 0.0}


def test_eval_does_not_build_a_graph() -> None:
    class Probe(Callback):
        def on_eval_step_end(self, run_context: RunContext) -> None:
            self.grad = (
                run_context.original_args().net_outputs[0].to_torch().requires_grad
            )

    probe = Probe()
    _model(metrics={"loss"})[1].eval(separable_batches(1), callbacks=probe)
    assert probe.grad is False


def test_predict_matches_the_network() -> None:
    net, model = _model()
    x = separable_batches(1)[0][0]
    out = model.predict(x)
    np.testing.assert_allclose(out.asnumpy(), net(Tensor(x)).asnumpy())
    assert not out.to_torch().requires_grad
