"""Train a small CNN on scikit-learn's 8x8 handwritten digits with spore.

Run: ``spore demo`` (or ``python -m spore.examples.digits_demo``). Needs the
``demo`` extra: ``pip install 'spore[demo]'`` (scikit-learn, matplotlib, tqdm).

The network, loss, optimizer and training loop are MindSpore code with
``mindspore`` renamed ``spore``: ``nn.Conv2d``/``nn.MaxPool2d``/``nn.Dense`` Cells,
``nn.SoftmaxCrossEntropyWithLogits``, ``nn.Momentum`` and ``Model.fit`` with
callbacks. The digits ship inside scikit-learn, so nothing is downloaded.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

import spore
from spore import Model, nn
from spore.nn.optim import CosineDecayLR, Momentum
from spore.train import Callback, ProgressBar, RunContext

# The defaults: ~98% held-out accuracy in a few seconds on 2 CPU cores.
EPOCHS = 30
BATCH_SIZE = 32
LR = 0.05
MOMENTUM = 0.9
SEED = 0
THREADS = 1
OUT = "spore-demo"


# ---- data ----------------------------------------------------------------------------


class ArrayBatches:
    """``(images, labels)`` numpy batches, reshuffled every epoch (re-iterable).

    Any re-iterable of ``(data, label)`` batches is a dataset for `spore.Model`.
    """

    def __init__(
        self,
        images: np.ndarray,
        labels: np.ndarray,
        batch_size: int,
        shuffle: bool,
        seed: int,
    ) -> None:
        self.images, self.labels = images, labels
        self.batch_size, self.shuffle = batch_size, shuffle
        self._rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return math.ceil(len(self.labels) / self.batch_size)

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        order = np.arange(len(self.labels))
        if self.shuffle:
            self._rng.shuffle(order)
        for start in range(0, len(order), self.batch_size):
            index = order[start : start + self.batch_size]
            yield self.images[index], self.labels[index]


def load_digits_split(
    seed: int, limit: int | None = None, test_fraction: float = 0.2
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, y_train, x_test, y_test): images (N, 1, 8, 8) in [0, 1], int32
    labels, split with stratification by a fixed seed."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)[:, None, :, :]
    labels = digits.target.astype(np.int32)
    if limit is not None and limit < len(labels):
        keep = np.random.default_rng(seed).permutation(len(labels))[:limit]
        images, labels = images[keep], labels[keep]
    x_train, x_test, y_train, y_test = train_test_split(
        images, labels, test_size=test_fraction, random_state=seed, stratify=labels
    )
    return x_train, y_train, x_test, y_test


# ---- network -------------------------------------------------------------------------


class DigitsCNN(nn.Cell):
    """Conv(1→32) → ReLU → MaxPool → Conv(32→64) → ReLU → MaxPool → Dense(256→128)
    → ReLU → Dense(128→10): 8x8 → 4x4 → 2x2 feature maps."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, pad_mode="same", has_bias=True)
        self.conv2 = nn.Conv2d(32, 64, 3, pad_mode="same", has_bias=True)
        self.relu = nn.ReLU()
        self.pool = nn.MaxPool2d(kernel_size=2, stride=2)
        self.flatten = nn.Flatten()
        self.fc1 = nn.Dense(64 * 2 * 2, 128)
        self.fc2 = nn.Dense(128, 10)

    def construct(self, x: Any) -> Any:
        x = self.pool(self.relu(self.conv1(x)))
        x = self.pool(self.relu(self.conv2(x)))
        x = self.relu(self.fc1(self.flatten(x)))
        return self.fc2(x)


# ---- reporting -----------------------------------------------------------------------


class History(Callback):
    """Per epoch: the mean training loss and the evaluation results of `Model.fit`."""

    def __init__(self) -> None:
        self.train_loss: list[float] = []
        self.eval_loss: list[float] = []
        self.accuracy: list[float] = []
        self._losses: list[float] = []

    def on_train_epoch_begin(self, run_context: RunContext) -> None:
        self._losses = []

    def on_train_step_end(self, run_context: RunContext) -> None:
        self._losses.append(float(run_context.original_args().net_outputs.asnumpy()))

    def on_train_epoch_end(self, run_context: RunContext) -> None:
        self.train_loss.append(float(np.mean(self._losses)))
        results = run_context.original_args().get("eval_results") or {}
        if results:
            self.eval_loss.append(results["loss"])
            self.accuracy.append(results["accuracy"])


