"""The data model: dtypes, Tensor, initializers, Parameter, ParameterTuple, seed."""

from spore.common import dtype as dtype
from spore.common.lazy import lazy_init as lazy_init
from spore.common.parameter import Parameter as Parameter
from spore.common.parameter import ParameterTuple as ParameterTuple
from spore.common.seed import get_seed as get_seed
from spore.common.seed import set_seed as set_seed
from spore.common.tensor import Tensor as Tensor

__all__ = [
    "Parameter",
    "ParameterTuple",
    "Tensor",
    "dtype",
    "get_seed",
    "lazy_init",
    "set_seed",
]
