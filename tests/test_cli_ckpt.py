"""``spore ckpt show|convert|diff`` (spore/_cli_ckpt.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from spore import Tensor, _cli_ckpt, cli, save_checkpoint
from spore.train import _ckpt_format

FIXTURES = Path(__file__).resolve().parents[1].parent / "shared/fixtures/mindspore-ckpt"
needs_fixtures = pytest.mark.skipif(
    not (FIXTURES / "mixed_dtypes.ckpt").is_file(),
    reason="the MindSpore checkpoint fixtures are not beside this checkout",
)


def _save(path: Path, **values: object) -> str:
    save_checkpoint(
        {k: v if isinstance(v, str) else Tensor(v) for k, v in values.items()},
        str(path),
    )
    return str(path)


def test_show_lists_names_dtypes_and_shapes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _save(tmp_path / "a.ckpt", w=[[1.0, 2.0]], step=[3])
    status = cli.main(["ckpt", "show", path])
    lines = capsys.readouterr().out.splitlines()
    assert status == 0
    assert lines[2].split() == ["w", "Float32", "[1,", "2]", "8"]
    assert lines[3].split() == ["step", "Int64", "[1]", "8"]


def test_show_stats_gives_min_max_mean_std(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _save(tmp_path / "a.ckpt", w=[1.0, 3.0])
    status = cli.main(["ckpt", "show", path, "--stats"])
    row = capsys.readouterr().out.splitlines()[2].split()
    assert status == 0
    assert row[-4:] == ["1", "3", "2", "1"]


@needs_fixtures
def test_convert_there_and_back_reproduces_the_fixture(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_ckpt_format, "ALIGNMENT", 1)  # MindSpore's exact layout
    middle, back = tmp_path / "m.safetensors", tmp_path / "m.ckpt"
    first = cli.main(
        ["ckpt", "convert", str(FIXTURES / "mixed_dtypes.ckpt"), str(middle)]
    )
    second = cli.main(["ckpt", "convert", str(middle), str(back)])
    assert (first, second) == (0, 0)
    assert back.read_bytes() == (FIXTURES / "mixed_dtypes.ckpt").read_bytes()


def test_convert_shows_a_progress_bar_on_a_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_cli_ckpt, "_PROGRESS_MIN_BYTES", 0)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    path = _save(tmp_path / "a.ckpt", w=[1.0, 2.0])
    status = cli.main(["ckpt", "convert", path, str(tmp_path / "a.safetensors")])
    assert status == 0
    assert "converting" in capsys.readouterr().err


def test_convert_to_an_unknown_extension_fails_with_status_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _save(tmp_path / "a.ckpt", w=[1.0])
    status = cli.main(["ckpt", "convert", path, str(tmp_path / "a.npz")])
    assert status == 2
    assert "should end with '.ckpt' or '.safetensors'" in capsys.readouterr().err


def test_diff_of_equal_files_across_formats_is_0(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _save(tmp_path / "a.ckpt", w=[1.0, 2.0], note="x")
    other = tmp_path / "a.safetensors"
    cli.main(["ckpt", "convert", path, str(other)])
    status = cli.main(["ckpt", "diff", path, str(other)])
    assert status == 0
    assert "2 common entries, 0 differences" in capsys.readouterr().out


def test_diff_reports_values_names_and_shapes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = _save(tmp_path / "a.ckpt", w=[1.0, 2.0], b=[1], only_a=[0])
    b = _save(tmp_path / "b.ckpt", w=[1.0, 2.5], b=[1, 2])
    status = cli.main(["ckpt", "diff", a, b])
    out = capsys.readouterr().out
    assert status == 1
    assert "w: values differ (max |a-b| 0.5)" in out
    assert "b: Int64 (1,) vs Int64 (2,)" in out
    assert "only in" in out and "only_a" in out


def test_diff_of_an_unreadable_file_is_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = _save(tmp_path / "a.ckpt", w=[1.0])
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"\x0a\xff\xff\xff\x0f")
    status = cli.main(["ckpt", "diff", good, str(bad)])
    assert status == 2
    assert "bad.ckpt" in capsys.readouterr().err


def test_large_tensor_converts_one_tensor_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads: list[str] = []
    original = _cli_ckpt._Source.read

    def counting(self: _cli_ckpt._Source, name: str) -> object:
        reads.append(name)
        return original(self, name)

    monkeypatch.setattr(_cli_ckpt._Source, "read", counting)
    values = {
        f"t{i}": Tensor.from_torch(torch.full((1000,), float(i))) for i in range(3)
    }
    save_checkpoint(values, str(tmp_path / "a.ckpt"))
    status = cli.main(
        ["ckpt", "convert", str(tmp_path / "a.ckpt"), str(tmp_path / "b.ckpt")]
    )
    assert status == 0
    assert reads == ["t0", "t1", "t2"]
    assert (tmp_path / "b.ckpt").read_bytes() == (tmp_path / "a.ckpt").read_bytes()
