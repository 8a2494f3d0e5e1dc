"""A small network with an embedding table, trained locally or as a parameter-server
job (run by tests/parallel/test_ps_*.py; one process per role).

    python _ps_script.py OUT_DIR OPTIMIZER STEPS

started by spore.ps_launch, torchrun or with MS_ROLE etc.; every worker takes its
share of each batch and writes OUT_DIR/ps_<worker>.npz with every Parameter's
final values, fetched from the servers where they live there. `train_local` is
the same training in one process on the whole batch (the tests' reference).
Environment knobs for fault tests:
SPORE_TEST_DIE_AT (a step at which worker SPORE_TEST_DIE_WORKER exits abruptly),
SPORE_TEST_STEP_SLEEP (seconds to wait after each step), SPORE_TEST_SERVERS_TABLE
(init_in_server on the table: "1", default, or "0"), SPORE_TEST_ASYNC ("1").
"""

from __future__ import annotations

import os
import resource
import sys
import time

import numpy as np

import spore
from spore import Tensor, nn

VOCAB, DIM, IDS_PER_ROW, CLASSES, BATCH = 40, 6, 3, 3, 16


class Net(nn.Cell):
    def __init__(self, vocab: int = VOCAB) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab, DIM)
        self.flatten = nn.Flatten()
        self.hidden = nn.Dense(DIM * IDS_PER_ROW, 8)
        self.relu = nn.ReLU()
        self.out = nn.Dense(8, CLASSES)

    def construct(self, ids):
        return self.out(self.relu(self.hidden(self.flatten(self.embedding(ids)))))


def make_optimizer(name: str, params: list) -> nn.Optimizer:
    if name == "momentum":
        return nn.Momentum(params, learning_rate=0.1, momentum=0.9, weight_decay=1e-3)
    if name == "adam":
        return nn.Adam(params, learning_rate=0.02)
    if name == "sgd":  # not PS-capable: refused with a clear error
        return nn.SGD(params, learning_rate=0.1)
    if name == "ftrl":
        return nn.FTRL(params, learning_rate=0.1, l1=1e-3, l2=1e-3)
    raise SystemExit(f"unknown optimizer {name}")


def batches(steps: int) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(0)
    return [
        (
            rng.integers(0, VOCAB, (BATCH, IDS_PER_ROW)).astype(np.int32),
            rng.integers(0, CLASSES, BATCH).astype(np.int32),
        )
        for _ in range(steps)
    ]


def build(vocab: int = VOCAB) -> Net:
    """The network, seeded so that every process makes the same initial values."""
    spore.set_seed(7)
    return Net(vocab)


def train_step(net: Net, optimizer: str) -> nn.Cell:
    opt = make_optimizer(optimizer, net.trainable_params())
    loss_fn = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
    return nn.TrainOneStepCell(nn.WithLossCell(net, loss_fn), opt)


def train_local(optimizer: str, steps: int) -> dict[str, np.ndarray]:
    """Local training on the whole batch (in the caller's process): every
    Parameter's final values."""
    net = build()
    train = train_step(net, optimizer)
    for ids, labels in batches(steps):
        train(Tensor(ids), Tensor(labels))
    return {p.name: p.asnumpy().copy() for p in train.get_parameters()}


def main() -> None:
    out_dir, opt_name, steps = sys.argv[1], sys.argv[2], int(sys.argv[3])
    spore.set_ps_context(
        enable_ps=True, ps_timeout=float(os.environ.get("SPORE_TEST_TIMEOUT", "20")),
        ps_sync=os.environ.get("SPORE_TEST_ASYNC") != "1",
    )  # fmt: skip
    spore.set_auto_parallel_context(parallel_mode="data_parallel", gradients_mean=True)
    from spore.communication import get_group_size, get_rank, init

    init()  # a server never comes back from here
    rank, size = get_rank(), get_group_size()
    net = build(int(os.environ.get("SPORE_TEST_VOCAB", VOCAB)))
    table = net.embedding.embedding_table
    table.set_param_ps(
        init_in_server=os.environ.get("SPORE_TEST_SERVERS_TABLE", "1") == "1"
    )
    net.hidden.weight.set_param_ps()
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    train = train_step(net, opt_name)
    die_at = int(os.environ.get("SPORE_TEST_DIE_AT", "-1"))
    die_worker = int(os.environ.get("SPORE_TEST_DIE_WORKER", "1"))
    pause = float(os.environ.get("SPORE_TEST_STEP_SLEEP", "0"))
    if rank == die_worker and die_at >= 0:
        # Die inside step die_at, after the gradients were all-reduced among the
        # workers and before the push: only the servers can notice.
        update = train.optimizer.construct

        def dying(grads):
            if int(train.optimizer.global_step.asnumpy()[0]) == die_at:
                print(f"worker {rank} dies at step {die_at}", flush=True)
                os._exit(3)
            return update(grads)

        train.optimizer.construct = dying
    for step, (ids, labels) in enumerate(batches(steps)):
        loss = train(Tensor(ids[rank::size]), Tensor(labels[rank::size]))
        print(f"worker {rank} step {step} loss {float(loss.asnumpy()):.6f}", flush=True)
        if pause:
            time.sleep(pause)
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    values = {p.name: p.asnumpy() for p in train.get_parameters()}
    values["__table_has_init"] = np.array(table.has_init)
    values["__table_local_bytes"] = np.array(
        0 if table._data is None else table._data.nbytes
    )
    values["__rss_growth_kib"] = np.array(rss_after - rss_before)
    opt = train.optimizer
    position = [id(p) for p in opt.parameters].index(id(net.hidden.weight))
    states = [getattr(opt, prefix)[position] for prefix in opt._state_prefixes]
    values["__ps_state_local_bytes"] = np.array(
        sum(0 if s._data is None else s._data.nbytes for s in states)
    )
    np.savez(os.path.join(out_dir, f"ps_{rank}.npz"), **values)
    if rank == 0 and os.environ.get("SPORE_TEST_CKPT") == "1":
        spore.save_checkpoint(train, os.path.join(out_dir, "ps.ckpt"))
    print(f"worker {rank} done", flush=True)


if __name__ == "__main__":
    main()
