"""Sliced checkpoints: per-rank files + strategy, merging, N -> M resharding."""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import spore
from spore import Parameter, Tensor, load_checkpoint, nn, save_checkpoint
from spore.common.initializer import initializer
from spore.parallel import init_params, shard
from spore.parallel._layout import Layout
from spore.parallel.checkpoint import (
    build_searched_strategy,
    load_distributed_checkpoint,
    merge_sliced_parameter,
    save_sliced_checkpoint,
    save_strategy,
)
from spore.train import _ckpt_format


def _net(world: int, seed: int):
    """Column-parallel Dense, row-parallel Dense and a vocab-split Embedding."""
    spore.set_seed(seed)
    spore.set_auto_parallel_context(parallel_mode="semi_auto_parallel")
    net = nn.SequentialCell([nn.Dense(8, 12), nn.Dense(12, 8), nn.Embedding(16, 4)])
    spore.reset_auto_parallel_context()
    if world > 1:
        shard(net[0], ((1, 1), (world, 1)), world=world)
        shard(net[1], ((1, world), (1, world)), world=world)
        shard(net[2], ((world, 1),), world=world)
    return net


def _reference(seed: int) -> dict[str, np.ndarray]:
    net = _net(1, seed)
    init_params(net)
    return {p.name: p.asnumpy().copy() for p in net.get_parameters()}


def _save_ranks(tmp_path, world: int, seed: int, fmt: str = "ckpt") -> list[str]:
    files = []
    for rank in range(world):
        net = _net(world, seed)
        init_params(net, rank=rank, world=world)
        files.append(save_sliced_checkpoint(net, tmp_path, rank=rank, format=fmt))
    return files


@pytest.mark.parametrize(("n", "m"), [(2, 1), (1, 2), (2, 4), (4, 2), (4, 1), (2, 2)])
def test_resharding_round_trip(tmp_path, n, m):
    expected = _reference(seed=7)
    files = _save_ranks(tmp_path, n, seed=7)
    strategy = str(tmp_path / "strategy.json") if n > 1 else None
    for rank in range(m):
        net = _net(m, seed=99)  # other values, still lazy: the load must replace them
        missing = load_distributed_checkpoint(
            net, files, train_strategy_filename=strategy, rank=rank
        )
        assert missing == []
        for p in net.get_parameters():
            layout = spore.parallel.get_layout(p)
            if layout is None:
                assert np.array_equal(p.asnumpy(), expected[p.name])
                continue
            block = tuple(
                slice(o, o + s)
                for o, s in zip(layout.offsets(rank), layout.slice_shape, strict=True)
            )
            assert p.shape == layout.slice_shape and p.sliced
            assert np.array_equal(p.asnumpy(), expected[p.name][block])


def test_resharding_from_safetensors(tmp_path):
    expected = _reference(seed=3)
    files = _save_ranks(tmp_path, 2, seed=3, fmt="safetensors")
    net = _net(1, seed=5)
    load_distributed_checkpoint(
        net, files, train_strategy_filename=tmp_path / "strategy.json"
    )
    assert all(
        np.array_equal(p.asnumpy(), expected[p.name]) for p in net.get_parameters()
    )


def test_a_rank_reads_only_the_source_slices_it_overlaps(tmp_path, monkeypatch):
    files = _save_ranks(tmp_path, 4, seed=7)
    import spore.parallel.checkpoint as ckpt

    reads = []
    original = ckpt._copy_overlap

    def spy(source: Any, name: str, *args: Any) -> None:
        reads.append((source.path, name))
        original(source, name, *args)

    monkeypatch.setattr(ckpt, "_copy_overlap", spy)
    net = _net(2, seed=1)
    load_distributed_checkpoint(
        net, files, train_strategy_filename=tmp_path / "strategy.json", rank=1
    )
    weight = net[0].weight.name  # rows 6..11 of 12 live in source ranks 2 and 3
    assert sorted(p for p, n in reads if n == weight) == [files[2], files[3]]


