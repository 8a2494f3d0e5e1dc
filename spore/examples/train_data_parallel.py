"""Data-parallel training with spore on torch.distributed, one process per rank.

Run (one machine, two processes, gloo on CPU):

    torchrun --nproc_per_node=2 -m spore.examples.train_data_parallel
    spore demo --nproc 2   # the digits CNN, started through torch.distributed.run

Each rank starts from *different* random weights (seed + rank) so that the
broadcast is visible: ``parameter_broadcast=True`` makes every rank take rank 0's
weights at the first step, except the ``layerwise_parallel`` Parameter, which stays
per rank. Each rank trains on its own shard of every global batch; the
``TrainOneStepCell`` averages the gradients (``gradients_mean=True``) in buckets
while backward runs. At the end ``spore.parallel.check_replicas`` confirms that the
replicas are still bit-identical.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch

import spore
from spore import Parameter, Tensor, nn
from spore.communication import get_group_size, get_rank, init, release
from spore.nn.optim import Momentum
from spore.parallel import check_replicas


class MLP(nn.Cell):
    """Dense(20→64) → ReLU → Dense(64→64) → ReLU → Dense(64→4), plus a per-rank
    output bias (``layerwise_parallel``: neither broadcast nor averaged)."""

    def __init__(self, features: int = 20, hidden: int = 64, classes: int = 4):
        super().__init__()
        self.fc1 = nn.Dense(features, hidden)
        self.fc2 = nn.Dense(hidden, hidden)
        self.fc3 = nn.Dense(hidden, classes)
        self.relu = nn.ReLU()
        self.rank_bias = Parameter(
            Tensor(np.zeros(classes, np.float32)),
            name="rank_bias",
            layerwise_parallel=True,
        )

    def construct(self, x: Any) -> Any:
        x = self.relu(self.fc2(self.relu(self.fc1(x))))
        return self.fc3(x) + self.rank_bias


def synthetic_data(
    seed: int, n_train: int = 2048, n_test: int = 512, features: int = 20
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """4 classes: labels from a fixed random linear map of Gaussian points."""
    rng = np.random.default_rng(seed)
    mixing = rng.normal(size=(features, 4)).astype(np.float32)
    x = rng.normal(size=(n_train + n_test, features)).astype(np.float32)
    y = np.argmax(x @ mixing, axis=1).astype(np.int32)
    return x[:n_train], y[:n_train], x[n_train:], y[n_train:]


def shard_batches(
    x: np.ndarray, y: np.ndarray, batch: int, rank: int, world: int, seed: int
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Rank ``rank``'s part of each global batch of ``batch * world`` samples (the
    same shuffle on every rank; the last partial global batch is dropped)."""
    order = np.random.default_rng(seed).permutation(len(y))
    step = batch * world
    for start in range(0, len(order) - step + 1, step):
        index = order[start + rank * batch : start + (rank + 1) * batch]
        yield x[index], y[index]


def _say(line: str) -> None:
    """One write per line, so the ranks' lines do not interleave mid-line."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _accuracy(net: nn.Cell, x: np.ndarray, y: np.ndarray) -> float:
    with torch.no_grad():
        logits = net(Tensor(x)).asnumpy()
    return float((logits.argmax(axis=1) == y).mean())


def run(args: argparse.Namespace) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    init()
    rank, world = get_rank(), get_group_size()
    spore.set_auto_parallel_context(
        parallel_mode=spore.ParallelMode.DATA_PARALLEL,
        gradients_mean=True,
        parameter_broadcast=True,
        device_num=world,
        global_rank=rank,
    )
    spore.set_seed(args.seed + rank)  # different weights per rank, on purpose
    if args.data == "digits":
        from spore.examples.digits_demo import DigitsCNN, load_digits_split

        x_train, y_train, x_test, y_test = load_digits_split(args.seed, args.limit)
        net: nn.Cell = DigitsCNN()
    else:
        x_train, y_train, x_test, y_test = synthetic_data(args.seed)
        net = MLP(features=x_train.shape[1])
    differ = check_replicas(net, on_mismatch="ignore")
    loss_fn = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
    optimizer = Momentum(net.trainable_params(), args.lr, momentum=args.momentum)
    train = nn.TrainOneStepCell(nn.WithLossCell(net, loss_fn), optimizer)
    train.set_train()
    if rank == 0:
        _say(
            f"{world} ranks, {args.data} data: {len(y_train)} training samples, "
            f"batch {args.batch_size} per rank ({args.batch_size * world} global); "
            f"{len(differ)} Parameters differ across ranks before the broadcast"
        )
    start = time.perf_counter()
    step = 0
    loss = float("nan")
    for epoch in range(1, args.epochs + 1):
        batches = shard_batches(
            x_train, y_train, args.batch_size, rank, world, args.seed + epoch
        )
        losses = []
        for data, label in batches:
            loss = float(train(Tensor(data), Tensor(label)).asnumpy())
            losses.append(loss)
            step += 1
            if args.log_every and step % args.log_every == 0:
                _say(f"[rank {rank}] epoch {epoch} step {step} loss {loss:.4f}")
        _say(f"[rank {rank}] epoch {epoch}: mean loss {np.mean(losses):.4f} over "
             f"{len(losses)} steps")  # fmt: skip
    seconds = time.perf_counter() - start
    train.set_train(False)
    accuracy = _accuracy(net, x_test, y_test)
    diverged = check_replicas(net, on_mismatch="warn")
    checked = sum(1 for p in net.get_parameters() if not p.layerwise_parallel)
    verdict = (
        f"all {checked} Parameters equal across {world} ranks"
        if not diverged
        else f"DIVERGED: {diverged}"
    )
    _say(
        f"[rank {rank}] done: {step} steps in {seconds:.1f} s, last loss {loss:.4f}, "
        f"held-out accuracy {100 * accuracy:.1f}%; replica check: {verdict}"
    )
    release()
    return 0 if not diverged else 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", choices=("synthetic", "digits"), default="synthetic")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32, help="per rank")
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--momentum", type=float, default=0.9)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, default=None, help="digits: use N images")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per rank")
    parser.add_argument(
        "--log-every", type=int, default=0, help="also print every N steps (0: off)"
    )


def launch_demo(args: argparse.Namespace) -> int:
    """``spore demo --nproc N``: N ranks of the digits CNN on this machine, started
    through ``torch.distributed.run`` (torchrun's own entry point, ``--standalone``).
    """
    import importlib.util

    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import get_args_parser
    from torch.distributed.run import run as torchrun

    if importlib.util.find_spec("sklearn") is None:
        print("spore demo needs scikit-learn: pip install 'spore[demo]'.")
        return 1
    forwarded = ["--data", "digits", "--epochs", str(args.epochs),
                 "--batch-size", str(args.batch_size), "--lr", str(args.lr),
                 "--momentum", str(args.momentum), "--seed", str(args.seed),
                 "--threads", str(args.threads or 1)]  # fmt: skip
    if args.limit is not None:
        forwarded += ["--limit", str(args.limit)]
    # torchrun warns when it has to choose OMP_NUM_THREADS itself.
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads or 1))
    launch_args = get_args_parser().parse_args(
        [
            "--standalone",
            f"--nproc_per_node={args.nproc}",
            "-m",
            "spore.examples.train_data_parallel",
            *forwarded,
        ]  # fmt: skip
    )
    try:
        torchrun(launch_args)
    except ChildFailedError as err:
        print(f"spore demo --nproc {args.nproc}: a rank failed: {err}", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m spore.examples.train_data_parallel",
        description="Data-parallel training; launch with torchrun.",
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
