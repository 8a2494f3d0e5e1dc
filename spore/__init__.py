"""spore: MindSpore's parameter system on PyTorch.

Public import paths mirror MindSpore's: ``from spore import Tensor, Parameter``,
``from spore import dtype as mstype``,
``from spore.common.initializer import initializer``.
"""

from spore import common as common
from spore import context as context
from spore import ops as ops
from spore.common import dtype as dtype
from spore.common.dtype import Type as Type
from spore.common.dtype import bfloat16 as bfloat16
from spore.common.dtype import bool_ as bool_
from spore.common.dtype import byte as byte
from spore.common.dtype import cdouble as cdouble
from spore.common.dtype import cfloat as cfloat
from spore.common.dtype import complex64 as complex64
from spore.common.dtype import complex128 as complex128
from spore.common.dtype import complex_type as complex_type
from spore.common.dtype import double as double
from spore.common.dtype import dtype_to_nptype as dtype_to_nptype
from spore.common.dtype import dtype_to_pytype as dtype_to_pytype
from spore.common.dtype import float16 as float16
from spore.common.dtype import float32 as float32
from spore.common.dtype import float64 as float64
from spore.common.dtype import float_ as float_
from spore.common.dtype import float_type as float_type
from spore.common.dtype import get_py_obj_dtype as get_py_obj_dtype
from spore.common.dtype import half as half
from spore.common.dtype import int8 as int8
from spore.common.dtype import int16 as int16
from spore.common.dtype import int32 as int32
from spore.common.dtype import int64 as int64
from spore.common.dtype import int_ as int_
from spore.common.dtype import int_type as int_type
from spore.common.dtype import intc as intc
from spore.common.dtype import intp as intp
from spore.common.dtype import list_ as list_
from spore.common.dtype import number as number
from spore.common.dtype import number_type as number_type
from spore.common.dtype import pytype_to_dtype as pytype_to_dtype
from spore.common.dtype import short as short
from spore.common.dtype import single as single
from spore.common.dtype import string as string
from spore.common.dtype import tensor_type as tensor_type
from spore.common.dtype import tuple_ as tuple_
from spore.common.dtype import type_none as type_none
from spore.common.dtype import type_size_in_bytes as type_size_in_bytes
from spore.common.dtype import ubyte as ubyte
from spore.common.dtype import uint as uint
from spore.common.dtype import uint8 as uint8
from spore.common.dtype import uint16 as uint16
from spore.common.dtype import uint32 as uint32
from spore.common.dtype import uint64 as uint64
from spore.common.dtype import uint_type as uint_type
from spore.common.dtype import uintc as uintc
from spore.common.dtype import uintp as uintp
from spore.common.dtype import ushort as ushort
from spore.common.lazy import lazy_init as lazy_init
from spore.common.parameter import Parameter as Parameter
from spore.common.parameter import ParameterTuple as ParameterTuple
from spore.common.seed import get_seed as get_seed
from spore.common.seed import set_seed as set_seed
from spore.common.tensor import Tensor as Tensor
from spore.context import ParallelMode as ParallelMode
from spore.context import get_auto_parallel_context as get_auto_parallel_context
from spore.context import get_ps_context as get_ps_context
from spore.context import reset_auto_parallel_context as reset_auto_parallel_context
from spore.context import reset_ps_context as reset_ps_context
from spore.context import set_auto_parallel_context as set_auto_parallel_context
from spore.context import set_ps_context as set_ps_context
from spore.ops import grad as grad
from spore.ops import value_and_grad as value_and_grad
from spore.parallel.checkpoint import build_searched_strategy as build_searched_strategy
from spore.parallel.checkpoint import (
    load_distributed_checkpoint as load_distributed_checkpoint,
)
from spore.parallel.checkpoint import merge_sliced_parameter as merge_sliced_parameter
from spore.train.model import Model as Model
from spore.train.serialization import load_checkpoint as load_checkpoint
from spore.train.serialization import load_param_into_net as load_param_into_net
from spore.train.serialization import save_checkpoint as save_checkpoint

# MindSpore 2.x also exports `mindspore.bool`; importing it by that name would
# shadow the builtin inside this module, so it is attached instead.
globals()['bool'] = bool_

__version__ = "0.1.0"

__all__ = [
    "build_searched_strategy",
    "load_distributed_checkpoint",
    "merge_sliced_parameter",
    "Model",
    "ParallelMode",
    "Parameter",
    "ParameterTuple",
    "Tensor",
    "Type",
    "bfloat16",
    "bool_",
    "byte",
    "cdouble",
    "cfloat",
    "common",
    "complex128",
    "complex64",
    "complex_type",
    "context",
    "double",
    "dtype",
    "dtype_to_nptype",
    "dtype_to_pytype",
    "float16",
    "float32",
    "float64",
    "float_",
    "float_type",
    "get_auto_parallel_context",
    "get_ps_context",
    "get_py_obj_dtype",
    "get_seed",
    "grad",
    "half",
    "int16",
    "int32",
    "int64",
    "int8",
    "int_",
    "int_type",
    "intc",
    "intp",
    "lazy_init",
    "list_",
    "load_checkpoint",
    "load_param_into_net",
    "number",
    "number_type",
    "ops",
    "pytype_to_dtype",
    "reset_auto_parallel_context",
    "save_checkpoint",
    "set_auto_parallel_context",
    "set_ps_context",
    "reset_ps_context",
    "set_seed",
    "short",
    "single",
    "string",
    "tensor_type",
    "tuple_",
    "type_none",
    "type_size_in_bytes",
    "ubyte",
    "uint",
    "uint16",
    "uint32",
    "uint64",
    "uint8",
    "uint_type",
    "uintc",
    "uintp",
    "ushort",
    "value_and_grad",
]
