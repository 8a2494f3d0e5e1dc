"""Training loops (MindSpore's ``mindspore.train``): `Model`, callbacks, metrics."""

from spore.train import callback as callback
from spore.train import metrics as metrics
from spore.train.callback import Callback as Callback
from spore.train.callback import CheckpointConfig as CheckpointConfig
from spore.train.callback import LossMonitor as LossMonitor
from spore.train.callback import ModelCheckpoint as ModelCheckpoint
from spore.train.callback import ProgressBar as ProgressBar
from spore.train.callback import RunContext as RunContext
from spore.train.metrics import Accuracy as Accuracy
from spore.train.metrics import Loss as Loss
from spore.train.metrics import Metric as Metric
from spore.train.model import Model as Model
from spore.train.serialization import load_checkpoint as load_checkpoint
from spore.train.serialization import load_param_into_net as load_param_into_net
from spore.train.serialization import save_checkpoint as save_checkpoint
from spore.train.serialization import wait_async_save as wait_async_save

__all__ = [
    "Accuracy",
    "Callback",
    "CheckpointConfig",
    "Loss",
    "LossMonitor",
    "Metric",
    "Model",
    "ModelCheckpoint",
    "ProgressBar",
    "RunContext",
    "callback",
    "load_checkpoint",
    "load_param_into_net",
    "metrics",
    "save_checkpoint",
    "wait_async_save",
]
