"""One rank of the tensor-parallel training test (run by test_tensor_parallel.py).

Usage: ``python _tp_worker.py OUT_DIR`` with torchrun's variables (``tp_launch``).
Joins with ``spore.communication.init()``, makes the tensor-parallel group with
``create_group`` (all ranks; one rank: the layers stay whole), trains a small
network (vocab-parallel Embedding -> column-parallel Dense -> row-parallel Dense)
with plain SGD and writes its losses and local slices.
"""

from __future__ import annotations

import sys

import numpy as np
import torch

import spore
from spore import Tensor, nn
from spore.communication import create_group, get_group_size, get_rank, init, release
from spore.nn.layer.parallel_dense import (
    ColumnParallelDense,
    RowParallelDense,
    VocabParallelEmbedding,
)


class Net(nn.Cell):
    def __init__(self) -> None:
        super().__init__()
        self.embed = VocabParallelEmbedding(16, 8, group="tp")
        self.up = ColumnParallelDense(8, 12, gather_output=False, group="tp")
        self.down = RowParallelDense(12, 4, input_is_parallel=True, group="tp")
        self.head = ColumnParallelDense(4, 6, gather_output=True)  # the world

    def construct(self, ids):
        h = self.embed(ids)
        h = Tensor.from_torch(torch.relu(self.up(h).to_torch()))
        return self.head(self.down(h))


def main() -> None:
    out = sys.argv[1]
    torch.set_num_threads(1)
    init("gloo")
    rank, world = get_rank(), get_group_size()
    create_group("tp", list(range(world)))
    assert get_group_size("tp") == world and get_rank("tp") == rank
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
            for p, g in zip(params, grads, strict=True):
                p.to_torch().sub_(0.1 * g)
        losses.append(loss.item())
    arrays = {"losses": np.array(losses)}
    for p in net.get_parameters():
        arrays[p.name] = p.asnumpy()
        assert p.sliced == (world > 1)
    arrays["tp_size"] = np.array([net.up.tp_size, net.head.tp_size])
    np.savez(f"{out}/rank{rank}.npz", **arrays)
    release()


if __name__ == "__main__":
    main()
