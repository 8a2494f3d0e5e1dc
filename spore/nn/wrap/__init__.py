"""Training wrappers (MindSpore's ``nn.wrap``): loss, evaluation and one-step cells."""

from spore.nn.wrap.cell_wrapper import TrainOneStepCell as TrainOneStepCell
from spore.nn.wrap.cell_wrapper import WithEvalCell as WithEvalCell
from spore.nn.wrap.cell_wrapper import WithLossCell as WithLossCell

__all__ = ["TrainOneStepCell", "WithEvalCell", "WithLossCell"]
