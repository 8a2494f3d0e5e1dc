"""One rank of the integrated-save test (run by test_sliced_ckpt.py).

Usage: python _integrated_save_worker.py RANK WORLD PORT OUT_DIR
Builds the test's sharded network on 2 real ranks (gloo on 127.0.0.1), saves it
with ``integrated_save=True`` (whole tensors, gathered) and ``False`` (slices).
"""

from __future__ import annotations

import sys
from datetime import timedelta

import torch
import torch.distributed as dist

import spore
from spore import Parameter, nn, save_checkpoint
from spore.parallel import init_params, set_layout, shard


def build_net(world: int) -> nn.Cell:
    """Dense (column split), Dense (row split), Embedding (vocab split), and a
    bfloat16 Parameter split over both of its dims on a 2 x 1 device matrix."""
    spore.set_seed(5)
    spore.set_auto_parallel_context(parallel_mode="semi_auto_parallel")
    net = nn.SequentialCell([nn.Dense(8, 12), nn.Dense(12, 8), nn.Embedding(16, 4)])
    net.scale = Parameter(
        spore.common.initializer.initializer("normal", (6, 4), spore.bfloat16),
        name="scale",
    )
    spore.reset_auto_parallel_context()
    if world > 1:
        shard(net[0], ((1, 1), (world, 1)), world=world)
        shard(net[1], ((1, world), (1, world)), world=world)
        shard(net[2], ((world, 1),), world=world)
        set_layout(net.scale, [world, 1], [1, -1])
    return net


def main() -> None:
    rank, world, port, out = (
        int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4],
    )  # fmt: skip
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world,
        timeout=timedelta(seconds=30),
    )  # fmt: skip
    net = build_net(world)
    init_params(net)
    assert net[0].weight.sliced and net.scale.shape == (3, 4)
    save_checkpoint(net, f"{out}/whole_{rank}.ckpt", append_dict={"rank": rank})
    save_checkpoint(net, f"{out}/slices_{rank}.ckpt", integrated_save=False)
    assert net[0].weight.shape == (6, 8)  # the network keeps its slices
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
