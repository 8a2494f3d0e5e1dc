"""Cells that wrap a network for training: ``WithLossCell``, ``WithEvalCell`` and
``TrainOneStepCell`` (MindSpore 2.10 ``nn.wrap.cell_wrapper``).

All three use ``auto_prefix=False``, so the wrapped network's Parameters keep their
names: a checkpoint of ``TrainOneStepCell(WithLossCell(net, loss), opt)`` names the
weights ``conv1.weight`` and the optimizer state ``global_step``,
``moments.conv1.weight`` (no ``network.``/``optimizer.`` prefixes), while the
paths from ``parameters_and_names`` are ``optimizer.global_step`` and so on.

Note [one-step fast path]: ``TrainOneStepCell.construct`` runs the network once under
autograd and asks ``torch.autograd.grad`` for the gradients of the loss with respect
to the optimizer's Parameters (their torch leaves), in ``optimizer.parameters`` order.
It gives what ``GradOperation(get_by_list=True, sens_param=...)`` gives (zeros for a
frozen or unused weight, See Note [frozen weights] in ``spore/ops/_grad.py``) without
the general machinery for input gradients, so the per-step cost stays that of a
hand-written PyTorch loop. ``self.grad`` is still the GradOperation, for subclasses
that write their own ``construct`` the MindSpore way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from spore import context as _context
from spore.common.tensor import Tensor
from spore.nn.cell import Cell
from spore.ops._grad import GradOperation

__all__ = ["TrainOneStepCell", "WithEvalCell", "WithLossCell"]


def _identity_reducer(grads: Any) -> Any:
    """The gradient reducer outside data parallel: gradients pass unchanged."""
    return grads


def _check_cell(value: Any, arg: str, what: str) -> Cell:
    if not isinstance(value, Cell):
        raise TypeError(
            f"For '{what}', the '{arg}' should be a Cell, but got "
            f"{type(value).__name__}."
        )
    return value


def _torch_of(value: Any) -> torch.Tensor | None:
    if isinstance(value, Tensor):
        return value._materialized()
    if isinstance(value, torch.Tensor):
        return value
    return None


def _detached(value: Any) -> Any:
    """What the caller gets back: the same values, no autograd graph attached."""
    if isinstance(value, Tensor):
        return Tensor._wrap(value._materialized().detach())
    if isinstance(value, torch.Tensor):
        return Tensor._wrap(value.detach())
    if isinstance(value, (tuple, list)):
        return type(value)(_detached(item) for item in value)
    return value


class WithLossCell(Cell):
    """A network followed by its loss: ``loss_fn(backbone(data), label)``.

    Args:
        backbone: The network (a Cell).
        loss_fn: The loss, a Cell or a function of ``(logits, label)``.

    Inputs:
        data: The backbone's input.
        label: The target passed to the loss.

    Outputs:
        The loss, as the loss function returns it.

    Raises:
        TypeError: If ``backbone`` is not a Cell or ``loss_fn`` is not callable.

    Examples:
        >>> from spore import nn
        >>> net = nn.WithLossCell(nn.Dense(3, 2), nn.MSELoss())
        >>> [(key, p.name) for key, p in net.parameters_and_names()]
        [('_backbone.weight', 'weight'), ('_backbone.bias', 'bias')]
    """

    def __init__(self, backbone: Cell, loss_fn: Callable[..., Any]) -> None:
        _check_cell(backbone, "backbone", "WithLossCell")
        if not callable(loss_fn):
            raise TypeError(
                "For 'WithLossCell', the 'loss_fn' should be a Cell or a function, "
                f"but got {type(loss_fn).__name__}."
            )
        super().__init__(auto_prefix=False)
        self._backbone = backbone
        self._loss_fn = loss_fn

    def construct(self, data: Any, label: Any) -> Any:
        return self._loss_fn(self._backbone(data), label)

    @property
    def backbone_network(self) -> Cell:
        """The wrapped network."""
        return self._backbone


class WithEvalCell(Cell):
    """A network and its loss for evaluation: returns ``(loss, outputs, label)``.

    Args:
        network: The network (a Cell).
        loss_fn: The loss, a Cell or a function of ``(outputs, label)``.
        add_cast_fp32: Cast ``outputs`` to float32 before the loss (MindSpore's
            mixed-precision evaluation). Default: ``False``.

    Raises:
        TypeError: If ``network`` is not a Cell, ``loss_fn`` not callable or
            ``add_cast_fp32`` not a bool.
    """

    def __init__(
        self, network: Cell, loss_fn: Callable[..., Any], add_cast_fp32: bool = False
    ) -> None:
        _check_cell(network, "network", "WithEvalCell")
        if not callable(loss_fn):
            raise TypeError(
                "For 'WithEvalCell', the 'loss_fn' should be a Cell or a function, "
                f"but got {type(loss_fn).__name__}."
            )
        if not isinstance(add_cast_fp32, bool):
            raise TypeError(
                "For 'WithEvalCell', the 'add_cast_fp32' should be bool, but got "
                f"{type(add_cast_fp32).__name__}."
            )
        super().__init__(auto_prefix=False)
        self._network = network
        self._loss_fn = loss_fn
        self.add_cast_fp32 = add_cast_fp32

    def construct(self, data: Any, label: Any) -> tuple[Any, Any, Any]:
        outputs = self._network(data)
        if self.add_cast_fp32:
            raw = _torch_of(outputs)
            if raw is not None:
                outputs = Tensor._wrap(raw.float())
        return self._loss_fn(outputs, label), outputs, label


class TrainOneStepCell(Cell):
    """One training step: the loss, its gradients, and the optimizer's update.

    Calling it with the network's inputs runs the network (which must return the
    loss, e.g. a `WithLossCell`), takes the gradients of the loss with respect to
    ``optimizer.parameters``, passes them through ``grad_reducer`` and to the
    optimizer, and returns the loss from *before* the update.

    Args:
        network: The network returning the loss.
        optimizer: The optimizer (its ``parameters`` are the weights trained).
        sens: The gradient of the loss fed to the backward pass (a number);
            None means 1.0. Default: ``None``.
        return_grad: Also return the gradients, as ``{parameter name: grad}``.
            Default: ``False``.

    Inputs:
        *inputs: The network's inputs.

    Outputs:
        The loss (a Tensor), or ``(loss, {name: grad})`` when ``return_grad``.

    Raises:
        TypeError: If ``network`` is not a Cell, ``optimizer`` has no
            ``parameters``, ``sens`` is not a number or ``return_grad`` not a bool.
        ValueError: If ``sens`` is 0.

    Examples:
        >>> import numpy as np
        >>> from spore import Tensor, nn
        >>> from spore.nn.optim import Momentum
        >>> net = nn.Dense(3, 2)
        >>> opt = Momentum(net.trainable_params(), learning_rate=0.1, momentum=0.9)
        >>> train = nn.TrainOneStepCell(nn.WithLossCell(net, nn.MSELoss()), opt)
        >>> [p.name for p in train.get_parameters()][:3]
        ['weight', 'bias', 'global_step']
        >>> x = Tensor(np.ones((4, 3), np.float32))
        >>> y = Tensor(np.zeros((4, 2), np.float32))
        >>> train(x, y).shape
        ()
    """

    def __init__(
        self,
        network: Cell,
        optimizer: Any,
        sens: float | None = None,
        return_grad: bool = False,
    ) -> None:
        _check_cell(network, "network", "TrainOneStepCell")
        weights = getattr(optimizer, "parameters", None)
        if not isinstance(optimizer, Cell) or weights is None:
            raise TypeError(
                "For 'TrainOneStepCell', the 'optimizer' should be an optimizer Cell "
                "with 'parameters' (such as nn.Momentum), but got "
                f"{type(optimizer).__name__}."
            )
        if sens is not None and (
            isinstance(sens, bool) or not isinstance(sens, (int, float))
        ):
            raise TypeError(
                "For 'TrainOneStepCell', the 'sens' should be a number or None, but "
                f"got {type(sens).__name__}."
            )
        if sens == 0:
            raise ValueError(
                "For 'TrainOneStepCell', the 'sens' should not be 0: every gradient "
                "would be zero. Pass None (1.0) or a non-zero number."
            )
        if not isinstance(return_grad, bool):
            raise TypeError(
                "For 'TrainOneStepCell', the 'return_grad' should be bool, but got "
                f"{type(return_grad).__name__}."
            )
        super().__init__(auto_prefix=False)
        self.network = network
        self.network.set_grad()
        self.optimizer = optimizer
        # A ParameterTuple attribute: the weights are keyed by their own names at
        # the top, which is why MindSpore lists them as 'weight', not 'network.…'.
        self.weights = weights
        self.grad = GradOperation(get_by_list=True, sens_param=True)
        self.grad_no_sens = GradOperation(get_by_list=True)
        self.sense_flag = sens is not None  # MindSpore's spelling
        self.sens = 1.0 if sens is None else float(sens)
        self.return_grad = return_grad
        self.weights_name = [param.name for param in weights]
        self.parallel_mode = _context.get_auto_parallel_context("parallel_mode")
        # ---- data parallel (issue 5) --------------------------------------------
        # DATA_PARALLEL / HYBRID_PARALLEL: gradients are all-reduced by a
        # DistributedGradReducer (armed before each backward pass, so buckets are
        # reduced while it runs) and the first call broadcasts the Parameters from
        # rank 0 when parameter_broadcast is set. Imported here, not at the top:
        # spore.nn works without the process layer (DESIGN.md).
        self.reducer_flag = _context._is_data_parallel() or _sliced_parallel_run()
        self._broadcast_pending = _context._is_data_parallel()
        self.grad_reducer: Callable[[Any], Any] = _identity_reducer
        if self.reducer_flag:
            from spore.nn.wrap.grad_reducer import DistributedGradReducer

            self.grad_reducer = DistributedGradReducer(
                weights, mean=_context.get_auto_parallel_context("gradients_mean")
            )
        # ---- end data parallel ----------------------------------------------------

    def construct(self, *inputs: Any) -> Any:
        if self.reducer_flag:  # data parallel (issue 5)
            self._prepare_data_parallel()
        with torch.enable_grad():
            loss = self.network(*inputs)
        grads = self._weight_grads(loss)
        grads = self.grad_reducer(grads)
        self.optimizer(grads)
        loss = _detached(loss)
        if self.return_grad:
            names = [param.name for param in self.weights]
            return loss, {
                # Reduced gradients are views of the reducer's reused buffers.
                name: Tensor._wrap(grad.clone() if self.reducer_flag else grad)
                for name, grad in zip(names, grads, strict=True)
            }
        return loss

    def _prepare_data_parallel(self) -> None:
        """Broadcast once (first step), then arm the reducer for this backward."""
        if self._broadcast_pending:
            from spore.parallel._broadcast import parameter_broadcast

            parameter_broadcast(self)
            self._broadcast_pending = False
        prepare = getattr(self.grad_reducer, "prepare_for_backward", None)
        if prepare is not None:
            prepare()

    def _weight_grads(self, loss: Any) -> tuple[torch.Tensor, ...]:
        """d(loss)/d(weights) as torch tensors, in ``weights`` order. See Note
        [one-step fast path]."""
        leaves = [param._materialized() for param in self.weights]
        roots, root_grads = self._roots(loss)
        targets = [leaf for leaf in leaves if leaf.requires_grad]
        if not roots or not targets:
            return tuple(torch.zeros_like(leaf) for leaf in leaves)
        found = torch.autograd.grad(
            roots, targets, grad_outputs=root_grads, allow_unused=True
        )
        if len(targets) == len(leaves) and all(g is not None for g in found):
            return found
        by_leaf = {id(t): g for t, g in zip(targets, found, strict=True)}
        out = []
        for leaf in leaves:
            grad = by_leaf.get(id(leaf))
            out.append(torch.zeros_like(leaf) if grad is None else grad)
        return tuple(out)

    def _roots(self, loss: Any) -> tuple[list[torch.Tensor], Sequence[Any] | None]:
        """The outputs differentiated and their output gradients (None: ones)."""
        single = _torch_of(loss)
        if single is not None:
            if not single.requires_grad:
                return [], None
            if self.sense_flag:
                return [single], [torch.full_like(single, self.sens)]
            if single.numel() != 1:
                return [single], [torch.ones_like(single)]
            return [single], None
        # Several outputs: every one is differentiated (GradOperation's ones).
        flat: list[torch.Tensor] = []
        _flatten(loss, flat)
        roots = [t for t in flat if t.requires_grad]
        fill = self.sens if self.sense_flag else 1.0
        return roots, [torch.full_like(t, fill) for t in roots]


def _sliced_parallel_run() -> bool:
    """(Semi-)auto parallel across several processes: gradients are averaged over
    the ranks that hold the same slice (See the reducer's groups, issue 6)."""
    mode = _context.get_auto_parallel_context("parallel_mode")
    if mode not in (_context.ParallelMode.SEMI_AUTO_PARALLEL,
                    _context.ParallelMode.AUTO_PARALLEL):  # fmt: skip
        return False
    from spore.communication.management import GlobalComm, get_group_size

    return GlobalComm.INITED and get_group_size() > 1


def _flatten(value: Any, into: list[torch.Tensor]) -> None:
    if isinstance(value, (tuple, list)):
        for item in value:
            _flatten(item, into)
        return
    raw = _torch_of(value)
    if raw is not None:
        into.append(raw)
