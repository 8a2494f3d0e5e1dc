"""save_checkpoint / load_checkpoint / load_param_into_net: behaviour and parity."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from spore import (
    Parameter,
    Tensor,
    load_checkpoint,
    load_param_into_net,
    nn,
    save_checkpoint,
)
from spore import dtype as mstype
from spore.train import _ckpt_encode, _ckpt_format, wait_async_save

ALL_DTYPES = [mstype.bool_, *mstype.number_type]  # every concrete dtype spore stores
SHAPES = [(), (0,), (0, 3), (2, 3)]


def _index(path: str) -> _ckpt_format.Index:
    with open(path, "rb") as file:
        return _ckpt_format.read_index(file.fileno(), path)


def _values(dtype: mstype.Type, shape: tuple[int, ...]) -> torch.Tensor:
    count = int(np.prod(shape, dtype=np.int64))
    base = torch.arange(count, dtype=torch.float64).reshape(shape) * 1.25 - 2
    if dtype is mstype.bool_:
        return base.reshape(shape) > 0
    if mstype.kind(dtype) == "uint":
        return (base.abs() * 4).to(mstype.to_torch(dtype))
    if mstype.kind(dtype) == "complex":
        return torch.complex(base, -base).to(mstype.to_torch(dtype))
    return base.to(mstype.to_torch(dtype))


def _param(values: Any, name: str) -> Parameter:
    return Parameter(Tensor(values), name=name)


class Net(nn.Cell):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Dense(3, 2)
        self.step = Parameter(Tensor(np.array([0], np.int32)), name="step")


def _net_dict(net: Net) -> dict[str, Parameter]:
    return {p.name: p.clone() for p in net.get_parameters()}


# ---- round trips ---------------------------------------------------------------------


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=str)
def test_every_dtype_and_shape_round_trips(
    dtype: mstype.Type, shape: tuple[int, ...], tmp_path: Path
) -> None:
    data = _values(dtype, shape)
    path = tmp_path / "t.ckpt"
    save_checkpoint({"x": Tensor.from_torch(data)}, str(path))
    loaded = load_checkpoint(str(path))["x"]
    assert (loaded.dtype, loaded.shape) == (dtype, shape)
    assert torch.equal(loaded.to_torch(), data)


def test_empty_tensor_is_written_not_dropped(tmp_path: Path) -> None:
    path = tmp_path / "t.ckpt"
    save_checkpoint({"e": Tensor.from_torch(torch.empty(0)), "w": Tensor([1.0])}, path)
    index = _index(str(path))
    assert [(r.name, r.shape, r.nbytes) for r in index.records] == [
        ("e", (0,), 0),
        ("w", (1,), 4),
    ]


def test_large_tensor_is_chunked_and_read_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 999-byte slices split float64 elements across chunks, as MindSpore's raw-byte
    # slicing does.
    monkeypatch.setattr(_ckpt_format, "SLICE_SIZE_BYTES", 999)
    data = torch.randn(50, 40, dtype=torch.float64)
    path = tmp_path / "big.ckpt"
    save_checkpoint({"big": Tensor.from_torch(data), "tail": Tensor([1])}, str(path))
    index = _index(str(path))
    loaded = load_checkpoint(str(path))
    assert len(index.records[0].chunks) == -(-data.numel() * 8 // 999)
    assert torch.equal(loaded["big"].to_torch(), data)


def test_reads_split_over_threads_give_the_same_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_ckpt_format, "SLICE_SIZE_BYTES", 1000)
    monkeypatch.setattr(_ckpt_format, "_PIECE", 64)  # many pieces, several threads
    values = {f"t{i}": torch.randn(100 + i, dtype=torch.float64) for i in range(20)}
    path = tmp_path / "many.ckpt"
    save_checkpoint({k: Tensor.from_torch(v) for k, v in values.items()}, str(path))
    loaded = load_checkpoint(str(path))
    assert all(torch.equal(loaded[k].to_torch(), v) for k, v in values.items())


def test_cell_is_saved_by_parameter_name(tmp_path: Path) -> None:
    net = Net()
    path = tmp_path / "net.ckpt"
    save_checkpoint(net, str(path))
    loaded = load_checkpoint(str(path))
    assert list(loaded) == ["step", "fc.weight", "fc.bias"]
    assert torch.equal(loaded["fc.weight"].to_torch(), net.fc.weight.to_torch())


def test_list_of_parameters_and_list_of_dicts_save_alike(tmp_path: Path) -> None:
    weight = _param([1.0, 2.0], "w")
    save_checkpoint([weight], str(tmp_path / "a.ckpt"))
    save_checkpoint([{"name": "w", "data": weight}], str(tmp_path / "b.ckpt"))
    assert (tmp_path / "a.ckpt").read_bytes() == (tmp_path / "b.ckpt").read_bytes()


def test_ckpt_suffix_is_appended(tmp_path: Path) -> None:
    save_checkpoint([_param([1.0], "w")], str(tmp_path / "model"))
    assert (tmp_path / "model.ckpt").is_file()


def test_saved_file_is_read_only_and_replaced_atomically(tmp_path: Path) -> None:
    path = tmp_path / "w.ckpt"
    save_checkpoint([_param([1.0], "w")], str(path))
    save_checkpoint([_param([2.0], "w")], str(path))
    assert stat.S_IMODE(path.stat().st_mode) == 0o400
    assert load_checkpoint(str(path))["w"].asnumpy().tolist() == [2.0]
    assert sorted(os.listdir(tmp_path)) == ["w.ckpt"]  # no temporary file left


def test_choice_func_selects_what_is_saved(tmp_path: Path) -> None:
    path = tmp_path / "net.ckpt"
    save_checkpoint(Net(), str(path), choice_func=lambda name: name.startswith("fc."))
    assert list(load_checkpoint(str(path))) == ["fc.weight", "fc.bias"]


# ---- append_dict ---------------------------------------------------------------------


def test_append_dict_types_follow_mindspore(tmp_path: Path) -> None:
    path = tmp_path / "a.ckpt"
    extra = {"epoch": 3, "lr": 0.5, "amp": True, "note": "hi", "t": Tensor([1, 2])}
    save_checkpoint([_param([1.0], "w")], str(path), append_dict=extra)
    loaded = load_checkpoint(str(path))
    kinds = {
        k: (v if isinstance(v, str) else (str(v.dtype), v.shape))
        for k, v in loaded.items()
    }
    assert list(loaded) == ["w", "epoch", "lr", "amp", "note", "t"]
    assert kinds == {
        "w": ("Float32", (1,)),
        "epoch": ("Int64", ()),
        "lr": ("Float32", ()),
        "amp": ("Bool", ()),
        "note": "hi",
        "t": ("Int64", (2,)),
    }


def test_append_key_equal_to_a_parameter_replaces_it_with_a_warning(
    tmp_path: Path,
) -> None:
    path = tmp_path / "a.ckpt"
    with pytest.warns(UserWarning, match=r"'append_dict' key 'w' replaces"):
        save_checkpoint(
            [_param([1.0], "w"), _param([2.0], "v")], str(path), append_dict={"w": 9}
        )
    loaded = load_checkpoint(str(path))
    assert list(loaded) == ["w", "v"]
    assert loaded["w"].item() == 9


def test_append_dict_value_of_wrong_type_is_a_type_error(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match=r"values of 'append_dict' should be int"):
        save_checkpoint(
            [_param([1.0], "w")], str(tmp_path / "a"), append_dict={"x": []}
        )
    assert not (tmp_path / "a.ckpt").exists()


# ---- argument errors -----------------------------------------------------------------


def test_save_obj_of_wrong_type_is_a_type_error(tmp_path: Path) -> None:
    with pytest.raises(
        TypeError, match=r"'save_obj' should be a Cell, a list or a dict"
    ):
        save_checkpoint((1, 2), str(tmp_path / "x.ckpt"))
    assert not os.listdir(tmp_path)


def test_list_element_of_wrong_type_is_a_type_error(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match=r"element 0 of the list 'save_obj'"):
        save_checkpoint([np.ones(2)], str(tmp_path / "x.ckpt"))
    assert not os.listdir(tmp_path)


def test_save_into_a_directory_is_an_is_a_directory_error(tmp_path: Path) -> None:
    with pytest.raises(IsADirectoryError, match=r"is a directory"):
        save_checkpoint([_param([1.0], "w")], str(tmp_path))
    assert not os.listdir(tmp_path)


def test_non_str_file_name_is_a_type_error() -> None:
    with pytest.raises(TypeError, match=r"'ckpt_file_name' should be str"):
        save_checkpoint([_param([1.0], "w")], 5)  # type: ignore[arg-type]
    assert True


def test_unknown_async_mode_is_a_value_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"'async_save' should be True, False"):
        save_checkpoint([_param([1.0], "w")], str(tmp_path / "x"), async_save="fork")
    assert not os.listdir(tmp_path)


def test_unknown_format_is_a_value_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"'format' should be 'ckpt' or 'safetensors'"):
        save_checkpoint([_param([1.0], "w")], str(tmp_path / "x"), format="npz")
    assert not os.listdir(tmp_path)


def test_missing_file_is_a_value_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"does not exist"):
        load_checkpoint(str(tmp_path / "none.ckpt"))
    assert True


def test_wrong_extension_is_a_value_error(tmp_path: Path) -> None:
    (tmp_path / "w.bin").write_bytes(b"")
    with pytest.raises(ValueError, match=r"should end with '.ckpt'"):
        load_checkpoint(str(tmp_path / "w.bin"))
    assert True


# ---- selecting on load ---------------------------------------------------------------


@pytest.fixture()
def three(tmp_path: Path) -> str:
    path = str(tmp_path / "three.ckpt")
    save_checkpoint(
        {"fc1.w": Tensor([1]), "fc2.w": Tensor([2]), "conv.w": Tensor([3])}, path
    )
    return path


def test_filter_prefix_is_a_plain_startswith(three: str) -> None:
    assert list(load_checkpoint(three, filter_prefix="fc")) == ["conv.w"]


def test_specify_prefix_keeps_only_matching_names(three: str) -> None:
    assert list(load_checkpoint(three, specify_prefix=["fc2", "conv"])) == [
        "fc2.w",
        "conv.w",
    ]


def test_both_prefixes_apply_together(three: str) -> None:
    loaded = load_checkpoint(three, specify_prefix="fc", filter_prefix="fc1")
    assert list(loaded) == ["fc2.w"]


def test_prefix_overrides_choice_func(three: str) -> None:
    loaded = load_checkpoint(three, filter_prefix="conv", choice_func=lambda n: False)
    assert list(loaded) == ["fc1.w", "fc2.w"]


def test_choice_func_selects_on_load(three: str) -> None:
    assert list(load_checkpoint(three, choice_func=lambda n: n.endswith("2.w"))) == [
        "fc2.w"
    ]


def test_empty_prefix_is_a_value_error(three: str) -> None:
    with pytest.raises(ValueError, match=r"'filter_prefix' should not be empty"):
        load_checkpoint(three, filter_prefix=[])
    assert True


def test_prefix_of_wrong_type_is_a_type_error(three: str) -> None:
    with pytest.raises(TypeError, match=r"'specify_prefix' should be a str"):
        load_checkpoint(three, specify_prefix=3)  # type: ignore[arg-type]
    assert True


def test_nothing_left_after_filtering_is_a_value_error(three: str) -> None:
    with pytest.raises(ValueError, match=r"no parameter was loaded"):
        load_checkpoint(three, specify_prefix="bn")
    assert True


# ---- crc -----------------------------------------------------------------------------


def test_crc_trailer_is_written_and_verified(tmp_path: Path) -> None:
    path = tmp_path / "c.ckpt"
    save_checkpoint([_param([1.0, 2.0], "w")], str(path), crc_check=True)
    loaded = load_checkpoint(str(path), crc_check=True)
    assert path.read_bytes()[-17:-10] == b"crc_num"
    assert loaded["w"].asnumpy().tolist() == [1.0, 2.0]


def test_crc_mismatch_is_a_value_error(tmp_path: Path) -> None:
    path = tmp_path / "c.ckpt"
    save_checkpoint([_param([1.0, 2.0], "w")], str(path), crc_check=True)
    raw = bytearray(path.read_bytes())
    raw[-20] ^= 0x01  # a value byte: still parses
    path.chmod(0o600)
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=r"failed its CRC check"):
        load_checkpoint(str(path), crc_check=True)
    assert load_checkpoint(str(path))["w"].shape == (2,)  # unchecked: loads


def test_crc_check_without_trailer_warns(tmp_path: Path) -> None:
    path = tmp_path / "c.ckpt"
    save_checkpoint([_param([1.0], "w")], str(path))
    with pytest.warns(UserWarning, match=r"has no CRC trailer"):
        loaded = load_checkpoint(str(path), crc_check=True)
    assert list(loaded) == ["w"]


# ---- load_param_into_net -------------------------------------------------------------


def test_load_param_into_net_returns_both_lists_and_warns(tmp_path: Path) -> None:
    source = Net()
    params = _net_dict(source)
    del params["step"]
    params["extra"] = _param([1.0], "extra")
    target = Net()
    with pytest.warns(UserWarning, match=r"1 parameters of the net are not loaded"):
        result = load_param_into_net(target, params)
    assert result == (["step"], ["extra"])
    assert torch.equal(target.fc.weight.to_torch(), source.fc.weight.to_torch())


def test_load_param_into_net_keeps_the_parameter_objects_and_flags() -> None:
    target = Net()
    weight = target.fc.weight
    weight.requires_grad = False
    load_param_into_net(target, _net_dict(Net()))
    assert target.fc.weight is weight
    assert weight.requires_grad is False


def test_shape_mismatch_is_a_runtime_error_and_nothing_is_assigned() -> None:
    target = Net()
    before = target.fc.weight.to_torch().clone()
    params = _net_dict(Net())
    params["fc.bias"] = _param(np.zeros(5, np.float32), "fc.bias")
    with pytest.raises(RuntimeError, match=r"'fc.bias' of the net has shape \(2,\)"):
        load_param_into_net(target, params)
    assert torch.equal(target.fc.weight.to_torch(), before)


def test_float_dtype_difference_is_cast_with_a_warning() -> None:
    target = Net()
    params = _net_dict(Net())
    params["fc.bias"] = _param(np.array([1.5, 2.5], np.float64), "fc.bias")
    with pytest.warns(UserWarning, match=r"'fc.bias' Float64->Float32"):
        load_param_into_net(target, params)
    bias = target.fc.bias
    assert bias is not None and bias.dtype == mstype.float32
    assert bias.asnumpy().tolist() == [1.5, 2.5]


def test_strict_load_refuses_a_cast() -> None:
    params = _net_dict(Net())
    params["fc.bias"] = _param(np.array([1.5, 2.5], np.float64), "fc.bias")
    with pytest.raises(RuntimeError, match=r"strict_load=True allows no cast"):
        load_param_into_net(Net(), params, strict_load=True)
    assert True


def test_cross_kind_dtype_is_a_runtime_error() -> None:
    params = _net_dict(Net())
    params["step"] = _param(np.array([1.0], np.float32), "step")
    with pytest.raises(RuntimeError, match=r"only float<->float and int<->int"):
        load_param_into_net(Net(), params)
    assert True


def test_checkpoint_shape_with_trailing_ones_is_reshaped() -> None:
    target = Net()
    params = _net_dict(Net())
    params["fc.bias"] = _param(np.array([[[1.0]], [[2.0]]], np.float32), "fc.bias")
    load_param_into_net(target, params)
    bias = target.fc.bias
    assert bias is not None and bias.shape == (2,)
    assert bias.asnumpy().tolist() == [1.0, 2.0]


def test_prefixed_checkpoint_names_load_by_suffix() -> None:
    source = Net()
    params = {"model." + k: v for k, v in _net_dict(source).items()}
    target = Net()
    with pytest.warns(UserWarning, match=r"prefix 'model\.' .* was removed"):
        result = load_param_into_net(target, params)
    assert result == ([], [])
    assert torch.equal(target.fc.weight.to_torch(), source.fc.weight.to_torch())


def test_strict_load_does_not_strip_prefixes() -> None:
    params = {"model." + k: v for k, v in _net_dict(Net()).items()}
    with pytest.warns(UserWarning, match=r"3 parameters of the net are not loaded"):
        not_loaded, _ = load_param_into_net(Net(), params, strict_load=True)
    assert sorted(not_loaded) == ["fc.bias", "fc.weight", "step"]


def test_accu_grads_are_never_reported() -> None:
    target = Net()
    target.accu = Parameter(Tensor([0.0]), name="accu_grads.fc")
    result = load_param_into_net(target, _net_dict(Net()))
    assert result == ([], [])


def test_plain_tensor_values_are_a_type_error() -> None:
    with pytest.raises(TypeError, match=r"should map str to Parameter"):
        load_param_into_net(Net(), {"step": Tensor([1])})
    assert True


def test_non_cell_net_is_a_type_error() -> None:
    with pytest.raises(TypeError, match=r"the 'net' should be a Cell"):
        load_param_into_net(object(), {})  # type: ignore[arg-type]
    assert True


def test_load_checkpoint_with_net_loads_into_it(tmp_path: Path) -> None:
    source, target = Net(), Net()
    path = tmp_path / "net.ckpt"
    save_checkpoint(source, str(path))
    params = load_checkpoint(str(path), net=target)
    bias = target.fc.bias
    assert bias is not None
    assert torch.equal(bias.to_torch(), params["fc.bias"].to_torch())


# ---- async ---------------------------------------------------------------------------


def test_async_save_writes_a_snapshot_while_the_caller_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = threading.Event()
    original = _ckpt_encode.write_checkpoint

    def blocked(*args: Any) -> None:
        release.wait(10)
        original(*args)

    monkeypatch.setattr(_ckpt_encode, "write_checkpoint", blocked)
    weight = _param([1.0, 2.0], "w")
    path = tmp_path / "a.ckpt"
    try:
        save_checkpoint([weight], str(path), async_save=True)
        returned_before_written = not path.exists()
        weight.set_data(Tensor([7.0, 7.0]))  # training goes on
    finally:
        release.set()
        wait_async_save()
    assert returned_before_written
    assert load_checkpoint(str(path))["w"].asnumpy().tolist() == [1.0, 2.0]


def test_async_save_failure_is_raised_by_wait(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing(*args: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(_ckpt_encode, "write_checkpoint", failing)
    save_checkpoint([_param([1.0], "w")], str(tmp_path / "a.ckpt"), async_save="thread")
    with pytest.raises(RuntimeError, match=r"asynchronous save failed: disk full"):
        wait_async_save()
    assert not os.listdir(tmp_path)


def test_load_waits_for_an_async_save_of_the_same_file(tmp_path: Path) -> None:
    path = tmp_path / "a.ckpt"
    save_checkpoint([_param([3.0], "w")], str(path), async_save=True)
    loaded = load_checkpoint(str(path))
    assert loaded["w"].asnumpy().tolist() == [3.0]


# ---- streaming memory ----------------------------------------------------------------

_PEAK_SCRIPT = textwrap.dedent(
    """
    import sys
    from spore import load_checkpoint
    def status(field):
        with open("/proc/self/status") as f:
            line = next(l for l in f if l.startswith(field + ":"))
        return int(line.split()[1]) * 1024
    load_checkpoint(sys.argv[2])  # first use pages in library code: not the load's
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the peak (VmHWM) to the current RSS
    base = status("VmRSS")
    loaded = load_checkpoint(sys.argv[1])
    total = sum(p.nbytes for p in loaded.values())
    for p in loaded.values():  # touch every value: mapped pages count once read
        float(p.to_torch().detach().sum())
    print(status("VmHWM") - base, total)
    """
)
# VmHWM, not ru_maxrss: after a vfork+exec, ru_maxrss starts at the parent's RSS.


@pytest.mark.parametrize("mapped", ["1", "0"], ids=["mapped", "copied"])
def test_load_peak_memory_stays_within_1_2x_of_the_tensors(
    tmp_path: Path, mapped: str
) -> None:
    path = tmp_path / "big.ckpt"
    tensors = {
        f"t{i}": Tensor.from_torch(torch.full((12_500_000,), float(i)))
        for i in range(4)
    }
    save_checkpoint(tensors, str(path))  # 200 MB
    del tensors
    small = tmp_path / "small.ckpt"
    save_checkpoint({"w": Tensor.from_torch(torch.ones(1000))}, str(small))
    done = subprocess.run(
        [sys.executable, "-c", _PEAK_SCRIPT, str(path), str(small)],
        capture_output=True,
        text=True,
        check=True,
        env=dict(os.environ, SPORE_CKPT_MMAP=mapped),
    )
    growth, total = map(int, done.stdout.split())
    assert total == 200_000_000
    assert growth <= 1.2 * total, (growth, total)
