"""One rank of a data-parallel test: ``python dp_worker.py SCENARIO OUT_DIR``.

Started by ``dp_launch.launch`` with torchrun's variables. Each scenario writes
``OUT_DIR/rank{RANK}.json``; the tests read and judge it (nothing is asserted
here, so a failure shows in the test that cares).
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np
import torch

import spore
from spore import Parameter, Tensor, nn
from spore.communication import (
    GlobalComm,
    create_group,
    destroy_group,
    get_group_size,
    get_local_rank,
    get_rank,
    get_world_rank_from_group_rank,
    init,
    release,
)
from spore.nn.wrap.grad_reducer import DistributedGradReducer
from spore.parallel import check_replicas

STEPS = 5
BATCH = 4  # per rank; the single-process reference uses 2 * BATCH


def _params(net: nn.Cell) -> dict[str, list[float]]:
    return {
        p.name: p.asnumpy().astype(np.float64).ravel().tolist()
        for p in net.get_parameters()
    }


def _error_of(action: Any) -> str | None:
    try:
        action()
    except RuntimeError as err:
        return str(err)
    return None


def _data_parallel(broadcast: bool = True) -> None:
    spore.reset_auto_parallel_context()
    spore.set_auto_parallel_context(
        parallel_mode="data_parallel",
        gradients_mean=True,
        parameter_broadcast=broadcast,
        device_num=get_group_size(),
    )


class Mlp(nn.Cell):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Dense(6, 16)
        self.fc2 = nn.Dense(16, 3)
        self.relu = nn.ReLU()

    def construct(self, x: Any) -> Any:
        return self.fc2(self.relu(self.fc1(x)))


def _global_batches() -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(11)
    return [
        (
            rng.normal(size=(2 * BATCH, 6)).astype(np.float32),
            rng.integers(0, 3, 2 * BATCH).astype(np.int32),
        )
        for _ in range(STEPS)
    ]


def _train(net: nn.Cell, batches: list[tuple[np.ndarray, np.ndarray]]) -> list[float]:
    loss_fn = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
    opt = nn.Momentum(net.trainable_params(), 0.1, momentum=0.9)
    step = nn.TrainOneStepCell(nn.WithLossCell(net, loss_fn), opt)
    return [float(step(Tensor(x), Tensor(y)).asnumpy()) for x, y in batches]


def scenario_train(rank: int, world: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    batches = _global_batches()

    # 1. Equivalence: 2 ranks x BATCH == 1 process x 2*BATCH. The ranks start from
    # different weights (seed 7 + rank); the broadcast gives everyone rank 0's.
    _data_parallel()
    spore.set_seed(7 + rank)
    net = Mlp()
    out["differ_before"] = check_replicas(net, on_mismatch="ignore")
    rows = slice(rank * BATCH, (rank + 1) * BATCH)
    shard = [(x[rows], y[rows]) for x, y in batches]
    out["dp_losses"] = _train(net, shard)
    out["dp_params"] = _params(net)
    out["differ_after"] = check_replicas(net, on_mismatch="ignore")
    if rank == 0:  # the single-process reference, same start (seed 7)
        spore.reset_auto_parallel_context()
        spore.set_seed(7)
        ref = Mlp()
        out["ref_losses"] = _train(ref, batches)
        out["ref_params"] = _params(ref)

    # 2. check_replicas finds a perturbed Parameter, on every rank.
    if rank == 1:
        with torch.no_grad():
            net.fc2.bias.to_torch().add_(1.0)
    out["perturbed"] = check_replicas(net, on_mismatch="ignore")
    try:
        check_replicas(net, on_mismatch="raise")
        out["raised"] = None
    except RuntimeError as err:
        out["raised"] = str(err)

    # 3. MindSpore's own example (spec (e)): w broadcast and averaged, lw neither.
    for broadcast in (True, False):
        _data_parallel(broadcast)

        class Net(nn.Cell):
            def __init__(self) -> None:
                super().__init__()
                self.w = Parameter(Tensor(np.full(2, rank + 1.0, np.float32)), name="w")
                self.lw = Parameter(
                    Tensor(np.full(2, 10.0 * (rank + 1), np.float32)),
                    name="lw",
                    layerwise_parallel=True,
                )

            def construct(self, x: Any) -> Any:
                x = x.to_torch()
                return Tensor.from_torch(
                    (x * self.w.to_torch()).sum() + (x * self.lw.to_torch()).sum()
                )

        golden = Net()
        step = nn.TrainOneStepCell(golden, nn.SGD(golden.trainable_params(), 1.0))
        loss = step(Tensor(np.full(2, rank + 1.0, np.float32)))
        out[f"golden_{broadcast}"] = {
            "filter": list(step.grad_reducer.allreduce_filter),
            "w": golden.w.asnumpy().tolist(),
            "lw": golden.lw.asnumpy().tolist(),
            "loss": float(loss.asnumpy()),
        }

    # 4. Overlap: every bucket is launched before backward returns.
    _data_parallel()
    spore.set_seed(3)
    net = Mlp()
    for index, param in enumerate(net.trainable_params()):
        param.comm_fusion = index + 1  # four fusion ids: four buckets
    params = net.trainable_params()
    reducer = DistributedGradReducer(params, mean=True)
    x = torch.randn(BATCH, 6, generator=torch.Generator().manual_seed(rank))
    reducer.prepare_for_backward()
    loss = net(Tensor.from_torch(x)).to_torch().square().sum()
    grads = torch.autograd.grad(loss, [p.to_torch() for p in params])
    engine = reducer._buckets
    out["buckets"] = reducer.buckets
    out["launched_in_backward"] = engine._next == len(engine.buckets)
    reduced = reducer(grads)
    out["returned_views"] = all(a is b for a, b in zip(reduced, grads, strict=True))
    out["reduced_grad_sums"] = [float(g.sum()) for g in reduced]
    local = torch.autograd.grad(
        net(Tensor.from_torch(x)).to_torch().square().sum(),
        [p.to_torch() for p in params],
    )
    out["local_grad_sums"] = [float(g.sum()) for g in local]

    # Misuse is an error on every rank, and the ranks stay in step afterwards.
    reducer.prepare_for_backward()
    loss = net(Tensor.from_torch(x)).to_torch().square().sum()
    grads = torch.autograd.grad(loss, [p.to_torch() for p in params])
    out["replaced"] = _error_of(lambda: reducer(tuple(g.clone() for g in grads)))
    reducer.prepare_for_backward()
    leaves = [p.to_torch() for p in params]
    torch.autograd.grad(net(Tensor.from_torch(x)).to_torch().sum(), leaves)
    again = net(Tensor.from_torch(x)).to_torch().sum()
    error = _error_of(lambda: torch.autograd.grad(again, leaves))
    out["twice"] = error
    out["after_misuse"] = [float(g.sum()) for g in reducer(local)]

    # Group names: MindSpore's world names and create_group.
    names = ("hccl_world_group", "nccl_world_group", "mccl_world_group",
             "gloo_world_group", GlobalComm.WORLD_COMM_GROUP)  # fmt: skip
    out["world_sizes"] = [get_group_size(name) for name in names]
    out["world_name"] = GlobalComm.WORLD_COMM_GROUP
    out["local_rank"] = get_local_rank()
    create_group("pair", [0, 1])
    out["pair"] = [get_rank("pair"), get_world_rank_from_group_rank("pair", 1)]
    pair_reducer = DistributedGradReducer(params, mean=False, group="pair")
    out["pair_sum"] = float(pair_reducer(local)[0].sum())
    destroy_group("pair")

    # 5. A Parameter unused on rank 0 still gets the other ranks' gradient.
    class Branches(nn.Cell):
        def __init__(self) -> None:
            super().__init__()
            self.a = Parameter(Tensor(np.ones(3, np.float32)), name="a")
            self.b = Parameter(Tensor(np.ones(3, np.float32)), name="b")

        def construct(self, x: Any) -> Any:
            y = (x.to_torch() * self.a.to_torch()).sum()
            if rank == 1:
                y = y + 2.0 * self.b.to_torch().sum()
            return Tensor.from_torch(y)

    branches = Branches()
    step = nn.TrainOneStepCell(branches, nn.SGD(branches.trainable_params(), 1.0),
                               return_grad=True)  # fmt: skip
    _, grad_dict = step(Tensor(np.full(3, 1.0 + rank, np.float32)))
    out["unused_grads"] = {k: v.asnumpy().tolist() for k, v in grad_dict.items()}
    out["unused_differ"] = check_replicas(branches, on_mismatch="ignore")

    # 6. bfloat16 Parameters: reduced in float32, returned as bfloat16; spore
    # Tensors in, spore Tensors out (MindSpore's calling convention).
    half = [Parameter(Tensor(np.zeros(4, np.float32)).astype(spore.bfloat16), name="h")]
    reducer = DistributedGradReducer(half, mean=True)
    (g,) = reducer((Tensor(np.full(4, 1.0 + rank, np.float32)).astype(spore.bfloat16),))
    out["half"] = {"type": type(g).__name__, "dtype": str(g.dtype),
                   "values": g.astype(spore.float32).asnumpy().tolist()}  # fmt: skip

    # 7. Model.train in data parallel keeps the replicas equal.
    _data_parallel()
    spore.set_seed(20 + rank)
    net = Mlp()
    loss_fn = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
    model = spore.Model(net, loss_fn, nn.Momentum(net.trainable_params(), 0.1, 0.9))
    model.train(2, shard)
    out["model_differ"] = check_replicas(net, on_mismatch="ignore")
    return out


def _train_until_failure(rank: int, fail: str) -> dict[str, Any]:
    """Train; rank 1 dies (``kill``) or hangs (``hang``) at step 3. Rank 0 reports
    the error it got and how long after rank 1's last step."""
    _data_parallel()
    spore.set_seed(1)
    net = Mlp()
    x = Tensor(np.ones((BATCH, 6), np.float32))
    y = Tensor(np.zeros(BATCH, np.int32))
    loss_fn = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
    step = nn.TrainOneStepCell(
        nn.WithLossCell(net, loss_fn), nn.Momentum(net.trainable_params(), 0.1, 0.9)
    )
    start = time.monotonic()
    for index in range(1000):
        if rank == 1 and index == 3:
            if fail == "kill":
                os._exit(17)
            deadline = time.monotonic() + 60  # hang until rank 0 has reported
            while time.monotonic() < deadline:
                if (OUT / "rank0.json").exists():
                    os._exit(0)
                time.sleep(0.1)
            os._exit(1)
        if index == 3:
            start = time.monotonic()
        try:
            step(x, y)
        except RuntimeError as err:
            return {
                "error": str(err),
                "after_s": time.monotonic() - start,
                "step": index,
            }
    return {"error": None}


