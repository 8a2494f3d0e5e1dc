"""Per-step time of spore's ``TrainOneStepCell`` against a hand-written PyTorch loop.

The network is the digits demo's CNN (``spore/examples/digits_demo.py``: two
3x3 convolutions with max pooling, two Dense layers; 53,002 parameters) on
batches of 8x8 images. spore runs ``TrainOneStepCell(WithLossCell(net,
SoftmaxCrossEntropyWithLogits(sparse=True, reduction='mean')), Momentum(lr,
0.9))`` (a constant learning rate here); PyTorch runs the same network built
from ``torch.nn`` with the same initial weights and ``torch.optim.SGD(lr,
momentum=0.9)`` (the same update as MindSpore's Momentum), stepping ``zero_grad();
loss = F.cross_entropy(model(x), y); loss.backward(); opt.step()``. Neither
reads the loss back to Python.

Steps alternate between the two (in a rotating order) so drift in the machine's
speed hits both alike; the median of ``--steps`` timed steps after ``--warmup``
is reported, for 1 thread and for torch's default thread count. Before timing, both
train 20 steps on the same batches and the largest weight difference is printed
(float32 rounding only: ~1e-7).

    python bench/bench_train_step.py [--batch 32] [--steps 2000] [--warmup 200]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # spore from this tree

import spore
from spore import Tensor, nn
from spore.examples.digits_demo import DigitsCNN
from spore.nn.optim import Momentum


class TorchDigitsCNN(torch.nn.Module):
    """DigitsCNN in torch.nn ('same' 3x3 convolutions pad 1 on every side)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = torch.nn.Conv2d(1, 32, 3, padding=1)
        self.conv2 = torch.nn.Conv2d(32, 64, 3, padding=1)
        self.pool = torch.nn.MaxPool2d(2, 2)
        self.fc1 = torch.nn.Linear(256, 128)
        self.fc2 = torch.nn.Linear(128, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        x = F.relu(self.fc1(torch.flatten(x, 1)))
        return self.fc2(x)


def build(
    lr: float,
) -> tuple[nn.Cell, DigitsCNN, torch.nn.Module, torch.optim.Optimizer]:
    spore.set_seed(0)
    net = DigitsCNN()
    loss_fn = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
    train = nn.TrainOneStepCell(
        nn.WithLossCell(net, loss_fn),
        Momentum(net.trainable_params(), learning_rate=lr, momentum=0.9),
    )
    train.set_train()
    model = TorchDigitsCNN()
    with torch.no_grad():
        for (_, theirs), mine in zip(
            model.named_parameters(), net.get_parameters(), strict=True
        ):
            theirs.copy_(mine.to_torch())
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    return train, net, model, opt


def measure(batch: int, steps: int, warmup: int, threads: int, lr: float) -> dict:
    torch.set_num_threads(threads)
    train, net, model, opt = build(lr)
    rng = np.random.default_rng(0)
    batches = [
        (
            rng.random((batch, 1, 8, 8), dtype=np.float32),
            rng.integers(0, 10, batch).astype(np.int64),
        )
        for _ in range(16)
    ]
    spore_batches = [(Tensor(x), Tensor(y.astype(np.int32))) for x, y in batches]
    torch_batches = [(torch.from_numpy(x), torch.from_numpy(y)) for x, y in batches]

    def spore_step(i: int) -> None:
        x, y = spore_batches[i % len(spore_batches)]
        train(x, y)

    def torch_step(i: int) -> None:
        x, y = torch_batches[i % len(torch_batches)]
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()

    runners = {"spore": spore_step, "torch": torch_step}
    times: dict[str, list[float]] = {name: [] for name in runners}
    for i in range(warmup + steps):
        order = list(runners) if i % 2 == 0 else list(reversed(runners))
        for name in order:
            start = time.perf_counter()
            runners[name](i)
            elapsed = time.perf_counter() - start
            if i >= warmup:
                times[name].append(elapsed)
    return {name: statistics.median(t) for name, t in times.items()}


def max_weight_diff(batch: int, steps: int, lr: float) -> float:
    """Train both for ``steps`` steps on the same batches; the largest weight gap."""
    train, net, model, opt = build(lr)
    rng = np.random.default_rng(1)
    for _ in range(steps):
        x = rng.random((batch, 1, 8, 8), dtype=np.float32)
        y = rng.integers(0, 10, batch).astype(np.int64)
        train(Tensor(x), Tensor(y.astype(np.int32)))
        opt.zero_grad()
        F.cross_entropy(model(torch.from_numpy(x)), torch.from_numpy(y)).backward()
        opt.step()
    with torch.no_grad():
        return max(
            float((mine.to_torch() - theirs).abs().max())
            for mine, theirs in zip(
                net.get_parameters(), model.parameters(), strict=True
            )
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--lr", type=float, default=0.05)
    args = parser.parse_args()
    default_threads = torch.get_num_threads()
    print(
        f"digits CNN, batch {args.batch}, median of {args.steps} steps after "
        f"{args.warmup} warm-up, torch {torch.__version__}\n"
    )
    diff = max_weight_diff(args.batch, 20, args.lr)
    print(f"same weights after 20 steps: max |spore - torch| = {diff:.1e}\n")
    print("| threads | spore TrainOneStepCell | torch loop | spore / torch |")
    print("|---:|---:|---:|---:|")
    for threads in dict.fromkeys((1, default_threads)):
        result = measure(args.batch, args.steps, args.warmup, threads, args.lr)
        ratio = result["spore"] / result["torch"]
        print(
            f"| {threads} | {result['spore'] * 1e6:.0f} us "
            f"| {result['torch'] * 1e6:.0f} us "
            f"| {ratio:.3f}x |"
        )
    torch.set_num_threads(default_threads)


if __name__ == "__main__":
    main()
