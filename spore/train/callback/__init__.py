"""Callbacks for `spore.train.Model` (MindSpore's ``mindspore.train.callback``)."""

from spore.train.callback._callback import Callback as Callback
from spore.train.callback._callback import RunContext as RunContext
from spore.train.callback._checkpoint import CheckpointConfig as CheckpointConfig
from spore.train.callback._checkpoint import ModelCheckpoint as ModelCheckpoint
from spore.train.callback._loss_monitor import LossMonitor as LossMonitor
from spore.train.callback._progress_bar import ProgressBar as ProgressBar

__all__ = [
    "Callback",
    "CheckpointConfig",
    "LossMonitor",
    "ModelCheckpoint",
    "ProgressBar",
    "RunContext",
]
