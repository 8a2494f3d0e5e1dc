"""The ``spore`` command (spore/cli.py) and the digits demo it runs."""

from __future__ import annotations

from pathlib import Path

import pytest

import spore
from spore import cli
from spore.examples import digits_demo


def test_seed_prints_the_seed_examples(capsys: pytest.CaptureFixture[str]) -> None:
    status = cli.main(["seed"])
    out = capsys.readouterr().out
    assert status == 0
    assert "Parameter (name=x, shape=(2, 3), dtype=Int64, requires_grad=True)" in out


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    status = cli.main([])
    assert status == 2 and "demo" in capsys.readouterr().out


def test_demo_help_lists_its_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["demo", "--help"])
    out = capsys.readouterr().out
    assert exit_info.value.code == 0
    assert "--epochs" in out and "--limit" in out and "--out" in out


def test_demo_without_its_extras_says_what_to_install(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(digits_demo, "_importable", lambda name: name != "sklearn")
    status = cli.main(["demo", "--out", str(tmp_path)])
    assert status == 1 and "pip install 'spore[demo]'" in capsys.readouterr().out


def test_demo_trains_prints_and_saves_the_plot(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    pytest.importorskip("sklearn")
    pytest.importorskip("matplotlib")
    out_dir = tmp_path / "demo"
    argv = ["demo", "--epochs", "1", "--limit", "200", "--out", str(out_dir)]
    status = cli.main([*argv, "--no-progress"])
    out = capsys.readouterr().out
    assert status == 0
    assert (out_dir / "digits_training.png").stat().st_size > 0
    assert "name          shape           dtype    requires_grad  elements" in out
    assert "conv1.weight  (32, 1, 3, 3)   Float32  True" in out
    assert "trainable parameters: 53,002 in 8 tensors" in out
    assert "held-out accuracy:" in out


def test_demo_checkpoint_reloads_into_a_fresh_network_with_the_same_accuracy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("sklearn")
    pytest.importorskip("matplotlib")
    out_dir = tmp_path / "demo"
    args = ["demo", "--epochs", "1", "--limit", "200", "--out", str(out_dir)]
    status = cli.main([*args, "--no-progress"])
    out = capsys.readouterr().out
    saved = spore.load_checkpoint(str(out_dir / "digits.ckpt"))
    assert status == 0
    assert sorted(saved) == sorted(
        ["conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias",
         "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]
    )  # fmt: skip
    assert "reloaded into a fresh network" in out and "the same" in out


def test_demo_progress_bar_goes_to_stderr(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    pytest.importorskip("sklearn")
    pytest.importorskip("matplotlib")
    cli.main(["demo", "--epochs", "1", "--limit", "100", "--out", str(tmp_path)])
    assert "train: 100%" in capsys.readouterr().err
