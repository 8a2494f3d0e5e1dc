"""Checkpoints: `save_checkpoint`, `load_checkpoint`, `load_param_into_net`.

MindSpore's API and file formats (``.ckpt``, byte-compatible with MindSpore 2.x,
and ``safetensors``). The bytes live in ``_ckpt_format.py`` and
``_safetensors_format.py``; this module holds the arguments, the choice of what
is saved or loaded, atomic writing and the background writer.

Where MindSpore loses data without a word, spore warns instead (names not
loaded, dtype casts, entries overwritten) and writes empty tensors instead of
dropping them. Files are written to a temporary file in the same directory,
fsynced and renamed, so a crash mid-save leaves the previous file intact.
"""

from __future__ import annotations

import atexit
import os
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from spore.common.parameter import Parameter
from spore.common.tensor import Tensor
from spore.nn.cell import Cell
from spore.train import _ckpt_format, _ckpt_writer, _safetensors_format
from spore.train._load_into_net import load_param_into_net

__all__ = [
    "load_checkpoint",
    "load_param_into_net",
    "save_checkpoint",
    "wait_async_save",
]

_FORMATS = ("ckpt", "safetensors")

# ---- argument checks -----------------------------------------------------------------


def _check_bool(value: Any, name: str, func: str) -> bool:
    if not isinstance(value, bool):
        raise TypeError(
            f"For '{func}', the '{name}' should be bool, but got "
            f"{type(value).__name__}."
        )
    return value


def _check_format(format: Any, func: str) -> str:
    if format not in _FORMATS:
        raise ValueError(
            f"For '{func}', the 'format' should be 'ckpt' or 'safetensors', but got "
            f"{format!r}."
        )
    return format


def _check_choice_func(choice_func: Any, func: str) -> Callable[[str], Any] | None:
    if choice_func is not None and not callable(choice_func):
        raise TypeError(
            f"For '{func}', the 'choice_func' should be a function of the parameter "
            f"name, but got {type(choice_func).__name__}."
        )
    return choice_func


def _file_name(ckpt_file_name: Any, func: str) -> str:
    # Extension over MindSpore: os.PathLike (pathlib) is accepted as well as str.
    if isinstance(ckpt_file_name, os.PathLike):
        ckpt_file_name = os.fspath(ckpt_file_name)
    if not isinstance(ckpt_file_name, str):
        raise TypeError(
            f"For '{func}', the 'ckpt_file_name' should be str, but got "
            f"{type(ckpt_file_name).__name__}."
        )
    return ckpt_file_name


def _check_prefix(prefix: Any, name: str) -> tuple[str, ...] | None:
    if prefix is None:
        return None
    items = (prefix,) if isinstance(prefix, str) else prefix
    if not isinstance(items, (list, tuple)) or not all(
        isinstance(p, str) for p in items
    ):
        raise TypeError(
            f"For 'load_checkpoint', the '{name}' should be a str or a list/tuple of "
            f"str, but got {prefix!r}."
        )
    if not items or any(not p for p in items):
        raise ValueError(
            f"For 'load_checkpoint', the '{name}' should not be empty or contain an "
            f"empty string, but got {prefix!r}."
        )
    return tuple(items)


# ---- what is saved -------------------------------------------------------------------


def _save_value(value: Any, what: str, integrated: bool = False) -> Any:
    """The torch tensor (or str) of one entry to be written; with ``integrated``,
    a sliced Parameter with a layout gives the whole tensor, gathered from all
    ranks (MindSpore's integrated_save)."""
    if isinstance(value, str):
        return value
    if integrated and isinstance(value, Parameter) and _is_laid_out_slice(value):
        # Only a Parameter given a layout by spore.parallel gets here, so that
        # package is imported already; train stays free of it otherwise.
        from spore.parallel._gather import gather_whole

        return gather_whole(value)
    if isinstance(value, Tensor):
        remote = getattr(value, "_ps_remote", None)
        if remote is not None and not remote.local:
            return remote.fetch()  # held by the parameter servers: a fetched copy
        return value._materialized().detach()
    raise TypeError(
        f"For 'save_checkpoint', {what} should be a Parameter or Tensor, but got "
        f"{type(value).__name__}."
    )


