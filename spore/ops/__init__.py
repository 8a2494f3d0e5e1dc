"""Operations on spore Tensors: ``GradOperation``, ``grad``, ``value_and_grad``."""

from spore.ops._grad import GradOperation as GradOperation
from spore.ops._grad import grad as grad
from spore.ops._grad import value_and_grad as value_and_grad

__all__ = ["GradOperation", "grad", "value_and_grad"]
