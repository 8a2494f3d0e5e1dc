"""Communication over ``torch.distributed`` (MindSpore's ``communication``)."""

from spore.communication.management import (
    HCCL_WORLD_COMM_GROUP as HCCL_WORLD_COMM_GROUP,
)
from spore.communication.management import (
    MCCL_WORLD_COMM_GROUP as MCCL_WORLD_COMM_GROUP,
)
from spore.communication.management import (
    NCCL_WORLD_COMM_GROUP as NCCL_WORLD_COMM_GROUP,
)
from spore.communication.management import GlobalComm as GlobalComm
from spore.communication.management import create_group as create_group
from spore.communication.management import destroy_group as destroy_group
from spore.communication.management import (
    get_group_rank_from_world_rank as get_group_rank_from_world_rank,
)
from spore.communication.management import get_group_size as get_group_size
from spore.communication.management import get_local_rank as get_local_rank
from spore.communication.management import get_local_rank_size as get_local_rank_size
from spore.communication.management import get_rank as get_rank
from spore.communication.management import (
    get_world_rank_from_group_rank as get_world_rank_from_group_rank,
)
from spore.communication.management import init as init
from spore.communication.management import release as release

__all__ = [
    "HCCL_WORLD_COMM_GROUP",
    "MCCL_WORLD_COMM_GROUP",
    "NCCL_WORLD_COMM_GROUP",
    "GlobalComm",
    "create_group",
    "destroy_group",
    "get_group_rank_from_world_rank",
    "get_group_size",
    "get_local_rank",
    "get_local_rank_size",
    "get_rank",
    "get_world_rank_from_group_rank",
    "init",
    "release",
]