def _is_laid_out_slice(param: Parameter) -> bool:
    return bool(param.sliced) and getattr(param, "_layout", None) is not None


def _items_from_save_obj(
    save_obj: Any, choice_func: Any, integrated: bool
) -> list[tuple[str, Any, Any]]:
    """``(name, source object, value)`` in save order, before de-duplication."""
    chosen = (lambda name: True) if choice_func is None else choice_func
    items: list[tuple[str, Any, Any]] = []
    if isinstance(save_obj, Cell):
        save_obj.init_parameters_data()
        for _, param in save_obj.parameters_and_names():
            items.append((param.name, param, param))
    elif isinstance(save_obj, list):
        for index, element in enumerate(save_obj):
            if isinstance(element, Parameter):
                items.append((element.name, element, element))
            elif isinstance(element, dict) and "name" in element and "data" in element:
                if not isinstance(element["name"], str):
                    raise TypeError(
                        f"For 'save_checkpoint', the 'name' of element {index} of "
                        f"'save_obj' should be str, but got "
                        f"{type(element['name']).__name__}."
                    )
                if not isinstance(element["data"], Tensor):
                    raise TypeError(
                        f"For 'save_checkpoint', the 'data' of element {index} of "
                        "'save_obj' should be a Parameter or Tensor, but got "
                        f"{type(element['data']).__name__}."
                    )
                items.append((element["name"], element["data"], element["data"]))
            else:
                raise TypeError(
                    f"For 'save_checkpoint', element {index} of the list 'save_obj' "
                    "should be a Parameter or a dict with keys 'name' and 'data', but "
                    f"got {type(element).__name__}."
                )
    elif isinstance(save_obj, dict):
        for key, value in save_obj.items():
            if not isinstance(key, str):
                raise TypeError(
                    "For 'save_checkpoint', the keys of the dict 'save_obj' should be "
                    f"str, but got {type(key).__name__}."
                )
            if isinstance(value, np.ndarray):
                value = Tensor.from_numpy(value)
            items.append((key, value, value))
    else:
        raise TypeError(
            "For 'save_checkpoint', the 'save_obj' should be a Cell, a list or a dict, "
            f"but got {type(save_obj).__name__}."
        )
    return [
        (name, source, _save_value(value, f"the data of '{name}'", integrated))
        for name, source, value in items
        if chosen(name)
    ]


def _append_value(key: Any, value: Any) -> Any:
    if not isinstance(key, str):
        raise TypeError(
            "For 'save_checkpoint', the keys of 'append_dict' should be str, but got "
            f"{type(key).__name__}."
        )
    # MindSpore: int -> Int64 0-d, float -> Float32 0-d, bool -> Bool 0-d (bool first:
    # it is an int).
    if isinstance(value, bool):
        return torch.tensor(value, dtype=torch.bool)
    if isinstance(value, int):
        return torch.tensor(value, dtype=torch.int64)
    if isinstance(value, float):
        return torch.tensor(value, dtype=torch.float32)
    if isinstance(value, (str, Tensor)):
        return _save_value(value, f"'append_dict[{key!r}]'")
    raise TypeError(
        "For 'save_checkpoint', the values of 'append_dict' should be int, float, "
        f"bool, str, Parameter or Tensor, but '{key}' is a {type(value).__name__}."
    )


