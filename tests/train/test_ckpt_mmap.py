"""Mapped .ckpt loads: views of the file where the bytes are aligned, copies elsewhere.

See Note [mapped loads] (spore/train/_ckpt_mmap.py) and Note [aligned payloads]
(spore/train/_ckpt_format.py). Whether a tensor is a view of the file is read
from /proc/self/maps: its data must lie in a mapping of the file.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from spore import Tensor, load_checkpoint, save_checkpoint
from spore import dtype as mstype
from spore.train import _ckpt_format, _ckpt_mmap

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="reads /proc/self/maps"
)

BIG = 70_000  # elements: over MAP_MIN_BYTES for every dtype


def _in_a_map_of(tensor: torch.Tensor, path: Path) -> bool:
    """Whether ``tensor``'s first byte lies in a mapping of the file ``path``."""
    address = tensor.data_ptr()
    target = str(path.resolve())
    with open("/proc/self/maps") as maps:
        for line in maps:
            fields = line.split(maxsplit=5)
            if len(fields) == 6 and fields[5].startswith(target):
                start, end = (int(x, 16) for x in fields[0].split("-"))
                if start <= address < end:
                    return True
    return False


def _offsets(path: Path) -> list[int]:
    with open(path, "rb") as file:
        index = _ckpt_format.read_index(file.fileno(), str(path))
    return [offset for record in index.records for offset, _ in record.chunks]


def _save(path: Path, **values: torch.Tensor) -> None:
    save_checkpoint({k: Tensor.from_torch(v) for k, v in values.items()}, str(path))


def test_a_large_tensor_is_a_view_of_the_file(tmp_path: Path) -> None:
    path = tmp_path / "m.ckpt"
    data = torch.randn(300, 250)
    _save(path, w=data)
    loaded = load_checkpoint(str(path))["w"].to_torch()
    assert _in_a_map_of(loaded, path)
    assert loaded.data_ptr() % _ckpt_format.ALIGNMENT == 0
    assert torch.equal(loaded, data)


def test_a_small_tensor_is_copied(tmp_path: Path) -> None:
    path = tmp_path / "m.ckpt"
    _save(path, b=torch.ones(10), w=torch.randn(300, 250))
    loaded = load_checkpoint(str(path))
    assert not _in_a_map_of(loaded["b"].to_torch(), path)
    assert _in_a_map_of(loaded["w"].to_torch(), path)


def test_a_misaligned_tensor_is_copied_not_viewed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_ckpt_format, "ALIGNMENT", 1)  # MindSpore's layout
    path = tmp_path / "m.ckpt"
    data = torch.randn(300, 250)
    _save(path, w=data)
    loaded = load_checkpoint(str(path))["w"].to_torch()
    assert _offsets(path)[0] % 4 != 0  # the bytes really are misaligned
    assert not _in_a_map_of(loaded, path)
    assert loaded.data_ptr() % 4 == 0 and torch.equal(loaded, data)


@pytest.mark.parametrize("dtype", [mstype.bool_, *mstype.number_type], ids=str)
def test_every_dtype_is_aligned_and_mapped(tmp_path: Path, dtype: mstype.Type) -> None:
    torch_dtype = mstype.to_torch(dtype)
    base = torch.arange(BIG, dtype=torch.float64) % 251 - 7
    data = (base > 0) if dtype is mstype.bool_ else base.abs().to(torch_dtype)
    path = tmp_path / "m.ckpt"
    _save(path, x=data, y=data[:5])
    loaded = load_checkpoint(str(path))
    assert [o % _ckpt_format.ALIGNMENT for o in _offsets(path)] == [0, 0]
    assert _in_a_map_of(loaded["x"].to_torch(), path)
    assert torch.equal(loaded["x"].to_torch(), data)
    assert torch.equal(loaded["y"].to_torch(), data[:5])