def parameter_table(net: nn.Cell) -> str:
    """Name, shape, dtype, requires_grad and element count of every Parameter."""
    rows = [("name", "shape", "dtype", "requires_grad", "elements")]
    for param in net.get_parameters():
        rows.append(
            (
                param.name,
                str(tuple(param.shape)),
                str(param.dtype),
                str(param.requires_grad),
                f"{param.size:,}",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for index, row in enumerate(rows):
        cells = [
            text.rjust(width) if column == 4 else text.ljust(width)
            for column, (text, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
        if index == 0:
            lines.append("  ".join("-" * width for width in widths))
    return "\n".join(lines)


def save_plot(history: History, path: Path) -> None:
    """Loss (train and held-out) and held-out accuracy per epoch, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display needed
    import matplotlib.pyplot as plt

    epochs = range(1, len(history.train_loss) + 1)
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot(epochs, history.train_loss, marker="o", label="train")
    if history.eval_loss:
        left.plot(epochs, history.eval_loss, marker="o", label="held-out")
    left.set(title="loss", xlabel="epoch", ylabel="cross entropy", yscale="log")
    left.legend()
    right.plot(epochs, [100 * a for a in history.accuracy], marker="o", color="C2")
    right.set(title="held-out accuracy", xlabel="epoch", ylabel="%")
    right.grid(alpha=0.3)
    fig.suptitle("spore: small CNN on scikit-learn digits (8x8)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


# ---- the demo ------------------------------------------------------------------------


def run(
    epochs: int = EPOCHS,
    batch_size: int = BATCH_SIZE,
    lr: float = LR,
    momentum: float = MOMENTUM,
    seed: int = SEED,
    limit: int | None = None,
    out: str | Path = OUT,
    progress: bool = True,
    threads: int | None = THREADS,
) -> dict[str, Any]:
    """Train and evaluate; print the parameter table and a summary; save the plot.

    Args:
        threads: torch's intra-op threads while the demo runs (None: leave
            torch's setting). One is fastest: the tensors are too small to split.

    Returns:
        ``{"accuracy", "seconds", "trainable", "plot"}``.
    """
    saved_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        return _run(epochs, batch_size, lr, momentum, seed, limit, Path(out), progress)
    finally:
        torch.set_num_threads(saved_threads)


def _run(
    epochs: int,
    batch_size: int,
    lr: float,
    momentum: float,
    seed: int,
    limit: int | None,
    out_dir: Path,
    progress: bool,
) -> dict[str, Any]:
    start = time.perf_counter()
    spore.set_seed(seed)
    x_train, y_train, x_test, y_test = load_digits_split(seed, limit)
    train_data = ArrayBatches(x_train, y_train, batch_size, shuffle=True, seed=seed)
    test_data = ArrayBatches(x_test, y_test, 256, shuffle=False, seed=seed)

    net = DigitsCNN()
    loss_fn = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
    # The learning rate falls from `lr` to 0 along a cosine over the whole run.
    schedule = CosineDecayLR(0.0, lr, max(1, epochs * len(train_data)))
    optimizer = Momentum(net.trainable_params(), schedule, momentum=momentum)
    model = Model(net, loss_fn, optimizer, metrics={"accuracy", "loss"})

    print(
        f"scikit-learn digits: {len(y_train)} training and {len(y_test)} held-out "
        f"images (8x8); {epochs} epochs of batch {batch_size}; Momentum(momentum="
        f"{momentum}), learning rate {lr} with cosine decay; seed {seed}\n"
    )
    print(parameter_table(net), end="\n\n", flush=True)

    history = History()
    callbacks: list[Callback] = [history]
    if progress:
        callbacks.append(ProgressBar(per_epoch=False))
    train_start = time.perf_counter()
    model.fit(epochs, train_data, valid_dataset=test_data, callbacks=callbacks)
    train_seconds = time.perf_counter() - train_start
    accuracy = model.eval(test_data)["accuracy"]

    out_dir.mkdir(parents=True, exist_ok=True)
    # The trained weights go to a checkpoint and come back into a fresh network,
    # which must classify the held-out images exactly as well.
    ckpt = out_dir / "digits.ckpt"
    spore.save_checkpoint(net, str(ckpt))
    fresh = DigitsCNN()
    param_not_load, _ = spore.load_param_into_net(
        fresh, spore.load_checkpoint(str(ckpt))
    )
    if param_not_load:
        raise RuntimeError(f"the checkpoint {ckpt} lacks {param_not_load}")
    reloaded = Model(fresh, loss_fn, metrics={"accuracy"}).eval(test_data)["accuracy"]
    if reloaded != accuracy:
        raise RuntimeError(
            f"the network reloaded from {ckpt} scores {reloaded:.4f}, "
            f"not {accuracy:.4f}"
        )

    plot = out_dir / "digits_training.png"
    save_plot(history, plot)
    seconds = time.perf_counter() - start
    trainable = sum(p.size for p in net.trainable_params())
    print(
        ("\n" if progress else "") + "summary\n"
        f"  trainable parameters: {trainable:,} in {len(net.trainable_params())} "
        "tensors\n"
        f"  held-out accuracy:    {100 * accuracy:.2f}% "
        f"({round(accuracy * len(y_test))}/{len(y_test)})\n"
        f"  training time:        {train_seconds:.1f} s ({epochs} epoch"
        f"{'' if epochs == 1 else 's'}); "
        f"total {seconds:.1f} s\n"
        f"  plot:                 {plot}\n"
        f"  checkpoint:           {ckpt} (reloaded into a fresh network: "
        f"{100 * reloaded:.2f}%, the same)"
    )
    return {
        "accuracy": accuracy,
        "seconds": seconds,
        "trainable": trainable,
        "plot": plot,
        "checkpoint": ckpt,
        "reloaded_accuracy": reloaded,
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The demo's command-line options (shared by ``spore demo``)."""
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE)
    parser.add_argument("--lr", type=float, default=LR)
    parser.add_argument("--momentum", type=float, default=MOMENTUM)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--threads", type=int, default=THREADS, help="torch threads")
    parser.add_argument(
        "--limit", type=int, default=None, help="use only this many images"
    )
    parser.add_argument(
        "--out", default=OUT, help="folder for the plot (./spore-demo/)"
    )
    parser.add_argument(
        "--no-progress", action="store_true", help="hide the progress bar"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="spore demo", description=__doc__)
    add_arguments(parser)
    return run_from_args(parser.parse_args(argv))


def run_from_args(args: argparse.Namespace) -> int:
    missing = [m for m in ("sklearn", "matplotlib", "tqdm") if not _importable(m)]
    if missing:
        print(
            f"spore demo needs {', '.join(missing)}: pip install 'spore[demo]' "
            "(scikit-learn, matplotlib, tqdm)."
        )
        return 1
    run(
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        momentum=args.momentum,
        seed=args.seed,
        limit=args.limit,
        out=args.out,
        progress=not args.no_progress,
        threads=args.threads,
    )
    return 0


def _importable(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


if __name__ == "__main__":
    raise SystemExit(main())