def _collect(
    save_obj: Any, append_dict: Any, choice_func: Any, integrated: bool = False
) -> list[tuple[str, Any]]:
    """The entries to write, in order: one per name (MindSpore's dict semantics)."""
    if append_dict is not None and not isinstance(append_dict, dict):
        raise TypeError(
            "For 'save_checkpoint', the 'append_dict' should be a dict, but got "
            f"{type(append_dict).__name__}."
        )
    appended = [(k, _append_value(k, v)) for k, v in (append_dict or {}).items()]
    entries: dict[str, Any] = {}
    sources: dict[str, Any] = {}
    for name, source, value in _items_from_save_obj(save_obj, choice_func, integrated):
        if name in entries and sources[name] is not source:
            warnings.warn(
                f"For 'save_checkpoint', two entries of 'save_obj' are named '{name}'; "
                "only the later one is saved.",
                stacklevel=3,
            )
        entries[name], sources[name] = value, source
    for name, value in appended:
        if name in entries:
            # MindSpore parity: the appended value replaces the parameter, in place.
            warnings.warn(
                f"For 'save_checkpoint', 'append_dict' key '{name}' replaces the "
                "parameter of that name in the checkpoint.",
                stacklevel=3,
            )
        entries[name] = value
    return list(entries.items())


_ASYNC = _ckpt_writer.AsyncWriter()
atexit.register(_ASYNC.report_at_exit)


def wait_async_save(timeout: float | None = None) -> bool:
    """Wait for the asynchronous `save_checkpoint` in flight, if any.

    Args:
        timeout: Seconds to wait at most; None waits until it is done.

    Returns:
        True when no save is in flight any more, False on timeout.

    Raises:
        RuntimeError: If the background save failed (the error is chained).
    """
    return _ASYNC.wait(timeout)


# ---- save ----------------------------------------------------------------------------


def save_checkpoint(
    save_obj: Any,
    ckpt_file_name: str | os.PathLike[str],
    integrated_save: bool = True,
    async_save: bool | str = False,
    append_dict: dict[str, Any] | None = None,
    choice_func: Callable[[str], bool] | None = None,
    crc_check: bool = False,
    format: str = "ckpt",
) -> None:
    """Save parameters to a MindSpore ``.ckpt`` (or ``.safetensors``) file.

    Args:
        save_obj: A Cell (its parameters by ``Parameter.name``), a list of
            Parameters or of ``{"name": str, "data": Tensor}`` dicts, or a dict of
            name to Parameter/Tensor/str such as `load_checkpoint` returns.
        ckpt_file_name: The file; ``.ckpt`` (or ``.safetensors``) is appended when
            missing. An existing file is replaced atomically.
        integrated_save: Save the whole tensor of every sliced Parameter with a
            layout (``spore.parallel.set_layout``, a layer's ``shard``): its
            slices are all-gathered over torch.distributed's world, so every rank
            must save the same Parameters in the same order. False saves each
            rank's slice. Nothing to merge without model parallelism.
        async_save: True, ``"thread"`` or ``"process"``: copy the values now and
            write them in a background thread while training goes on (spore uses a
            thread for ``"process"`` too). `wait_async_save` waits for it.
        append_dict: Extra entries written after the parameters: int (Int64 0-d),
            float (Float32 0-d), bool, str, Parameter or Tensor. A key equal to a
            parameter name replaces that parameter (with a warning).
        choice_func: ``choice_func(name) -> bool`` selects the parameters to save.
        crc_check: Append MindSpore's CRC-32 trailer (``.ckpt``) or metadata.
        format: ``"ckpt"`` or ``"safetensors"``.

    Raises:
        TypeError: If an argument or an entry has the wrong type.
        ValueError: If ``async_save`` or ``format`` is not a known value.
        IsADirectoryError: If ``ckpt_file_name`` is a directory.
        RuntimeError: If ``integrated_save`` meets a sliced Parameter and
            torch.distributed is not initialised.

    Examples:
        >>> import os, tempfile
        >>> from spore import Parameter, Tensor, save_checkpoint, load_checkpoint
        >>> path = os.path.join(tempfile.mkdtemp(), "w.ckpt")
        >>> save_checkpoint([Parameter(Tensor([1.0, 2.0]), name="w")], path)
        >>> load_checkpoint(path)["w"].asnumpy().tolist()
        [1.0, 2.0]
    """
    fmt = _check_format(format, "save_checkpoint")
    path = _file_name(ckpt_file_name, "save_checkpoint")
    _check_bool(integrated_save, "integrated_save", "save_checkpoint")
    _check_bool(crc_check, "crc_check", "save_checkpoint")
    if not isinstance(async_save, (bool, str)):
        raise TypeError(
            "For 'save_checkpoint', the 'async_save' should be bool or str, but got "
            f"{type(async_save).__name__}."
        )
    if isinstance(async_save, str) and async_save not in ("thread", "process"):
        raise ValueError(
            "For 'save_checkpoint', the 'async_save' should be True, False, 'thread' "
            f"or 'process', but got {async_save!r}."
        )
    _check_choice_func(choice_func, "save_checkpoint")
    if os.path.isdir(path):
        raise IsADirectoryError(
            f"For 'save_checkpoint', the 'ckpt_file_name' {path!r} is a directory; "
            "give a file name."
        )
    if not path.endswith("." + fmt):
        path += "." + fmt
    items = _collect(save_obj, append_dict, choice_func, integrated_save)
    if async_save:
        # The snapshot is taken now, so later training steps cannot leak into it.
        snapshot = [
            (name, value if isinstance(value, str) else value.clone())
            for name, value in items
        ]
        _ASYNC.start(
            os.path.abspath(path),
            lambda: _ckpt_writer.write_atomically(path, snapshot, crc_check, fmt),
        )
        return
    _ASYNC.wait()  # one writer at a time; surfaces an earlier background failure
    _ckpt_writer.write_atomically(path, items, crc_check, fmt)