def test_a_chunked_tensor_is_one_view_of_its_page_aligned_chunks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_ckpt_format, "SLICE_SIZE_BYTES", 64 * 1024)
    path = tmp_path / "m.ckpt"
    data = torch.randn(83_000, dtype=torch.float64)  # 664 000 bytes: 11 chunks
    _save(path, a=torch.ones(3), big=data)
    loaded = load_checkpoint(str(path))["big"].to_torch()
    starts = _offsets(path)[1:]
    assert len(starts) == 11
    assert all(start % (64 * 1024) == 0 for start in starts)  # the slice size
    assert _in_a_map_of(loaded, path)
    assert torch.equal(loaded, data)


def test_chunks_that_are_not_page_aligned_are_copied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_ckpt_format, "SLICE_SIZE_BYTES", 100_000)  # not page sized
    path = tmp_path / "m.ckpt"
    data = torch.randn(83_000, dtype=torch.float64)
    _save(path, big=data)
    loaded = load_checkpoint(str(path))["big"].to_torch()
    assert len(_offsets(path)) == 7
    assert not _in_a_map_of(loaded, path)
    assert torch.equal(loaded, data)


def test_writes_to_a_mapped_tensor_stay_private(tmp_path: Path) -> None:
    path = tmp_path / "m.ckpt"
    _save(path, w=torch.zeros(300, 250))
    before = path.read_bytes()
    loaded = load_checkpoint(str(path))["w"].to_torch()
    with torch.no_grad():
        loaded.add_(1.0)  # an optimizer step, in place
    assert path.read_bytes() == before
    assert float(load_checkpoint(str(path))["w"].asnumpy().sum()) == 0.0


def test_saving_over_a_loaded_file_leaves_its_tensors_intact(tmp_path: Path) -> None:
    path = tmp_path / "m.ckpt"
    _save(path, w=torch.zeros(300, 250))
    loaded = load_checkpoint(str(path))["w"].to_torch()
    _save(path, w=torch.ones(300, 250))  # renamed over the mapped file
    assert float(loaded.detach().sum()) == 0.0
    assert float(load_checkpoint(str(path))["w"].asnumpy().sum()) == 300 * 250


def test_spore_ckpt_mmap_0_turns_mapping_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "m.ckpt"
    data = torch.randn(300, 250)
    _save(path, w=data)
    monkeypatch.setenv("SPORE_CKPT_MMAP", "0")
    loaded = load_checkpoint(str(path))["w"].to_torch()
    assert not _in_a_map_of(loaded, path)
    assert torch.equal(loaded, data)


def test_non_01_bool_bytes_in_a_mapped_tensor_are_normalised(tmp_path: Path) -> None:
    path = tmp_path / "m.ckpt"
    _save(path, flags=torch.zeros(BIG, dtype=torch.bool))
    (start,) = _offsets(path)
    raw = bytearray(path.read_bytes())
    raw[start + 10] = 2  # MindSpore reads any non-zero byte as True
    path.chmod(0o600)
    path.write_bytes(bytes(raw))
    loaded = load_checkpoint(str(path))["flags"].to_torch()
    assert _in_a_map_of(loaded, path)
    assert loaded.view(torch.uint8)[10].item() == 1 and int(loaded.detach().sum()) == 1
    assert path.read_bytes() == bytes(raw)  # normalised in private pages


def test_crc_checked_load_maps_too(tmp_path: Path) -> None:
    path = tmp_path / "m.ckpt"
    data = torch.randn(300, 250)
    save_checkpoint({"w": Tensor.from_torch(data)}, str(path), crc_check=True)
    loaded = load_checkpoint(str(path), crc_check=True)["w"].to_torch()
    assert _in_a_map_of(loaded, path) and torch.equal(loaded, data)


_TRUNCATE = textwrap.dedent(
    """
    import os, sys
    from spore import load_checkpoint
    path = sys.argv[1]
    w = load_checkpoint(path)["w"].to_torch()
    os.chmod(path, 0o600)
    os.truncate(path, 0)  # in place, under the mapped tensor
    print(float(w.sum()))
    """
)


