"""``Model``: training, evaluation and prediction loops around a network.

``Model(net, loss_fn, optimizer)`` trains ``TrainOneStepCell(WithLossCell(net,
loss_fn), optimizer)``; with ``metrics`` it evaluates ``WithEvalCell(net, loss_fn)``
(outputs ``(loss, logits, label)``). Callbacks see the run through a `RunContext`
(see ``callback/_callback.py`` for the fields of ``cb_params``).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import torch

from spore import context as _context
from spore.nn.cell import Cell
from spore.nn.wrap.cell_wrapper import TrainOneStepCell, WithEvalCell, WithLossCell
from spore.train._dataset import (
    as_tensor,
    check_dataset,
    dataset_size,
    epoch_batches,
)
from spore.train.callback._callback import (
    CallbackList,
    RunContext,
    _InternalCallbackParam,
    check_callbacks,
)
from spore.train.metrics import Loss, Metric, get_metrics

__all__ = ["Model"]

_AMP_LEVELS = ("O0", "O1", "O2", "O3", "auto")
_BOOST_LEVELS = ("O0", "O1", "O2")


def _check_int(value: Any, arg: str, what: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(
            f"For '{what}', the '{arg}' should be int, but got {type(value).__name__}."
        )
    if value < minimum:
        raise ValueError(
            f"For '{what}', the '{arg}' should be >= {minimum}, but got {value}."
        )
    return value


def _check_bool(value: Any, arg: str, what: str) -> bool:
    if not isinstance(value, bool):
        raise TypeError(
            f"For '{what}', the '{arg}' should be bool, but got {type(value).__name__}."
        )
    return value


def _check_level(value: Any, arg: str, levels: tuple[str, ...]) -> str:
    if value not in levels:
        raise ValueError(
            f"For 'Model', the '{arg}' should be one of {list(levels)}, but got "
            f"{value!r}."
        )
    if value != "O0":
        raise NotImplementedError(
            f"For 'Model', the '{arg}' {value!r} is not supported yet; spore runs "
            "'O0' (no mixed precision or boost). Pass 'O0'."
        )
    return value


def _sink_warning(what: str) -> None:
    warnings.warn(
        f"For '{what}', 'dataset_sink_mode=True' has no device queue to sink into "
        "in spore; the data is fed step by step (as MindSpore does on CPU).",
        UserWarning,
        stacklevel=3,
    )


class Model:
    """High-level training and evaluation of a network.

    Args:
        network: The network (a Cell). Without ``loss_fn`` it must return the loss
            when trained (or be a complete training cell when ``optimizer`` is
            None too).
        loss_fn: The loss (a Cell or function). Default: ``None``.
        optimizer: The optimizer. Default: ``None`` (the network updates itself).
        metrics: Names (``{'accuracy', 'loss'}``) or ``{name: Metric}`` computed by
            `eval`. Default: ``None``.
        eval_network: The network `eval` runs. Default: ``None``, i.e.
            ``WithEvalCell(network, loss_fn)``.
        eval_indexes: With ``eval_network``: the positions of the loss, the
            prediction and the label in its outputs (3 ints). Default: ``None``
            (every metric gets all outputs).
        amp_level: Mixed precision level; only ``'O0'`` is supported.
        boost_level: Boost level; only ``'O0'`` is supported.

    Raises:
        TypeError: If ``network`` or ``eval_network`` is not a Cell, ``optimizer``
            not a Cell, ``loss_fn`` not callable or ``metrics`` of a wrong type.
        ValueError: If ``metrics`` is given with neither ``loss_fn`` nor
            ``eval_network``, ``eval_indexes`` is not 3 ints, or a level is unknown.
        NotImplementedError: For an ``amp_level``/``boost_level`` other than 'O0'.

    Examples:
        >>> import numpy as np
        >>> from spore import Model, nn
        >>> from spore.nn.optim import Momentum
        >>> net = nn.Dense(4, 3)
        >>> loss = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
        >>> opt = Momentum(net.trainable_params(), 0.1, 0.9)
        >>> model = Model(net, loss, opt, metrics={"accuracy"})
        >>> data = [(np.ones((2, 4), np.float32), np.array([0, 1], np.int32))]
        >>> model.train(2, data)
        >>> sorted(model.eval(data))
        ['accuracy']
    """

    def __init__(
        self,
        network: Cell,
        loss_fn: Callable[..., Any] | None = None,
        optimizer: Cell | None = None,
        metrics: Any = None,
        eval_network: Cell | None = None,
        eval_indexes: list[int] | None = None,
        amp_level: str = "O0",
        boost_level: str = "O0",
        **kwargs: Any,
    ) -> None:
        if not isinstance(network, Cell):
            raise TypeError(
                "For 'Model', the 'network' should be a Cell, but got "
                f"{type(network).__name__}."
            )
        if loss_fn is not None and not callable(loss_fn):
            raise TypeError(
                "For 'Model', the 'loss_fn' should be a Cell, a function or None, but "
                f"got {type(loss_fn).__name__}."
            )
        if optimizer is not None and not isinstance(optimizer, Cell):
            raise TypeError(
                "For 'Model', the 'optimizer' should be an optimizer Cell or None, but "
                f"got {type(optimizer).__name__}."
            )
        if eval_network is not None and not isinstance(eval_network, Cell):
            raise TypeError(
                "For 'Model', the 'eval_network' should be a Cell or None, but got "
                f"{type(eval_network).__name__}."
            )
        if eval_indexes is not None and not (
            isinstance(eval_indexes, list)
            and len(eval_indexes) == 3
            and all(
                isinstance(i, int) and not isinstance(i, bool) for i in eval_indexes
            )
        ):
            raise ValueError(
                "For 'Model', the 'eval_indexes' should be None or a list of 3 ints "
                f"(loss, prediction, label positions), but got {eval_indexes!r}."
            )
        if kwargs:
            raise TypeError(
                f"For 'Model', unexpected keyword arguments {sorted(kwargs)}."
            )
        self._amp_level = _check_level(amp_level, "amp_level", _AMP_LEVELS)
        self._boost_level = _check_level(boost_level, "boost_level", _BOOST_LEVELS)
        self._network = network
        self._loss_fn = loss_fn
        self._optimizer = optimizer
        self._metric_fns: dict[str, Metric] = get_metrics(metrics) or {}
        self._train_network = self._build_train_network()
        self._eval_network, self._eval_indexes = self._build_eval_network(
            eval_network, eval_indexes
        )
        self._predict_network = network

    # ---- networks ------------------------------------------------------------------

    def _build_train_network(self) -> Cell:
        network = self._network
        if self._loss_fn is not None:
            network = WithLossCell(network, self._loss_fn)
        if self._optimizer is not None:
            network = TrainOneStepCell(network, self._optimizer)
        return network

    def _build_eval_network(
        self, eval_network: Cell | None, eval_indexes: list[int] | None
    ) -> tuple[Cell | None, list[int] | None]:
        if eval_network is not None:
            return eval_network, eval_indexes
        if not self._metric_fns:
            return None, None
        if self._loss_fn is None:
            raise ValueError(
                "For 'Model', 'metrics' need a 'loss_fn' (to build the evaluation "
                "network) or an 'eval_network'; got neither."
            )
        return WithEvalCell(self._network, self._loss_fn), [0, 1, 2]

    @property
    def train_network(self) -> Cell:
        """The network one training step calls."""
        return self._train_network

    @property
    def eval_network(self) -> Cell | None:
        """The network `eval` calls (None without metrics or ``eval_network``)."""
        return self._eval_network

    @property
    def predict_network(self) -> Cell:
        """The network `predict` calls."""
        return self._predict_network

    # ---- training --------------------------------------------------------------------

    def train(
        self,
        epoch: int,
        train_dataset: Any,
        callbacks: Any = None,
        dataset_sink_mode: bool = False,
        sink_size: int = -1,
        initial_epoch: int = 0,
    ) -> None:
        """Train for epochs ``initial_epoch + 1`` to ``epoch``.

        Args:
            epoch: The last epoch number (> 0).
            train_dataset: An iterable of ``(data, label)`` batches, re-iterable
                each epoch, or an object with ``create_tuple_iterator()``.
            callbacks: A `Callback` or a list of them. Default: ``None``.
            dataset_sink_mode: Accepted for MindSpore compatibility; spore always
                feeds step by step (a UserWarning says so when True).
            sink_size: Accepted with ``dataset_sink_mode``: -1 or > 0.
            initial_epoch: Epochs already done (0 <= initial_epoch < epoch).

        Raises:
            TypeError: If ``train_dataset`` is not a dataset, or an argument has
                the wrong type.
            ValueError: If ``epoch``, ``sink_size`` or ``initial_epoch`` is out of
                range, or a `LossMonitor` sees a NaN/Inf loss.
        """
        self._run_fit(
            "Model.train",
            epoch,
            train_dataset,
            None,
            1,
            callbacks,
            dataset_sink_mode,
            sink_size,
            initial_epoch,
        )

    def fit(
        self,
        epoch: int,
        train_dataset: Any,
        valid_dataset: Any = None,
        valid_frequency: int | list[int] = 1,
        callbacks: Any = None,
        dataset_sink_mode: bool = False,
        valid_dataset_sink_mode: bool = False,
        sink_size: int = -1,
        initial_epoch: int = 0,
    ) -> None:
        """Train, evaluating on ``valid_dataset`` every ``valid_frequency`` epochs.

        The results are ``cb_params.eval_results`` when the epoch's
        ``on_train_epoch_end`` hooks run. ``valid_frequency`` may also be a list of
        epoch numbers. Other arguments as `train`.

        Raises:
            TypeError, ValueError: As `train`; ValueError also if there is a
                ``valid_dataset`` but no metrics.
        """
        what = "Model.fit"
        if valid_dataset is not None:
            check_dataset(valid_dataset, "valid_dataset", what, epoch)
            if self._eval_network is None:
                raise ValueError(
                    f"For '{what}', a 'valid_dataset' needs 'metrics' in the Model."
                )
            if isinstance(valid_frequency, list):
                for item in valid_frequency:
                    _check_int(item, "valid_frequency", what, 1)
            else:
                _check_int(valid_frequency, "valid_frequency", what, 1)
        _check_bool(valid_dataset_sink_mode, "valid_dataset_sink_mode", what)
        self._run_fit(
            what,
            epoch,
            train_dataset,
            valid_dataset,
            valid_frequency,
            callbacks,
            dataset_sink_mode,
            sink_size,
            initial_epoch,
        )

    def _run_fit(
        self,
        what: str,
        epoch: int,
        train_dataset: Any,
        valid_dataset: Any,
        valid_frequency: Any,
        callbacks: Any,
        dataset_sink_mode: bool,
        sink_size: int,
        initial_epoch: int,
    ) -> None:
        _check_int(epoch, "epoch", what, 1)
        _check_bool(dataset_sink_mode, "dataset_sink_mode", what)
        if sink_size != -1:
            _check_int(sink_size, "sink_size", what, 1)
        _check_int(initial_epoch, "initial_epoch", what, 0)
        if initial_epoch >= epoch:
            raise ValueError(
                f"For '{what}', the 'initial_epoch' should be < 'epoch' ({epoch}), "
                f"but got {initial_epoch}."
            )
        check_dataset(train_dataset, "train_dataset", what, epoch - initial_epoch)
        _context._check_parameter_broadcast(what)  # data parallel (issue 5)
        callback_list = CallbackList(check_callbacks(callbacks, what))
        if dataset_sink_mode:
            _sink_warning(what)

        network = self._train_network
        batch_num = dataset_size(train_dataset)
        cb_params = _InternalCallbackParam(
            train_network=network,
            network=self._network,
            epoch_num=epoch,
            batch_num=batch_num,
            initial_epoch=initial_epoch,
            cur_epoch_num=initial_epoch,
            cur_step_num=initial_epoch * (batch_num or 0),
            net_outputs=None,
            loss_fn=self._loss_fn,
            optimizer=self._optimizer,
            train_dataset=train_dataset,
            dataset_sink_mode=False,
            mode="train",
            parallel_mode=_context.get_auto_parallel_context("parallel_mode"),
            device_number=1,
            list_callback=callback_list,
        )
        run_context = RunContext(cb_params)
        network.set_train()
        with callback_list:
            callback_list.on_train_begin(run_context)
            for epoch_number in range(initial_epoch + 1, epoch + 1):
                cb_params.cur_epoch_num = epoch_number
                cb_params.pop("eval_results", None)
                callback_list.on_train_epoch_begin(run_context)
                steps = self._train_epoch(
                    network, train_dataset, cb_params, run_context
                )
                if cb_params.batch_num is None:
                    cb_params.batch_num = steps  # known once the data was read
                if valid_dataset is not None and _validates(
                    valid_frequency, epoch_number
                ):
                    cb_params.eval_results = self._evaluate(
                        valid_dataset, CallbackList([]), "Model.fit"
                    )
                    network.set_train()
                callback_list.on_train_epoch_end(run_context)
                if run_context.get_stop_requested():
                    break
            callback_list.on_train_end(run_context)

    def _train_epoch(
        self, network: Cell, dataset: Any, cb_params: Any, run_context: RunContext
    ) -> int:
        """One pass over ``dataset``; returns the number of steps run."""
        hooks: Any = cb_params.list_callback
        step_begin, step_end = hooks.on_train_step_begin, hooks.on_train_step_end
        steps = 0
        for batch in epoch_batches(dataset, "Model.train"):
            steps += 1
            cb_params.cur_step_num += 1
            step_begin(run_context)
            cb_params.net_outputs = network(*batch)
            step_end(run_context)
            if run_context.get_stop_requested():
                break
        return steps

    # ---- evaluation and prediction ------------------------------------------------

    def eval(
        self, valid_dataset: Any, callbacks: Any = None, dataset_sink_mode: bool = False
    ) -> dict[str, Any]:
        """Run the evaluation network over ``valid_dataset``; ``{name: value}``.

        Raises:
            ValueError: If the Model has no metrics.
            TypeError: If ``valid_dataset`` is not a dataset or ``callbacks`` are
                not Callbacks.
        """
        what = "Model.eval"
        _check_bool(dataset_sink_mode, "dataset_sink_mode", what)
        check_dataset(valid_dataset, "valid_dataset", what)
        if self._eval_network is None or not self._metric_fns:
            raise ValueError(
                f"For '{what}', the Model has no 'metrics'; pass "
                "metrics={'accuracy'} (and a 'loss_fn' or an 'eval_network') when "
                "creating it."
            )
        callback_list = CallbackList(check_callbacks(callbacks, what))
        if dataset_sink_mode:
            _sink_warning(what)
        with callback_list:
            return self._evaluate(valid_dataset, callback_list, what)

    def _evaluate(self, dataset: Any, callback_list: CallbackList, what: str) -> dict:
        network = self._eval_network
        assert network is not None
        cb_params = _InternalCallbackParam(
            eval_network=network,
            network=self._network,
            valid_dataset=dataset,
            batch_num=dataset_size(dataset),
            epoch_num=1,
            cur_epoch_num=1,
            cur_step_num=0,
            net_outputs=None,
            dataset_sink_mode=False,
            mode="eval",
            list_callback=callback_list,
        )
        run_context = RunContext(cb_params)
        for metric in self._metric_fns.values():
            metric.clear()
        network.set_train(False)
        callback_list.on_eval_begin(run_context)
        callback_list.on_eval_epoch_begin(run_context)
        with torch.no_grad():
            for batch in epoch_batches(dataset, what):
                cb_params.cur_step_num += 1
                callback_list.on_eval_step_begin(run_context)
                outputs = network(*batch)
                cb_params.net_outputs = outputs
                self._update_metrics(outputs)
                callback_list.on_eval_step_end(run_context)
                if run_context.get_stop_requested():
                    break
        callback_list.on_eval_epoch_end(run_context)
        results = {name: metric.eval() for name, metric in self._metric_fns.items()}
        cb_params.metrics = results
        callback_list.on_eval_end(run_context)
        return results

    def _update_metrics(self, outputs: Any) -> None:
        if not isinstance(outputs, tuple):
            outputs = (outputs,)
        indexes = self._eval_indexes
        for metric in self._metric_fns.values():
            if metric.indexes is not None:
                metric.update(*(outputs[i] for i in metric.indexes))
            elif indexes is None:
                metric.update(*outputs)
            elif isinstance(metric, Loss):
                metric.update(outputs[indexes[0]])
            else:
                metric.update(outputs[indexes[1]], outputs[indexes[2]])

    def predict(self, *predict_data: Any, backend: Any = None) -> Any:
        """The prediction network's outputs for ``predict_data`` (no gradients).

        Inputs may be numpy arrays, spore Tensors or torch tensors.
        """
        inputs = tuple(as_tensor(item, "Model.predict") for item in predict_data)
        network = self._predict_network
        network.set_train(False)
        with torch.no_grad():
            return network(*inputs)


def _validates(valid_frequency: int | list[int], epoch_number: int) -> bool:
    if isinstance(valid_frequency, list):
        return epoch_number in valid_frequency
    return epoch_number % valid_frequency == 0