# ---- load ----------------------------------------------------------------------------


def _new_parameter(name: str, data: torch.Tensor) -> Parameter:
    """A Parameter that owns ``data`` without a copy (Parameter() would clone it)."""
    param = Parameter.__new__(Parameter)
    param.init, param._init_key = None, None
    param._requires_grad = True
    param._set_data(data)
    param._name = name  # the file's name exactly, as MindSpore keeps it
    return param


def _selector(
    filter_prefix: tuple[str, ...] | None,
    specify_prefix: tuple[str, ...] | None,
    choice_func: Callable[[str], Any] | None,
) -> Callable[[str], bool]:
    # MindSpore 2.x: plain startswith; either prefix argument overrides choice_func.
    if filter_prefix is None and specify_prefix is None:
        if choice_func is None:
            return lambda name: True
        return lambda name: bool(choice_func(name))

    def selected(name: str) -> bool:
        if specify_prefix is not None and not name.startswith(specify_prefix):
            return False
        return filter_prefix is None or not name.startswith(filter_prefix)

    return selected


def _load_ckpt(path: str, selected: Callable[[str], bool], crc_check: bool) -> dict:
    # One open file for the headers and the data: a concurrent save renames a new
    # file over the path, and this load keeps reading the file it indexed.
    with open(path, "rb") as file:
        fd = file.fileno()
        index = _ckpt_format.read_index(fd, path)
        if crc_check:
            if index.crc is None:
                warnings.warn(
                    f"For 'load_checkpoint', the checkpoint file '{path}' has no CRC "
                    "trailer, so crc_check could not verify it.",
                    stacklevel=3,
                )
            elif _ckpt_format.payload_crc(fd, index.payload_len, path) != index.crc:
                raise ValueError(
                    f"For 'load_checkpoint', the checkpoint file '{path}' failed its "
                    "CRC check: the file is corrupted."
                )
        if index.duplicates:
            warnings.warn(
                f"For 'load_checkpoint', the checkpoint file '{path}' holds the names "
                f"{sorted(set(index.duplicates))} more than once; the later entries "
                "win.",
                stacklevel=3,
            )
        records: dict[str, _ckpt_format.Record] = {}
        for record in index.records:
            if selected(record.name):
                records[record.name] = record
        values = _ckpt_format.read_values(fd, list(records.values()), path)
    return dict(zip(records, values, strict=True))


