"""Data parallelism on ``torch.distributed``: broadcast, gradient buckets, checks.

``nn.DistributedGradReducer`` (``spore/nn/wrap/grad_reducer.py``) is the public face
of the gradient buckets here; `TrainOneStepCell` uses it, and broadcasts the
Parameters once, in the data and hybrid parallel modes.
"""

from spore.parallel._replicas import check_replicas as check_replicas

__all__ = ["check_replicas"]

# Sharded parameters (issue 6): layouts, sharded init, memory estimate.
from spore.parallel._layout import Layout as Layout
from spore.parallel._layout import get_layout as get_layout
from spore.parallel._layout import set_layout as set_layout
from spore.parallel._memory import MemoryReport as MemoryReport
from spore.parallel._memory import memory_report as memory_report
from spore.parallel.checkpoint import (
    build_searched_strategy as build_searched_strategy,
)
from spore.parallel.checkpoint import (
    load_distributed_checkpoint as load_distributed_checkpoint,
)
from spore.parallel.checkpoint import (
    merge_sliced_parameter as merge_sliced_parameter,
)
from spore.parallel.checkpoint import (
    save_sliced_checkpoint as save_sliced_checkpoint,
)
from spore.parallel.checkpoint import save_strategy as save_strategy
from spore.parallel.shard import init_params as init_params
from spore.parallel.shard import shard as shard
from spore.parallel.shard import world_size as world_size

__all__ += [
    "Layout", "MemoryReport", "build_searched_strategy", "get_layout", "init_params",
    "load_distributed_checkpoint", "memory_report", "merge_sliced_parameter",
    "save_sliced_checkpoint", "save_strategy", "set_layout", "shard", "world_size",
]  # fmt: skip