def test_strategy_file_round_trip(tmp_path):
    net = _net(2, seed=1)
    save_strategy(net, tmp_path / "s.json")
    got = build_searched_strategy(tmp_path / "s.json")
    assert got[net[0].weight.name] == spore.parallel.get_layout(net[0].weight)
    assert set(got) == {
        p.name for p in net.get_parameters() if spore.parallel.get_layout(p)
    }


def test_bad_strategy_file_is_a_value_error(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text("{}")
    with pytest.raises(ValueError, match=r"is not a strategy file"):
        build_searched_strategy(path)
    assert True


def _slices(values: np.ndarray, layout: Layout, name: str = "w") -> list[Parameter]:
    out = []
    for rank in range(layout.device_num):
        block = tuple(
            slice(o, o + s)
            for o, s in zip(layout.offsets(rank), layout.slice_shape, strict=True)
        )
        out.append(Parameter(Tensor(values[block].copy()), name=name))
    return out


def test_merge_sliced_parameter_with_a_2d_block_strategy():
    full = np.arange(32, dtype=np.float32).reshape(4, 8)
    layout = Layout.create((4, 8), [2, 2], [1, 0])
    merged = merge_sliced_parameter(_slices(full, layout), {"w": layout})
    assert merged.name == "w" and np.array_equal(merged.asnumpy(), full)


def test_merge_sliced_parameter_takes_mindspores_tuple():
    full = np.arange(32, dtype=np.float32).reshape(4, 8)
    layout = Layout.create((4, 8), [2], [-1, 0])
    merged = merge_sliced_parameter(_slices(full, layout), {"w": layout.to_tuple()})
    assert np.array_equal(merged.asnumpy(), full)


def test_merge_without_strategy_concatenates_axis_0():
    parts = [
        Parameter(Tensor(np.full((2, 4), i, np.float32)), name="w") for i in range(4)
    ]
    assert merge_sliced_parameter(parts).shape == (8, 4)


@pytest.mark.parametrize(
    ("args", "exc", "match"),
    [
        (((),), TypeError, r"should be a list"),
        (([],), ValueError, r"is empty"),
        (([Parameter(Tensor([1.0]), name="a"), Parameter(Tensor([1.0]), name="b")],),
         ValueError, r"one name"),
        (([Parameter(Tensor([[1.0]]), name="a"), Parameter(Tensor([1.0]), name="a")],),
         ValueError, r"rank and trailing shape"),
        (([Parameter(Tensor([1.0]), name="a")], {"b": Layout.create((1,), [1], [-1])}),
         KeyError, r"not in the strategy"),
        (([Parameter(Tensor([1.0, 2.0]), name="a")],
          {"a": Layout.create((4,), [2], [0])}),
         ValueError, r"needs 2 slices"),
    ],
)  # fmt: skip
def test_merge_errors(args, exc, match):
    with pytest.raises(exc, match=match):
        merge_sliced_parameter(*args)
    assert True


def test_missing_parameters_are_reported_or_refused(tmp_path):
    files = _save_ranks(tmp_path, 1, seed=7)
    net = nn.SequentialCell([nn.Dense(8, 12), nn.Dense(2, 2)])
    net[1].weight.name = "extra.weight"
    missing = load_distributed_checkpoint(net, files)
    assert "extra.weight" in missing
    with pytest.raises(ValueError, match=r"are in none of the checkpoints"):
        load_distributed_checkpoint(net, files, strict_load=True)


class _OneWeight(nn.Cell):
    def __init__(self) -> None:
        super().__init__()
        spore.set_auto_parallel_context(parallel_mode="semi_auto_parallel")
        self.w = Parameter(initializer("zeros", (64, 1024)), name="w")  # stays lazy
        spore.reset_auto_parallel_context()


@pytest.mark.parametrize("alignment", [1, 64], ids=["mindspore_layout", "aligned"])
def test_resharding_allocates_nothing_beyond_the_local_slice(
    tmp_path, monkeypatch, alignment
):
    # 2 row-split source slices of 128 KiB, 4 column-split target slices of 64 KiB:
    # every target overlaps both sources. Reading a whole source slice (the
    # only way for tensors misaligned in the file, without the mapped byte view)
    # would allocate 128 KiB.
    monkeypatch.setattr(_ckpt_format, "ALIGNMENT", alignment)
    full = torch.arange(64 * 1024, dtype=torch.float32).reshape(64, 1024)
    source = Layout.create((64, 1024), [2], [0, -1])
    files = []
    for rank in range(2):
        rows = slice(32 * rank, 32 * rank + 32)
        path = tmp_path / f"rank_{rank}.ckpt"
        save_checkpoint({"w": Tensor.from_torch(full[rows].clone())}, str(path))
        files.append(str(path))
    save_strategy({"w": source}, tmp_path / "strategy.json")
    with open(files[0], "rb") as file:
        index = _ckpt_format.read_index(file.fileno(), files[0])
    ((offset, _),) = index.records[0].chunks
    assert (offset % 4 != 0) == (alignment == 1)  # the MindSpore layout is misaligned
    allocated: list[int] = []
    empty = torch.empty

    def counting_empty(*args: Any, **kwargs: Any) -> torch.Tensor:
        out = empty(*args, **kwargs)
        allocated.append(out.nbytes)
        return out

    monkeypatch.setattr(torch, "empty", counting_empty)
    for rank in range(4):
        net = _OneWeight()
        spore.parallel.set_layout(net.w, [4], [-1, 0])
        load_distributed_checkpoint(
            net, files, train_strategy_filename=tmp_path / "strategy.json", rank=rank
        )
        columns = slice(256 * rank, 256 * rank + 256)
        assert torch.equal(net.w.to_torch(), full[:, columns])
    assert allocated and max(allocated) == 64 * 256 * 4  # the local slice only


# ---- integrated_save: 2 real ranks (gloo on 127.0.0.1) -------------------------------

WORKER = Path(__file__).with_name("_integrated_save_worker.py")
ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_integrated_save_writes_whole_tensors_gathered_from_two_ranks(tmp_path):
    port = str(_free_port())
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    procs = [
        subprocess.Popen(
            [sys.executable, str(WORKER), str(rank), "2", port, str(tmp_path)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for rank in range(2)
    ]
    logs = []
    for proc in procs:
        try:
            logs.append(proc.communicate(timeout=60)[0])
        except subprocess.TimeoutExpired:
            for other in procs:
                other.kill()
            pytest.fail("an integrated-save rank did not finish within 60 s")
    assert [p.returncode for p in procs] == [0, 0], logs
    spec = importlib.util.spec_from_file_location("_integrated_save_worker", WORKER)
    assert spec is not None and spec.loader is not None
    worker = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(worker)
    reference = worker.build_net(1)  # the same network, unsharded, same seed
    init_params(reference)
    expected = {p.name: p.to_torch().detach() for p in reference.get_parameters()}
    for rank in range(2):
        whole = load_checkpoint(str(tmp_path / f"whole_{rank}.ckpt"))
        slices = load_checkpoint(str(tmp_path / f"slices_{rank}.ckpt"))
        assert whole["rank"].asnumpy().tolist() == rank
        for name, value in expected.items():
            assert torch.equal(whole[name].to_torch(), value), name
        assert slices["0.weight"].shape == (6, 8)
        rows = slice(3 * rank, 3 * rank + 3)
        assert torch.equal(slices["scale"].to_torch(), expected["scale"][rows])


def test_integrated_save_of_a_slice_without_a_process_group_is_refused(tmp_path):
    net = _net(2, seed=1)
    init_params(net, rank=0, world=2)  # a simulated rank: nothing to gather from
    with pytest.raises(RuntimeError, match=r"torch.distributed is not initialised"):
        save_checkpoint(net, str(tmp_path / "x.ckpt"))
    save_checkpoint(net, str(tmp_path / "x.ckpt"), integrated_save=False)
    assert load_checkpoint(str(tmp_path / "x.ckpt"))["0.weight"].shape == (6, 8)