def load_checkpoint(
    ckpt_file_name: str | os.PathLike[str],
    net: Cell | None = None,
    strict_load: bool = False,
    filter_prefix: str | list[str] | tuple[str, ...] | None = None,
    specify_prefix: str | list[str] | tuple[str, ...] | None = None,
    choice_func: Callable[[str], bool] | None = None,
    crc_check: bool = False,
    format: str = "ckpt",
) -> dict[str, Any]:
    """Load a ``.ckpt`` (or ``.safetensors``) file into a dict of Parameters.

    Both formats are memory-mapped (copy on write): a ``.ckpt`` tensor of at least
    64 KiB whose bytes are aligned in the file (every one in files spore writes)
    is a view of the file's pages; the others are read straight into new tensors.
    A load thus needs no more memory than the tensors it returns, and files or
    tensors over 2 GiB work. The Parameters read the file's pages, so the file
    must not be rewritten in place while they live (spore's saves replace a file
    by renaming, which is safe; a file truncated under them raises SIGBUS when
    they are read). ``SPORE_CKPT_MMAP=0`` copies every ``.ckpt`` tensor instead.

    Args:
        ckpt_file_name: The file, ending with ``.ckpt`` (``.safetensors``).
        net: If given, the parameters are also loaded into it
            (`load_param_into_net`).
        strict_load: Passed to `load_param_into_net`.
        filter_prefix: Names starting with it (or any of them) are not loaded.
        specify_prefix: Only names starting with it (or any of them) are loaded.
        choice_func: ``choice_func(name) -> bool`` selects names; either prefix
            argument overrides it.
        crc_check: Verify the CRC stored at save time.
        format: ``"ckpt"`` or ``"safetensors"``.

    Returns:
        ``{name: Parameter}`` in file order (append_dict strings as ``str``);
        every Parameter has ``requires_grad=True``.

    Raises:
        TypeError: If an argument has the wrong type.
        ValueError: If the file is missing, has the wrong extension, is corrupted
            or not a checkpoint, fails its CRC, or nothing is left after filtering.

    Examples:
        >>> import os, tempfile
        >>> from spore import Parameter, Tensor, save_checkpoint, load_checkpoint
        >>> path = os.path.join(tempfile.mkdtemp(), "net.ckpt")
        >>> save_checkpoint({"a.w": Tensor([1]), "b.w": Tensor([2])}, path)
        >>> list(load_checkpoint(path, filter_prefix="a."))
        ['b.w']
    """
    fmt = _check_format(format, "load_checkpoint")
    path = _file_name(ckpt_file_name, "load_checkpoint")
    _check_bool(strict_load, "strict_load", "load_checkpoint")
    _check_bool(crc_check, "crc_check", "load_checkpoint")
    filters = _check_prefix(filter_prefix, "filter_prefix")
    specify = _check_prefix(specify_prefix, "specify_prefix")
    _check_choice_func(choice_func, "load_checkpoint")
    if net is not None and not isinstance(net, Cell):
        raise TypeError(
            f"For 'load_checkpoint', the 'net' should be a Cell, but got "
            f"{type(net).__name__}."
        )
    if not path.endswith("." + fmt):
        raise ValueError(
            f"For 'load_checkpoint', the checkpoint file '{path}' should end with "
            f"'.{fmt}' for format={fmt!r}."
        )
    if _ASYNC.pending_path() == os.path.abspath(path):
        _ASYNC.wait()  # the file is still being written in the background
    if not os.path.isfile(path):
        raise ValueError(
            f"For 'load_checkpoint', the checkpoint file '{path}' does not exist or "
            "is not a file."
        )
    selected = _selector(filters, specify, choice_func)
    if fmt == "ckpt":
        values = _load_ckpt(path, selected, crc_check)
    else:
        values, notes = _safetensors_format.read_safetensors(path, selected, crc_check)
        for note in notes:
            warnings.warn(f"For 'load_checkpoint', {note}", stacklevel=2)
    if not values:
        raise ValueError(
            f"For 'load_checkpoint', no parameter was loaded from '{path}': the file "
            "is empty or the filters (filter_prefix, specify_prefix, choice_func) "
            "left nothing."
        )
    parameter_dict: dict[str, Parameter | str] = {
        name: value if isinstance(value, str) else _new_parameter(name, value)
        for name, value in values.items()
    }
    if net is not None:
        load_param_into_net(net, parameter_dict, strict_load)
    return parameter_dict
