"""``init("nccl")``: CPU Parameters over gloo, CUDA ones over NCCL, in one group.

The multi-process tests need a CUDA GPU and run where there is one (CI has none);
the refusal without CUDA runs everywhere else.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from dp_launch import launch

from spore.communication import init

WORKER = Path(__file__).with_name("_nccl_worker.py")
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_nccl_without_cuda_is_refused_before_anything_starts() -> None:
    with pytest.raises(RuntimeError, match=r"the backend 'nccl' needs CUDA GPUs"):
        init("nccl")


@needs_cuda
@pytest.mark.parametrize("world", [1, 2])
def test_nccl_group_moves_cpu_and_cuda_parameters(tmp_path: Path, world: int) -> None:
    run = launch("run", tmp_path, world=world, timeout=120, worker=WORKER)
    assert run.codes == [0] * world, run.describe()
    own_gpus = torch.cuda.device_count() >= world
    for rank in range(world):
        result = run.results[rank]
        assert "crash" not in result, result.get("crash")
        assert (result["backend"], result["group"]) == ("nccl", "nccl_world_group")
        mean = (world + 1) / 2  # ranks start from 1, 2, ...
        devices = ["cpu", "cuda"] if own_gpus else ["cpu"]
        for device in devices:
            assert result[device]["broadcast"] == [1.0] * 4  # rank 0's values
            assert result[device]["mean"] == [mean] * 4
            assert all(d.startswith(device) for d in result[device]["devices"])
        shares_a_gpu = rank >= torch.cuda.device_count()
        assert any("LOCAL_RANK" in w for w in result["warnings"]) == shares_a_gpu
