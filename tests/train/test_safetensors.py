"""format="safetensors": round trips, zero-copy loads, conversion to and from .ckpt."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from spore import Tensor, load_checkpoint, save_checkpoint
from spore import dtype as mstype
from spore.train import _ckpt_format

FIXTURES = Path(__file__).resolve().parents[2].parent / "shared/fixtures/mindspore-ckpt"
needs_fixtures = pytest.mark.skipif(
    not (FIXTURES / "mixed_dtypes.ckpt").is_file(),
    reason="the MindSpore checkpoint fixtures are not beside this checkout",
)

DTYPES = [mstype.bool_, *mstype.number_type]  # every concrete dtype spore stores


def _data(dtype: mstype.Type, shape: tuple[int, ...]) -> torch.Tensor:
    base = torch.arange(int(torch.tensor(shape).prod()), dtype=torch.float64) - 2
    base = base.reshape(shape)
    if dtype is mstype.bool_:
        return base > 0
    if mstype.kind(dtype) == "uint":
        return base.abs().to(mstype.to_torch(dtype))
    if mstype.kind(dtype) == "complex":
        return torch.complex(base, base / 2).to(mstype.to_torch(dtype))
    return base.to(mstype.to_torch(dtype))


@pytest.mark.parametrize("shape", [(), (0, 2), (2, 3)], ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_every_dtype_round_trips(
    dtype: mstype.Type, shape: tuple[int, ...], tmp_path: Path
) -> None:
    data = _data(dtype, shape)
    path = tmp_path / "t.safetensors"
    save_checkpoint({"x": Tensor.from_torch(data)}, str(path), format="safetensors")
    loaded = load_checkpoint(str(path), format="safetensors")["x"]
    assert (loaded.dtype, loaded.shape) == (dtype, shape)
    assert torch.equal(loaded.to_torch(), data)


def test_order_and_strings_survive(tmp_path: Path) -> None:
    path = tmp_path / "t.safetensors"
    values = {"z": Tensor([1.0]), "a": Tensor([2]), "m": Tensor([True])}
    save_checkpoint(values, str(path), append_dict={"note": "hi"}, format="safetensors")
    loaded = load_checkpoint(str(path), format="safetensors")
    assert list(loaded) == ["z", "a", "m", "note"]
    assert loaded["note"] == "hi"


def test_suffix_is_appended_and_metadata_is_mindsporean(tmp_path: Path) -> None:
    save_checkpoint({"w": Tensor([1.0])}, str(tmp_path / "m"), format="safetensors")
    with safe_open(str(tmp_path / "m.safetensors"), "pt") as file:
        metadata = file.metadata()
    assert metadata["format"] == "ms"
    assert json.loads(metadata["spore.dtypes"]) == {"w": "Float32"}


def _mapped_paths(address: int) -> list[str]:
    found = []
    with open("/proc/self/maps") as maps:
        for line in maps:
            fields = line.split()
            low, high = (int(x, 16) for x in fields[0].split("-"))
            if low <= address < high and len(fields) > 5:
                found.append(fields[5])
    return found


@pytest.mark.skipif(not os.path.exists("/proc/self/maps"), reason="Linux only")
def test_load_maps_the_file_without_copying(tmp_path: Path) -> None:
    path = tmp_path / "t.safetensors"
    save_checkpoint(
        {"w": Tensor.from_torch(torch.ones(1 << 20))}, str(path), format="safetensors"
    )
    loaded = load_checkpoint(str(path), format="safetensors")["w"]
    assert str(path) in _mapped_paths(loaded.to_torch().data_ptr())


def test_writes_to_a_loaded_tensor_stay_private(tmp_path: Path) -> None:
    path = tmp_path / "t.safetensors"
    save_checkpoint({"w": Tensor([1.0, 2.0])}, str(path), format="safetensors")
    before = path.read_bytes()
    loaded = load_checkpoint(str(path), format="safetensors")["w"]
    loaded.set_data(Tensor([5.0, 5.0]))
    assert loaded.asnumpy().tolist() == [5.0, 5.0]
    assert path.read_bytes() == before


def test_saving_over_the_file_leaves_loaded_tensors_intact(tmp_path: Path) -> None:
    # spore replaces a file by renaming a new one over it, so tensors that map the
    # old file keep their values (an in-place rewrite by another tool would not).
    path = tmp_path / "t.safetensors"
    save_checkpoint({"w": Tensor([1.0, 2.0])}, str(path), format="safetensors")
    loaded = load_checkpoint(str(path), format="safetensors")["w"]
    save_checkpoint({"w": Tensor([8.0, 9.0])}, str(path), format="safetensors")
    assert loaded.asnumpy().tolist() == [1.0, 2.0]


@needs_fixtures
@pytest.mark.parametrize(
    "name", ["mixed_dtypes.ckpt", "append_dict.ckpt", "lenet5_train.ckpt"]
)
def test_ckpt_to_safetensors_to_ckpt_gives_the_same_bytes(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_ckpt_format, "ALIGNMENT", 1)  # MindSpore's exact layout
    original = load_checkpoint(str(FIXTURES / name))
    save_checkpoint(original, str(tmp_path / "m.safetensors"), format="safetensors")
    converted = load_checkpoint(str(tmp_path / "m.safetensors"), format="safetensors")
    save_checkpoint(converted, str(tmp_path / name))
    assert (tmp_path / name).read_bytes() == (FIXTURES / name).read_bytes()


def test_plain_safetensors_without_spore_metadata_loads_sorted(tmp_path: Path) -> None:
    path = tmp_path / "hf.safetensors"
    save_file({"b": torch.ones(2), "a": torch.zeros(1, dtype=torch.bfloat16)}, path)
    loaded = load_checkpoint(str(path), format="safetensors")
    assert [(k, str(v.dtype)) for k, v in loaded.items()] == [
        ("a", "BFloat16"),
        ("b", "Float32"),
    ]


def test_crc_is_stored_and_checked(tmp_path: Path) -> None:
    path = tmp_path / "c.safetensors"
    save_checkpoint(
        {"w": Tensor([1.0, 2.0])}, str(path), crc_check=True, format="safetensors"
    )
    values = load_checkpoint(str(path), crc_check=True, format="safetensors")
    loaded = values["w"].asnumpy().tolist()
    del values  # the tensors map the file, which is rewritten in place below
    raw = bytearray(path.read_bytes())
    raw[-1] ^= 0x40
    path.chmod(0o600)
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=r"failed its CRC check"):
        load_checkpoint(str(path), crc_check=True, format="safetensors")
    assert loaded == [1.0, 2.0]


def test_missing_crc_warns(tmp_path: Path) -> None:
    path = tmp_path / "c.safetensors"
    save_checkpoint({"w": Tensor([1.0])}, str(path), format="safetensors")
    with pytest.warns(UserWarning, match=r"has no CRC; it was not verified"):
        loaded = load_checkpoint(str(path), crc_check=True, format="safetensors")
    assert list(loaded) == ["w"]


def test_ckpt_bytes_named_safetensors_are_a_value_error(tmp_path: Path) -> None:
    path = tmp_path / "x.safetensors"
    save_checkpoint({"w": Tensor([1.0])}, str(tmp_path / "x.ckpt"))
    path.write_bytes((tmp_path / "x.ckpt").read_bytes())
    with pytest.raises(ValueError, match=r"x.safetensors' is corrupted or not a safet"):
        load_checkpoint(str(path), format="safetensors")
    assert True


def _rewrite_metadata(path: Path, change: Any) -> None:
    raw = path.read_bytes()
    size = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8 : 8 + size])
    change(header["__metadata__"])
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    path.chmod(0o600)
    path.write_bytes(struct.pack("<Q", len(text)) + text + raw[8 + size :])


def test_metadata_dtype_that_disagrees_is_a_value_error(tmp_path: Path) -> None:
    path = tmp_path / "t.safetensors"
    save_checkpoint({"w": Tensor([1.0])}, str(path), format="safetensors")
    _rewrite_metadata(path, lambda m: m.update({"spore.dtypes": '{"w": "Int32"}'}))
    with pytest.raises(ValueError, match=r"'w' is stored as torch.float32 but its"):
        load_checkpoint(str(path), format="safetensors")
    assert True


def test_broken_metadata_json_is_a_value_error(tmp_path: Path) -> None:
    path = tmp_path / "t.safetensors"
    save_checkpoint({"w": Tensor([1.0])}, str(path), format="safetensors")
    _rewrite_metadata(path, lambda m: m.update({"spore.order": "[oops"}))
    with pytest.raises(ValueError, match=r"'spore.order' is not valid JSON"):
        load_checkpoint(str(path), format="safetensors")
    assert True


def test_filters_apply_to_safetensors(tmp_path: Path) -> None:
    path = tmp_path / "t.safetensors"
    save_checkpoint(
        {"fc.w": Tensor([1]), "bn.w": Tensor([2])}, str(path), format="safetensors"
    )
    assert list(
        load_checkpoint(str(path), filter_prefix="fc", format="safetensors")
    ) == ["bn.w"]