def test_truncating_the_file_under_a_mapped_tensor_raises_sigbus(
    tmp_path: Path,
) -> None:
    # Documented, as for safetensors: rewrite checkpoints by renaming (as spore's
    # saves do), never in place, while tensors loaded from them live.
    path = tmp_path / "m.ckpt"
    _save(path, w=torch.ones(300, 250))
    done = subprocess.run(
        [sys.executable, "-c", _TRUNCATE, str(path)], capture_output=True, timeout=120
    )
    assert done.returncode == -signal.SIGBUS


def test_the_map_is_released_with_the_last_tensor(tmp_path: Path) -> None:
    path = tmp_path / "m.ckpt"
    _save(path, w=torch.randn(300, 250))
    loaded = load_checkpoint(str(path))
    view = loaded["w"].to_torch()[10:20]
    del loaded
    assert _in_a_map_of(view, path)
    address = view.data_ptr()
    del view
    with open("/proc/self/maps") as maps:
        ranges = [line.split()[0] for line in maps if str(path.resolve()) in line]
    assert ranges == [], (hex(address), ranges)


def test_mapping_needs_no_open_file_descriptor(tmp_path: Path) -> None:
    path = tmp_path / "m.ckpt"
    _save(path, w=torch.randn(300, 250))
    before = len(os.listdir("/proc/self/fd"))
    loaded = [load_checkpoint(str(path)) for _ in range(20)]
    assert len(os.listdir("/proc/self/fd")) == before
    assert all(_in_a_map_of(d["w"].to_torch(), path) for d in loaded)


def test_without_libc_pythons_mmap_maps_whole_tensors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_ckpt_mmap, "_LIBC", None)  # what non-Linux systems get
    monkeypatch.setattr(_ckpt_format, "SLICE_SIZE_BYTES", 64 * 1024)
    path = tmp_path / "m.ckpt"
    whole, chunked = torch.randn(300, 250), torch.randn(83_000, dtype=torch.float64)
    save_checkpoint(
        {"w": Tensor.from_torch(whole), "c": Tensor.from_torch(chunked)}, str(path)
    )
    monkeypatch.setattr(_ckpt_format, "SLICE_SIZE_BYTES", 512 * 1024 * 1024)
    _save(path.with_name("one.ckpt"), w=whole)
    loaded = load_checkpoint(str(path.with_name("one.ckpt")))["w"].to_torch()
    both = load_checkpoint(str(path))
    assert _in_a_map_of(loaded, path.with_name("one.ckpt"))
    assert not _in_a_map_of(both["c"].to_torch(), path)  # chunks: copied
    assert torch.equal(loaded, whole) and torch.equal(both["c"].to_torch(), chunked)


def _drop_from_page_cache(path: Path, start: int = 0) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, start, 0, os.POSIX_FADV_DONTNEED)  # clean pages: dropped
    finally:
        os.close(fd)


def _record_advice(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int, int]]:
    advised: list[tuple[int, int, int]] = []
    monkeypatch.setattr(
        _ckpt_mmap._LIBC,
        "madvise",
        lambda address, length, advice: advised.append((address, length, advice)),
    )
    return advised


