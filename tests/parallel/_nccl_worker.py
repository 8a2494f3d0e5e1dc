"""One rank of test_nccl.py: ``init("nccl")``, then CPU and CUDA Parameters.

``python _nccl_worker.py run OUT`` with torchrun's variables set; writes
``OUT/rank<R>.json``. CUDA Parameters are tried only where every rank has a GPU
of its own (NCCL runs no collective between ranks on one GPU).
"""

from __future__ import annotations

import json
import os
import sys
import traceback
import warnings
from pathlib import Path
from typing import Any

import torch

from spore import Parameter, Tensor
from spore.communication import GlobalComm, get_group_size, get_rank, init, release
from spore.nn.wrap.grad_reducer import DistributedGradReducer
from spore.parallel._broadcast import broadcast_parameters


def _exercise(device: str, rank: int) -> dict[str, Any]:
    start = torch.full((4,), float(rank + 1), device=device)
    weight = Parameter(Tensor.from_torch(start), name=f"w_{device}")
    broadcast_parameters([weight], src=0)
    grad = Tensor.from_torch(torch.full((4,), float(rank + 1), device=device))
    (mean,) = DistributedGradReducer([weight], mean=True)((grad,))
    return {
        "broadcast": weight.to_torch().tolist(),
        "mean": mean.to_torch().tolist(),
        "devices": [str(weight.to_torch().device), str(mean.to_torch().device)],
    }


def main() -> int:
    out = Path(sys.argv[2])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        init("nccl")
    rank, world = get_rank(), get_group_size()
    result: dict[str, Any] = {
        "backend": GlobalComm.BACKEND,
        "group": GlobalComm.WORLD_COMM_GROUP,
        "warnings": [str(w.message) for w in caught],
    }
    try:
        result["cpu"] = _exercise("cpu", rank)
        if torch.cuda.device_count() >= world:
            result["cuda"] = _exercise("cuda", rank)
    except Exception:
        result["crash"] = traceback.format_exc()
    (out / f"rank{os.environ['DP_TEST_ID']}.json").write_text(json.dumps(result))
    release()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
