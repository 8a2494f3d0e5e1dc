"""2-rank tensor-parallel training (real processes, gloo on 127.0.0.1) equals the
same network trained in one process."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tp_launch import launch

from spore.parallel import Layout

WORKER = Path(__file__).with_name("_tp_worker.py")


def _run(world: int, out: Path) -> list[dict]:
    launch(WORKER, world, out, timeout=90)
    return [dict(np.load(out / f"rank{r}.npz")) for r in range(world)]


# name -> (dev_mat, tensor_map) the layers declare on 2 ranks.
LAYOUTS = {
    "embed.embedding_table": ([2], [0, -1]),
    "up.weight": ([2], [0, -1]), "up.bias": ([2], [0]),
    "down.weight": ([2], [-1, 0]), "down.bias": ([2], [-1]),
    "head.weight": ([2], [0, -1]), "head.bias": ([2], [0]),
}  # fmt: skip


def test_two_rank_tensor_parallel_training_matches_one_process(tmp_path):
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    (single,) = _run(1, tmp_path / "one")
    ranks = _run(2, tmp_path / "two")
    np.testing.assert_allclose(ranks[0]["losses"], single["losses"], rtol=1e-5)
    np.testing.assert_allclose(ranks[1]["losses"], single["losses"], rtol=1e-5)
    for name, (dev_mat, tensor_map) in LAYOUTS.items():
        layout = Layout.create(single[name].shape, dev_mat, tensor_map)
        for r in range(2):
            block = tuple(
                slice(o, o + s)
                for o, s in zip(layout.offsets(r), layout.slice_shape, strict=True)
            )
            np.testing.assert_allclose(
                ranks[r][name], single[name][block], rtol=1e-5, atol=1e-6
            )
    assert single["losses"][-1] < single["losses"][0]
    # The layers split over the 2 ranks (a named group, then the world); one
    # process keeps them whole.
    assert single["tp_size"].tolist() == [1, 1]
    assert ranks[0]["tp_size"].tolist() == ranks[1]["tp_size"].tolist() == [2, 2]
