"""ModelCheckpoint and CheckpointConfig during Model.train."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from train_helpers import (
    TupleIteratorDataset,
    cross_entropy,
    dense_net,
    momentum,
    separable_batches,
)

from spore import load_checkpoint, nn
from spore.train import CheckpointConfig, Model, ModelCheckpoint


def _train(callback: ModelCheckpoint, epochs: int = 2, batches: int = 4) -> Model:
    net = dense_net()
    model = Model(net, cross_entropy(), momentum(net))
    data = TupleIteratorDataset(separable_batches(batches))
    model.train(epochs, data, callbacks=callback)
    return model


def test_files_are_named_by_epoch_and_step_and_at_most_n_are_kept(
    tmp_path: Path,
) -> None:
    config = CheckpointConfig(save_checkpoint_steps=2, keep_checkpoint_max=3)
    _train(ModelCheckpoint("net", str(tmp_path), config))
    assert sorted(os.listdir(tmp_path)) == [
        "net-1_4.ckpt",
        "net-2_2.ckpt",
        "net-2_4.ckpt",
    ]


def test_checkpoint_holds_the_optimizer_state(tmp_path: Path) -> None:
    config = CheckpointConfig(save_checkpoint_steps=4, keep_checkpoint_max=1)
    model = _train(ModelCheckpoint("lenet", str(tmp_path), config), epochs=1)
    loaded = load_checkpoint(str(tmp_path / "lenet-1_4.ckpt"))
    assert list(loaded) == [p.name for p in model.train_network.get_parameters()]
    assert {"global_step", "learning_rate", "momentum", "moments.weight"} <= set(loaded)
    trained = {p.name: p for p in model.train_network.get_parameters()}
    assert torch.equal(loaded["weight"].to_torch(), trained["weight"].to_torch())


def test_last_step_is_saved_at_the_end(tmp_path: Path) -> None:
    config = CheckpointConfig(save_checkpoint_steps=3, keep_checkpoint_max=5)
    _train(ModelCheckpoint("n", str(tmp_path), config), epochs=1, batches=4)
    assert sorted(os.listdir(tmp_path)) == ["n-1_3.ckpt", "n-1_4.ckpt"]


def test_existing_files_give_a_numbered_prefix(tmp_path: Path) -> None:
    (tmp_path / "net-1_1.ckpt").write_bytes(b"")
    callback = ModelCheckpoint("net", str(tmp_path), CheckpointConfig(4, 0, 1))
    _train(callback, epochs=1)
    assert callback.latest_ckpt_file_name == str(tmp_path / "net_1-1_4.ckpt")


def test_append_info_adds_epoch_and_step(tmp_path: Path) -> None:
    config = CheckpointConfig(
        save_checkpoint_steps=4, append_info=["epoch_num", "step_num", {"tag": "run7"}]
    )
    _train(ModelCheckpoint("n", str(tmp_path), config), epochs=2)
    loaded = load_checkpoint(str(tmp_path / "n-2_4.ckpt"))
    assert (loaded["epoch_num"].item(), loaded["step_num"].item()) == (2, 8)
    assert loaded["tag"] == "run7"


def test_saved_network_replaces_the_training_network(tmp_path: Path) -> None:
    other = nn.Dense(2, 2)
    config = CheckpointConfig(save_checkpoint_steps=4, saved_network=other)
    _train(ModelCheckpoint("n", str(tmp_path), config), epochs=1)
    assert list(load_checkpoint(str(tmp_path / "n-1_4.ckpt"))) == ["weight", "bias"]


def test_async_and_safetensors_configs_write_their_files(tmp_path: Path) -> None:
    config = CheckpointConfig(
        save_checkpoint_steps=2, keep_checkpoint_max=1, async_save=True,
        format="safetensors",
    )  # fmt: skip
    _train(ModelCheckpoint("n", str(tmp_path), config))
    assert os.listdir(tmp_path) == ["n-2_4.safetensors"]


def test_all_zero_policy_is_a_value_error() -> None:
    with pytest.raises(ValueError, match=r"can not all be 0 or None"):
        CheckpointConfig(0, 0, 0, 0)
    assert True


def test_saved_network_of_wrong_type_is_a_type_error() -> None:
    with pytest.raises(TypeError, match=r"'saved_network' should be a Cell"):
        CheckpointConfig(saved_network="net")  # type: ignore[arg-type]
    assert True


def test_prefix_with_a_slash_is_a_value_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"'prefix' should be a str without '/'"):
        ModelCheckpoint("a/b", str(tmp_path))
    assert True


def test_steps_take_precedence_over_seconds() -> None:
    config = CheckpointConfig(save_checkpoint_steps=10, save_checkpoint_seconds=5)
    assert config.get_checkpoint_policy() == {
        "save_checkpoint_steps": 10,
        "save_checkpoint_seconds": 0,
        "keep_checkpoint_max": 5,
        "keep_checkpoint_per_n_minutes": 0,
    }
