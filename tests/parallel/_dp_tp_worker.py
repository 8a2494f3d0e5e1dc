"""One rank of the data x tensor parallel test (run by test_dp_tp.py).

Usage: ``python _dp_tp_worker.py OUT_DIR`` with torchrun's variables, 4 ranks.
MindSpore style: ``init()``, ``semi_auto_parallel`` on 4 devices, layers split by
``shard`` strategies on a (dp=2, mp=2) device matrix, a hand-written step with
``nn.DistributedGradReducer``. Each rank trains on its dp part of every batch and
writes ``rank{R}.json``; rank 0 then trains the same network with plain layers in
one process on the whole batch (``reference.json``). Nothing is asserted here.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

import spore
from spore import Parameter, Tensor, nn
from spore.common.initializer import initializer
from spore.communication import get_group_size, get_rank, init, release
from spore.parallel import check_replicas, get_layout, set_layout
from spore.parallel._groups import group_name

DP, MP = 2, 2
BATCH, STEPS, SEED = 8, 5, 23


class Net(nn.Cell):
    """Vocab-parallel embedding -> column-parallel -> row-parallel -> a plain Dense."""

    def __init__(self, parallel: bool) -> None:
        super().__init__()
        if parallel:
            self.embed = nn.VocabParallelEmbedding(16, 8).shard(((MP, 1), (DP, 1)))
            self.up = nn.ColumnParallelDense(8, 12, gather_output=False).shard(
                ((DP, 1), (MP, 1))
            )
            self.down = nn.RowParallelDense(12, 8, input_is_parallel=True).shard(
                ((DP, MP), (1, MP))
            )
        else:
            self.embed = nn.Embedding(16, 8)
            self.up = nn.Dense(8, 12)
            self.down = nn.Dense(12, 8)
        self.relu = nn.ReLU()
        self.head = nn.Dense(8, 4)  # no layout: replicated on every rank

    def construct(self, ids: Any) -> Any:
        return self.head(self.down(self.relu(self.up(self.embed(ids)))))


def _data() -> tuple[np.ndarray, np.ndarray]:
    gen = np.random.default_rng(5)
    ids = gen.integers(0, 16, (BATCH, 3)).astype(np.int32)
    target = gen.standard_normal((BATCH, 3, 4)).astype(np.float32)
    return ids, target


def _train(net: Net, ids: np.ndarray, target: np.ndarray, reduce: bool) -> dict:
    net.init_parameters_data()  # this rank's slices (the layouts from shard)
    with_loss = nn.WithLossCell(net, nn.MSELoss())
    opt = nn.Momentum(net.trainable_params(), learning_rate=0.05, momentum=0.9)
    grad_fn = spore.value_and_grad(with_loss, None, opt.parameters)
    reducer = nn.DistributedGradReducer(opt.parameters, mean=True) if reduce else None
    losses = []
    for _ in range(STEPS):
        if reducer is not None:
            reducer.prepare_for_backward()  # reduce while backward runs
        loss, grads = grad_fn(Tensor(ids), Tensor(target))
        if reducer is not None:
            grads = reducer(grads)
        opt(grads)
        losses.append(float(loss.asnumpy()))
    out: dict[str, Any] = {"losses": losses}
    out["params"] = {
        p.name: p.asnumpy().astype(np.float64).tolist() for p in net.get_parameters()
    }
    if reducer is not None:
        out["reduce_groups"] = {
            p.name: list(g)
            for p, g in zip(opt.parameters, reducer.reduce_groups, strict=True)
        }
        out["layouts"] = {
            p.name: [list(lay.dev_mat), list(lay.tensor_map)]
            for p in net.get_parameters()
            if (lay := get_layout(p)) is not None
        }
        out["tp_groups"] = {
            name: list(getattr(net, name).group_ranks)
            for name in ("embed", "up", "down")
        }
        out["sliced"] = {p.name: p.sliced for p in net.get_parameters()}
    return out


def _train_cell(net: Net, ids: np.ndarray, target: np.ndarray) -> dict:
    """The same training with TrainOneStepCell, which builds the reducer itself."""
    net.init_parameters_data()
    opt = nn.Momentum(net.trainable_params(), learning_rate=0.05, momentum=0.9)
    train = nn.TrainOneStepCell(nn.WithLossCell(net, nn.MSELoss()), opt)
    losses = [float(train(Tensor(ids), Tensor(target)).asnumpy()) for _ in range(STEPS)]
    params = {
        p.name: p.asnumpy().astype(np.float64).tolist() for p in net.get_parameters()
    }
    return {"losses": losses, "params": params, "reducer": train.reducer_flag}


def _check_replicas(net: Net, rank: int) -> dict:
    """check_replicas on the trained net: slices differ over mp, never within dp.

    Then one replica of a slice (``up.weight`` on rank 3; ranks 1 and 3 hold that
    slice) and one copy of a replicated Parameter (``head.bias`` on rank 2) are
    spoiled, checked, and restored bit for bit.
    """
    out: dict[str, Any] = {"clean": check_replicas(net, on_mismatch="raise")}
    up, head = net.up.weight.to_torch(), net.head.bias.to_torch()
    saved = up.clone(), head.clone()
    with torch.no_grad():
        if rank == 3:
            up.add_(1.0)
        if rank == 2:
            head.add_(1.0)
    try:
        check_replicas(net, on_mismatch="raise")
        out["message"] = None
    except RuntimeError as err:
        out["message"] = str(err)
    out["spoiled"] = check_replicas(net, on_mismatch="ignore")
    out["spoiled_rtol"] = check_replicas(net, rtol=1e-9, on_mismatch="ignore")
    out["spoiled_atol"] = check_replicas(net, atol=1e9, on_mismatch="ignore")
    # Within this rank's dp group only (the replicas of its slice of up.weight).
    dp_group = group_name([rank % MP, rank % MP + MP])
    out["spoiled_in_dp_group"] = check_replicas(
        net, group=dp_group, on_mismatch="ignore"
    )
    with torch.no_grad():
        up.copy_(saved[0])
        head.copy_(saved[1])
    out["restored"] = check_replicas(net, on_mismatch="raise")
    return out


def _reducer_groups(rank: int) -> dict:
    """Known gradients through one reducer: layerwise, sliced and replicated."""
    lw = Parameter(Tensor(np.zeros(3, np.float32)), name="lw", layerwise_parallel=True)
    sliced = Parameter(initializer("zeros", (4, 2)), name="sliced")  # lazy here
    set_layout(sliced, [2, 2], [0, -1])  # rows split over the last axis (mp)
    sliced.init_data()
    whole = Parameter(Tensor(np.zeros(2, np.float32)), name="whole")
    reducer = nn.DistributedGradReducer([lw, sliced, whole], mean=True)
    grads = tuple(torch.full(tuple(p.shape), rank + 1.0) for p in (lw, sliced, whole))
    out = reducer(grads)
    return {
        "groups": [list(g) for g in reducer.reduce_groups],
        "values": [float(g.flatten()[0]) for g in out],
        "lw_passed_through": out[0] is grads[0],
        "sliced_shape": list(sliced.shape),
    }


def main() -> None:
    out = Path(sys.argv[1])
    torch.set_num_threads(1)
    init("gloo")
    rank, world = get_rank(), get_group_size()
    spore.set_auto_parallel_context(
        parallel_mode="semi_auto_parallel", device_num=world, gradients_mean=True
    )
    spore.set_seed(SEED)
    net = Net(parallel=True)
    lazy = all(p.has_init for p in net.get_parameters())
    ids, target = _data()
    part = slice(rank // MP * BATCH // DP, (rank // MP + 1) * BATCH // DP)
    result = _train(net, ids[part], target[part], reduce=True)
    result["replicas"] = _check_replicas(net, rank)
    result.update(rank=rank, world=world, lazy_before_init=lazy)
    spore.set_seed(SEED)
    result["cell"] = _train_cell(Net(parallel=True), ids[part], target[part])
    result["reducer"] = _reducer_groups(rank)
    (out / f"rank{rank}.json").write_text(json.dumps(result))
    release()
    if rank == 0:  # the same network in one process, on the whole batch
        spore.reset_auto_parallel_context()
        spore.set_seed(SEED)
        reference = _train(Net(parallel=False), ids, target, reduce=False)
        (out / "reference.json").write_text(json.dumps(reference))


if __name__ == "__main__":
    main()
