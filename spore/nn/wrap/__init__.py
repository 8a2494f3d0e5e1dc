"""Training wrappers (MindSpore's ``nn.wrap``): loss, evaluation and one-step cells,
and the data-parallel gradient reducer."""

from spore.nn.wrap.cell_wrapper import TrainOneStepCell as TrainOneStepCell
from spore.nn.wrap.cell_wrapper import WithEvalCell as WithEvalCell
from spore.nn.wrap.cell_wrapper import WithLossCell as WithLossCell
from spore.nn.wrap.grad_reducer import DistributedGradReducer as DistributedGradReducer

__all__ = ["DistributedGradReducer", "TrainOneStepCell", "WithEvalCell", "WithLossCell"]