@pytest.mark.skipif(_ckpt_mmap._LIBC is None, reason="needs libc's mmap and mincore")
def test_read_ahead_covers_uncached_ranges_whole_and_skips_cached_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Note [mapped loads]: cached ranges are left to fault in at first touch;
    # others are read ahead whole, in pieces no kernel window truncates.
    advised = _record_advice(monkeypatch)
    path = tmp_path / "m.ckpt"
    _save(path, w=torch.randn(1024, 1024))  # fsynced: its pages are clean
    path.read_bytes()  # now cached
    cached = load_checkpoint(str(path))["w"].to_torch()
    assert advised == []
    _drop_from_page_cache(path)
    cold = load_checkpoint(str(path))["w"].to_torch()
    assert {advice for _, _, advice in advised} == {_ckpt_mmap._MADV_WILLNEED}
    assert all(length <= _ckpt_mmap._READ_AHEAD_STEP for _, length, _ in advised)
    for (address, length, _), (after, _, _) in itertools.pairwise(advised):
        assert after == address + length  # no gaps
    first, start = advised[0][0], cold.data_ptr()
    end = advised[-1][0] + advised[-1][1]
    assert first <= start and start + cold.nbytes <= end  # the whole tensor
    assert first > start - _ckpt_mmap._PAGE  # and no more than its pages
    assert torch.equal(cached, cold)


@pytest.mark.skipif(_ckpt_mmap._LIBC is None, reason="needs libc's mmap and mincore")
def test_a_cached_file_is_judged_once_not_tensor_by_tensor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Note [mapped loads]: a warm load of many tensors samples the file once
    # instead of three pages per tensor.
    advised = _record_advice(monkeypatch)
    libc = _ckpt_mmap._LIBC
    assert libc is not None
    probes: list[int] = []
    real_mincore = libc.mincore
    monkeypatch.setattr(
        libc, "mincore", lambda *args: probes.append(1) or real_mincore(*args)
    )
    tensors = {f"w{i}": torch.randn(64, 1024) for i in range(100)}  # 256 KiB each
    path = tmp_path / "m.ckpt"
    _save(path, **tensors)
    path.read_bytes()  # now cached
    loaded = load_checkpoint(str(path))
    assert advised == []
    assert 0 < len(probes) <= _ckpt_mmap._FILE_SAMPLES < 3 * len(tensors)
    for name, tensor in tensors.items():
        assert torch.equal(loaded[name].to_torch(), tensor)


@pytest.mark.skipif(_ckpt_mmap._LIBC is None, reason="needs libc's mmap and mincore")
def test_a_partly_cached_file_reads_ahead_its_uncached_tensors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    advised = _record_advice(monkeypatch)
    first, second = torch.randn(1024, 1024), torch.randn(1024, 1024)  # 4 MiB each
    path = tmp_path / "m.ckpt"
    _save(path, a=first, b=second)
    path.read_bytes()  # cached, then b's half dropped again:
    _drop_from_page_cache(path, start=path.stat().st_size // 2)
    loaded = load_checkpoint(str(path))
    second_view = loaded["b"].to_torch()
    start, end = second_view.data_ptr(), second_view.data_ptr() + second_view.nbytes
    inside = [(a, n) for a, n, _ in advised if a < end and a + n > start]
    asked = sum(min(a + n, end) - max(a, start) for a, n in inside)
    assert asked >= second_view.nbytes - _ckpt_mmap._PAGE  # b read ahead whole
    assert torch.equal(loaded["a"].to_torch(), first)
    assert torch.equal(second_view, second)


@pytest.mark.skipif(_ckpt_mmap._LIBC is None, reason="needs libc's mmap and mincore")
def test_read_ahead_stops_at_half_the_available_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A file larger than memory must not be read ahead whole: pages read early
    # would push out the ones being used. Half of MemAvailable per file.
    advised = _record_advice(monkeypatch)
    monkeypatch.setattr(_ckpt_mmap, "_available_memory", lambda: 2 * 1024 * 1024)
    path = tmp_path / "m.ckpt"
    a, b = torch.randn(512, 1024), torch.randn(512, 1024)  # 2 MiB each
    _save(path, a=a, b=b)
    _drop_from_page_cache(path)
    loaded = load_checkpoint(str(path))
    assert sum(length for _, length, _ in advised) == 1024 * 1024
    assert torch.equal(loaded["a"].to_torch(), a)  # the rest faults in as read
    assert torch.equal(loaded["b"].to_torch(), b)