def scenario_kill(rank: int, world: int) -> dict[str, Any]:
    return _train_until_failure(rank, "kill")


def scenario_hang(rank: int, world: int) -> dict[str, Any]:
    return _train_until_failure(rank, "hang")


SCENARIOS = {"train": scenario_train, "kill": scenario_kill, "hang": scenario_hang}


def main() -> int:
    global OUT
    scenario, OUT = sys.argv[1], Path(sys.argv[2])
    torch.set_num_threads(1)
    report = OUT / f"rank{os.environ['DP_TEST_ID']}.json"
    if scenario == "init":  # only init(): the misconfigured launches
        start = time.monotonic()
        try:
            init()
            result: dict[str, Any] = {"error": None}
        except RuntimeError as err:
            result = {"error": str(err)}
        result["seconds"] = time.monotonic() - start
        report.write_text(json.dumps(result))
        return 0
    init()
    try:
        result = SCENARIOS[scenario](get_rank(), get_group_size())
    except Exception:
        result = {"crash": traceback.format_exc()}
    report.write_text(json.dumps(result))
    if scenario in ("kill", "hang"):
        os._exit(0)  # the group is broken: leave without a collective goodbye
    release()
    return 0


OUT = Path(".")

if __name__ == "__main__":
    raise SystemExit(main())
