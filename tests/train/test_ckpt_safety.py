"""Hostile, truncated and wrong-format files; atomic saves under SIGKILL; no pickle."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import save_file

from spore import Tensor, load_checkpoint, save_checkpoint
from spore.train import _ckpt_encode, _ckpt_writer

FIXTURES = Path(__file__).resolve().parents[2].parent / "shared/fixtures/mindspore-ckpt"
MIXED = FIXTURES / "mixed_dtypes.ckpt"
needs_fixtures = pytest.mark.skipif(
    not MIXED.is_file(), reason="the MindSpore checkpoint fixtures are not here"
)


def _entry(tag: str, dims: list[int], type_name: str, content: bytes) -> bytes:
    head = _ckpt_encode._entry_header(
        tag.encode(), dims, type_name.encode(), len(content)
    )
    return head + content


def _file(tmp_path: Path, raw: bytes, name: str = "x.ckpt") -> str:
    path = tmp_path / name
    path.write_bytes(raw)
    return str(path)


GOOD = _entry("w", [2], "Float32", b"\x00\x00\x80\x3f" * 2)


# ---- hostile headers -----------------------------------------------------------------


def test_huge_declared_length_is_refused_before_allocating(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    allocations: list[Any] = []
    monkeypatch.setattr(torch, "empty", lambda *a, **k: allocations.append(a))
    head = _ckpt_encode._entry_header(b"w", [2**38], b"Float32", 2**40)
    path = _file(tmp_path, head + b"\x00" * 64)
    with pytest.raises(ValueError, match=r"declares \d+ bytes but only \d+ remain"):
        load_checkpoint(path)
    assert allocations == []


def test_huge_dims_with_little_content_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    allocations: list[Any] = []
    monkeypatch.setattr(torch, "empty", lambda *a, **k: allocations.append(a))
    path = _file(tmp_path, _entry("w", [2**40, 2**40], "Float32", b"\x00" * 4))
    with pytest.raises(ValueError, match=r"declares shape .* but holds 4 bytes"):
        load_checkpoint(path)
    assert allocations == []


def test_negative_dims_are_refused(tmp_path: Path) -> None:
    path = _file(tmp_path, _entry("w", [-1], "Float32", b"\x00" * 4))
    with pytest.raises(ValueError, match=r"'w' has negative dims \(-1,\)"):
        load_checkpoint(path)
    assert True


def test_unknown_dtype_string_is_refused(tmp_path: Path) -> None:
    path = _file(tmp_path, _entry("w", [1], "Float8E4M3", b"\x00"))
    with pytest.raises(ValueError, match=r"unknown tensor_type 'Float8E4M3'"):
        load_checkpoint(path)
    assert True


def test_r1x_unsigned_spelling_is_accepted(tmp_path: Path) -> None:
    path = _file(tmp_path, _entry("u", [2], "Uint16", b"\x01\x00\x02\x00"))
    loaded = load_checkpoint(path)["u"]
    assert (str(loaded.dtype), loaded.to_torch().tolist()) == ("UInt16", [1, 2])


def test_overlong_varint_is_refused(tmp_path: Path) -> None:
    path = _file(tmp_path, b"\x0a" + b"\xff" * 11 + b"\x01")
    with pytest.raises(ValueError, match=r"longer than 10 bytes"):
        load_checkpoint(path)
    assert True


def test_unexpected_top_level_field_is_refused(tmp_path: Path) -> None:
    path = _file(tmp_path, GOOD + b"\x10\x01")
    with pytest.raises(ValueError, match=r"unexpected field key 0x10"):
        load_checkpoint(path)
    assert True


def test_map_parameter_entries_are_refused_clearly(tmp_path: Path) -> None:
    value = b"\x0a\x01m" + b"\x1a\x00"  # tag "m", maptensor (field 3), empty
    path = _file(tmp_path, b"\x0a" + bytes([len(value)]) + value)
    with pytest.raises(ValueError, match=r"MapParameter"):
        load_checkpoint(path)
    assert True


def test_entry_without_content_is_refused(tmp_path: Path) -> None:
    tensor = b"\x08\x01\x12\x07Float32"  # dims [1], no tensor_content
    value = b"\x0a\x01w\x12" + bytes([len(tensor)]) + tensor
    path = _file(tmp_path, b"\x0a" + bytes([len(value)]) + value)
    with pytest.raises(
        ValueError, match=r"lacks its 'tensor_type' or 'tensor_content'"
    ):
        load_checkpoint(path)
    assert True


def test_chunks_that_disagree_are_refused(tmp_path: Path) -> None:
    raw = _entry("w", [2], "Float32", b"\x00" * 4) + _entry(
        "w", [3], "Float32", b"\0" * 4
    )
    with pytest.raises(ValueError, match=r"chunks of parameter 'w' disagree"):
        load_checkpoint(_file(tmp_path, raw))
    assert True


def test_content_size_mismatch_is_refused(tmp_path: Path) -> None:
    path = _file(tmp_path, _entry("w", [3], "Float32", b"\x00" * 8))
    with pytest.raises(ValueError, match=r"\(12 bytes\) but holds 8 bytes"):
        load_checkpoint(path)
    assert True


def test_invalid_utf8_name_is_refused(tmp_path: Path) -> None:
    path = _file(
        tmp_path, _entry("w", [1], "Int8", b"\x00").replace(b"\x01w", b"\x01\xff")
    )
    with pytest.raises(ValueError, match=r"parameter name is not valid UTF-8"):
        load_checkpoint(path)
    assert True


def test_non_01_bool_bytes_are_normalised(tmp_path: Path) -> None:
    path = _file(tmp_path, _entry("b", [3], "Bool", b"\x00\x02\xff"))
    loaded = load_checkpoint(path)["b"].to_torch()
    assert loaded.tolist() == [False, True, True]
    assert loaded.view(torch.uint8).tolist() == [0, 1, 1]


def test_repeated_name_after_other_entries_warns_and_later_wins(tmp_path: Path) -> None:
    raw = (
        _entry("w", [1], "Int8", b"\x01")
        + _entry("v", [1], "Int8", b"\x02")
        + _entry("w", [1], "Int8", b"\x03")
    )
    with pytest.warns(UserWarning, match=r"holds the names \['w'\] more than once"):
        loaded = load_checkpoint(_file(tmp_path, raw))
    assert {k: v.to_torch().tolist() for k, v in loaded.items()} == {
        "w": [3],
        "v": [2],
    }


# ---- wrong formats and truncation ----------------------------------------------------


def test_safetensors_file_named_ckpt_is_a_value_error(tmp_path: Path) -> None:
    path = tmp_path / "x.ckpt"
    save_file({"w": torch.ones(2)}, str(path))
    with pytest.raises(ValueError, match=r"not a MindSpore checkpoint"):
        load_checkpoint(str(path))
    assert True


def test_text_file_is_a_value_error(tmp_path: Path) -> None:
    path = _file(tmp_path, json.dumps({"w": [1, 2]}).encode())
    with pytest.raises(ValueError, match=r"'.*x.ckpt' is corrupted or not a MindSpore"):
        load_checkpoint(path)
    assert True


def test_empty_file_is_a_value_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"the file is empty or the filters"):
        load_checkpoint(_file(tmp_path, b""))
    assert True


@needs_fixtures
def test_every_truncation_of_a_fixture_fails_cleanly_or_loads_a_prefix(
    tmp_path: Path,
) -> None:
    raw = MIXED.read_bytes()
    full = list(load_checkpoint(str(MIXED)))
    outcomes = set()
    for cut in range(1, len(raw)):
        path = _file(tmp_path, raw[:cut])
        try:
            names = list(load_checkpoint(path))
        except ValueError as err:
            assert "x.ckpt" in str(err)
            outcomes.add("error")
        else:
            assert names == full[: len(names)]  # cut on an entry boundary
            outcomes.add("prefix")
    assert outcomes == {"error", "prefix"}


@needs_fixtures
def test_truncated_content_names_the_problem(tmp_path: Path) -> None:
    raw = MIXED.read_bytes()
    with pytest.raises(ValueError, match=r"declares \d+ bytes but only \d+ remain"):
        load_checkpoint(_file(tmp_path, raw[:-3]))
    assert True


# ---- atomic saving -------------------------------------------------------------------

_SAVER = textwrap.dedent(
    """
    import sys, torch
    from spore import Tensor, save_checkpoint
    big = {"big": Tensor.from_torch(torch.ones(160 * 1024 * 1024))}  # 640 MiB
    print("ready", flush=True)
    save_checkpoint(big, sys.argv[1])
    print("saved", flush=True)
    """
)


def test_sigkill_mid_save_leaves_the_previous_checkpoint_intact(tmp_path: Path) -> None:
    path = tmp_path / "model.ckpt"
    save_checkpoint({"w": Tensor([1.0, 2.0])}, str(path))
    before = path.read_bytes()
    child = subprocess.Popen(
        [sys.executable, "-c", _SAVER, str(path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        written = 0
        deadline = time.monotonic() + 60
        while not written and time.monotonic() < deadline:
            temps = [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
            written = temps[0].stat().st_size if temps else 0
            time.sleep(0.0005)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        if child.stdout is not None:
            child.stdout.close()
    assert 0 < written < 640 * 1024 * 1024  # killed while the temporary file grew
    assert path.read_bytes() == before
    assert load_checkpoint(str(path))["w"].asnumpy().tolist() == [1.0, 2.0]


def test_failed_save_keeps_the_previous_file_and_removes_the_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "model.ckpt"
    save_checkpoint({"w": Tensor([1.0])}, str(path))
    before = path.read_bytes()

    def half_then_fail(out: Any, entries: Any, crc: bool) -> None:
        out.write(b"\x0a\x05partial")
        raise OSError("No space left on device")

    monkeypatch.setattr(_ckpt_encode, "write_checkpoint", half_then_fail)
    with pytest.raises(OSError, match=r"No space left"):
        save_checkpoint({"w": Tensor([2.0])}, str(path))
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["model.ckpt"]


def test_writes_split_into_many_system_calls_give_the_same_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    values = {"a": Tensor.from_torch(torch.arange(300.0)), "b": Tensor([1, 2, 3])}
    save_checkpoint(values, str(tmp_path / "plain.ckpt"), crc_check=True)
    monkeypatch.setattr(_ckpt_writer, "_MAX_SYSCALL", 7)  # partial writev batches
    monkeypatch.setattr(_ckpt_writer, "_GATHER_BYTES", 5)
    monkeypatch.setattr(_ckpt_writer, "_WRITEBACK_BYTES", 3)
    save_checkpoint(values, str(tmp_path / "split.ckpt"), crc_check=True)
    split = (tmp_path / "split.ckpt").read_bytes()
    assert split == (tmp_path / "plain.ckpt").read_bytes()


def test_writes_cover_whole_aligned_ranges_of_the_write_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Note [overlapped save]: each write fills one aligned _WRITE_STEP range, so
    # the page cache holds the file in folios of that size.
    writes: list[int] = []
    real_writev = os.writev

    def recording_writev(fd: int, buffers: list) -> int:
        written = real_writev(fd, buffers)
        writes.append(written)
        return written

    monkeypatch.setattr(os, "writev", recording_writev)
    step = 64 * 1024
    monkeypatch.setattr(_ckpt_writer, "_WRITE_STEP", step)
    values = {"a": Tensor.from_torch(torch.ones(3 * step // 4 + 5))}  # ~3 steps
    save_checkpoint(values, str(tmp_path / "m.ckpt"))
    ends = list(itertools.accumulate(writes))
    assert ends[-1] == (tmp_path / "m.ckpt").stat().st_size
    assert len(writes) >= 4
    assert all(end % step == 0 for end in ends[:-1])  # only the tail is partial
    assert all(size <= step for size in writes)


def test_checkpoint_modules_use_no_pickle() -> None:
    import spore.train as train

    folder = Path(train.__file__).parent
    modules = [
        "serialization.py",
        "_ckpt_format.py",
        "_ckpt_encode.py",
        "_ckpt_mmap.py",
        "_ckpt_boxes.py",
        "_ckpt_writer.py",
        "_safetensors_format.py",
        "_load_into_net.py",
    ]
    sources = {name: (folder / name).read_text() for name in modules}
    banned = ("import pickle", "torch.load", "np.load", "numpy.load", "allow_pickle")
    found = [(n, b) for n, text in sources.items() for b in banned if b in text]
    assert found == []
