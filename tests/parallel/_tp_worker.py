"""One rank of the tensor-parallel training test (run by test_tensor_parallel.py).

Usage: python _tp_worker.py RANK WORLD PORT OUT_DIR  (WORLD 1: no torch.distributed)
Trains a small network (vocab-parallel Embedding -> column-parallel Dense ->
row-parallel Dense) with plain SGD and writes its losses and local slices.
"""

from __future__ import annotations

import sys
from datetime import timedelta

import numpy as np
import torch
import torch.distributed as dist

import spore
from spore import Tensor, nn
from spore.nn.layer.parallel_dense import (
    ColumnParallelDense,
    RowParallelDense,
    VocabParallelEmbedding,
)


class Net(nn.Cell):
    def __init__(self) -> None:
        super().__init__()
        self.embed = VocabParallelEmbedding(16, 8)
        self.up = ColumnParallelDense(8, 12, gather_output=False)
        self.down = RowParallelDense(12, 4, input_is_parallel=True)
        self.head = ColumnParallelDense(4, 6, gather_output=True)

    def construct(self, ids):
        h = self.embed(ids)
        h = Tensor.from_torch(torch.relu(self.up(h).to_torch()))
        return self.head(self.down(h))


def main() -> None:
    rank, world, port, out = (
        int(sys.argv[1]),
        int(sys.argv[2]),
        sys.argv[3],
        sys.argv[4],
    )
    torch.set_num_threads(1)
    if world > 1:
        dist.init_process_group(
            "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
            world_size=world, timeout=timedelta(seconds=30),
        )  # fmt: skip
    spore.set_seed(11)
    spore.set_auto_parallel_context(parallel_mode="semi_auto_parallel")
    net = Net()
    assert all(p.has_init for p in net.get_parameters())  # lazy until the first call
    gen = np.random.default_rng(0)
    ids = Tensor(gen.integers(0, 16, (5, 3)).astype(np.int32))
    target = torch.from_numpy(gen.standard_normal((5, 3, 6)).astype(np.float32))
    losses = []
    for _ in range(5):
        loss = ((net(ids).to_torch() - target) ** 2).mean()
        params = list(net.get_parameters())
        grads = torch.autograd.grad(loss, [p.to_torch() for p in params])
        with torch.no_grad():
            for p, g in zip(params, grads):
                p.to_torch().sub_(0.1 * g)
        losses.append(loss.item())
    arrays = {"losses": np.array(losses)}
    for p in net.get_parameters():
        arrays[p.name] = p.asnumpy()
        assert p.sliced == (world > 1)
    np.savez(f"{out}/rank{rank}.npz", **arrays)
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
