"""`CheckpointConfig` and `ModelCheckpoint`: checkpoints written during training.

`ModelCheckpoint` saves ``cb_params.train_network`` (the TrainOneStepCell, so the
optimizer state, ``global_step`` and ``learning_rate`` are in the file, as in
MindSpore) as ``<prefix>-<epoch>_<step in epoch>.ckpt`` every
``save_checkpoint_steps`` steps (or seconds) and once more at the end of
training, and deletes the oldest files beyond ``keep_checkpoint_max``. MindSpore
also writes ``<prefix>-graph.meta`` in graph mode; spore has no graph to write.
"""

from __future__ import annotations

import os
import re
import time
from typing import Any

from spore.nn.cell import Cell
from spore.train.callback._callback import Callback, RunContext
from spore.train.serialization import save_checkpoint, wait_async_save

__all__ = ["CheckpointConfig", "ModelCheckpoint"]

_INFO_KEYS = ("epoch_num", "step_num")


def _non_negative_int(value: Any, name: str) -> int:
    if value is None:
        return 0
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(
            f"For 'CheckpointConfig', the '{name}' should be an int, but got "
            f"{type(value).__name__}."
        )
    if value < 0:
        raise ValueError(
            f"For 'CheckpointConfig', the '{name}' should be >= 0, but got {value}."
        )
    return value


def _bool(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise TypeError(
            f"For 'CheckpointConfig', the '{name}' should be bool, but got "
            f"{type(value).__name__}."
        )
    return value


def _append_info(append_info: Any) -> tuple[list[str], dict[str, Any]]:
    """MindSpore's ``append_info``: ``"epoch_num"``/``"step_num"`` and one dict."""
    if append_info is None:
        return [], {}
    if not isinstance(append_info, list):
        raise TypeError(
            "For 'CheckpointConfig', the 'append_info' should be a list, but got "
            f"{type(append_info).__name__}."
        )
    keys: list[str] = []
    extra: dict[str, Any] = {}
    for item in append_info:
        if isinstance(item, str) and item in _INFO_KEYS:
            keys.append(item)
        elif isinstance(item, dict) and not extra:
            extra = dict(item)
        else:
            raise ValueError(
                "For 'CheckpointConfig', the 'append_info' may hold 'epoch_num', "
                f"'step_num' and one dict, but got {item!r}."
            )
    return keys, extra


class CheckpointConfig:
    """When and how `ModelCheckpoint` saves.

    Args:
        save_checkpoint_steps: Save every this many steps (takes precedence over
            ``save_checkpoint_seconds``).
        save_checkpoint_seconds: Save when this many seconds have passed.
        keep_checkpoint_max: Keep at most this many files (the oldest go first).
        keep_checkpoint_per_n_minutes: Without ``keep_checkpoint_max``: keep one
            file per this many minutes.
        integrated_save: Passed to `save_checkpoint`.
        async_save: Write each file in the background (`save_checkpoint`).
        saved_network: A Cell to save instead of the training network.
        append_info: ``"epoch_num"``, ``"step_num"`` and/or one dict of extra
            entries, appended to every file.
        crc_check: Passed to `save_checkpoint`.
        format: ``"ckpt"`` or ``"safetensors"``.

    Raises:
        TypeError: If an argument has the wrong type (``saved_network`` not a Cell).
        ValueError: If steps, seconds, max and per-n-minutes are all 0 or None,
            or ``append_info`` holds something else.

    Examples:
        >>> config = CheckpointConfig(save_checkpoint_steps=32, keep_checkpoint_max=10)
        >>> config.keep_checkpoint_max
        10
    """

    def __init__(
        self,
        save_checkpoint_steps: int = 1,
        save_checkpoint_seconds: int = 0,
        keep_checkpoint_max: int = 5,
        keep_checkpoint_per_n_minutes: int = 0,
        integrated_save: bool = True,
        async_save: bool | str = False,
        saved_network: Cell | None = None,
        append_info: list[Any] | None = None,
        crc_check: bool = False,
        format: str = "ckpt",
    ) -> None:
        steps = _non_negative_int(save_checkpoint_steps, "save_checkpoint_steps")
        seconds = _non_negative_int(save_checkpoint_seconds, "save_checkpoint_seconds")
        keep_max = _non_negative_int(keep_checkpoint_max, "keep_checkpoint_max")
        per_minutes = _non_negative_int(
            keep_checkpoint_per_n_minutes, "keep_checkpoint_per_n_minutes"
        )
        if not (steps or seconds or keep_max or per_minutes):
            raise ValueError(
                "For 'CheckpointConfig', 'save_checkpoint_steps', "
                "'save_checkpoint_seconds', 'keep_checkpoint_max' and "
                "'keep_checkpoint_per_n_minutes' can not all be 0 or None."
            )
        if saved_network is not None and not isinstance(saved_network, Cell):
            raise TypeError(
                "For 'CheckpointConfig', the 'saved_network' should be a Cell or None, "
                f"but got {type(saved_network).__name__}."
            )
        if format not in ("ckpt", "safetensors"):
            raise ValueError(
                "For 'CheckpointConfig', the 'format' should be 'ckpt' or "
                f"'safetensors', but got {format!r}."
            )
        # MindSpore: steps win over seconds, and a maximum over per-n-minutes.
        self._save_checkpoint_steps = steps
        self._save_checkpoint_seconds = 0 if steps else seconds
        self._keep_checkpoint_max = keep_max
        self._keep_checkpoint_per_n_minutes = 0 if keep_max else per_minutes
        if not keep_max and not per_minutes:
            self._keep_checkpoint_max = 1
        self._integrated_save = _bool(integrated_save, "integrated_save")
        if not isinstance(async_save, (bool, str)):
            raise TypeError(
                "For 'CheckpointConfig', the 'async_save' should be bool or str, but "
                f"got {type(async_save).__name__}."
            )
        self._async_save = async_save
        self._saved_network = saved_network
        self._append_keys, self._append_dict = _append_info(append_info)
        self._crc_check = _bool(crc_check, "crc_check")
        self._format = format

    @property
    def save_checkpoint_steps(self) -> int:
        return self._save_checkpoint_steps

    @property
    def save_checkpoint_seconds(self) -> int:
        return self._save_checkpoint_seconds

    @property
    def keep_checkpoint_max(self) -> int:
        return self._keep_checkpoint_max

    @property
    def keep_checkpoint_per_n_minutes(self) -> int:
        return self._keep_checkpoint_per_n_minutes

    @property
    def integrated_save(self) -> bool:
        return self._integrated_save

    @property
    def async_save(self) -> bool | str:
        return self._async_save

    @property
    def saved_network(self) -> Cell | None:
        return self._saved_network

    @property
    def append_dict(self) -> dict[str, Any]:
        """The extra entries of every file (``epoch_num``/``step_num`` set at save)."""
        out: dict[str, Any] = {key: 0 for key in self._append_keys}
        out.update(self._append_dict)
        return out

    @property
    def crc_check(self) -> bool:
        return self._crc_check

    @property
    def format(self) -> str:
        return self._format

    def get_checkpoint_policy(self) -> dict[str, int]:
        """The saving and keeping policy as a dict (MindSpore's keys)."""
        return {
            "save_checkpoint_steps": self._save_checkpoint_steps,
            "save_checkpoint_seconds": self._save_checkpoint_seconds,
            "keep_checkpoint_max": self._keep_checkpoint_max,
            "keep_checkpoint_per_n_minutes": self._keep_checkpoint_per_n_minutes,
        }


def _prefix_in_use(directory: str, prefix: str, extension: str) -> str:
    """MindSpore: with files of this prefix in the directory, use ``prefix_<n>``."""
    suffix = 0
    pattern = re.compile(re.escape(prefix) + r"(?:_(\d+))?-")
    for name in os.listdir(directory):
        if not name.endswith(extension):
            continue
        match = pattern.match(name)
        if match:
            suffix = max(suffix, int(match.group(1)) + 1 if match.group(1) else 1)
    return f"{prefix}_{suffix}" if suffix else prefix


class ModelCheckpoint(Callback):
    """Save checkpoints while `Model.train` runs.

    Args:
        prefix: File name prefix (no ``/``); if files with it already exist in
            ``directory``, ``<prefix>_<n>`` is used, as in MindSpore.
        directory: Where to write (created if missing); default: the current
            directory.
        config: A `CheckpointConfig`; default ``CheckpointConfig()``.

    Raises:
        ValueError: If ``prefix`` is not a str or contains ``/``.
        TypeError: If ``config`` is not a CheckpointConfig.

    Examples:
        >>> import tempfile
        >>> ckpt = ModelCheckpoint("net", tempfile.mkdtemp(),
        ...                        CheckpointConfig(save_checkpoint_steps=10))
        >>> ckpt.latest_ckpt_file_name is None
        True
    """

    def __init__(
        self,
        prefix: str = "CKP",
        directory: str | os.PathLike[str] | None = None,
        config: CheckpointConfig | None = None,
    ) -> None:
        if not isinstance(prefix, str) or "/" in prefix:
            raise ValueError(
                "For 'ModelCheckpoint', the 'prefix' should be a str without '/', but "
                f"got {prefix!r}."
            )
        if config is None:
            config = CheckpointConfig()
        if not isinstance(config, CheckpointConfig):
            raise TypeError(
                "For 'ModelCheckpoint', the 'config' should be a CheckpointConfig, but "
                f"got {type(config).__name__}."
            )
        self._config = config
        self._directory = os.path.abspath(os.fspath(directory or os.getcwd()))
        os.makedirs(self._directory, exist_ok=True)
        self._extension = "." + config.format
        self._prefix = _prefix_in_use(self._directory, prefix, self._extension)
        self._files: list[str] = []  # written by this callback, oldest first
        self._last_triggered_step = 0
        self._last_time = time.time()
        self._last_keep_time = time.time()
        self._step_in_epoch = 0
        self._latest: str | None = None

    @property
    def latest_ckpt_file_name(self) -> str | None:
        """The path of the last file written, None before the first."""
        return self._latest

    def epoch_begin(self, run_context: RunContext) -> None:
        self._step_in_epoch = 0

    def step_end(self, run_context: RunContext) -> None:
        self._step_in_epoch += 1
        self._save(run_context.original_args(), force=False)

    def end(self, run_context: RunContext) -> None:
        # MindSpore saves the last step too, unless it was just saved.
        self._save(run_context.original_args(), force=True)
        if self._config.async_save:
            wait_async_save()

    def _due(self, step: int, force: bool) -> bool:
        config = self._config
        if force:
            return True
        if config.save_checkpoint_steps:
            return step >= self._last_triggered_step + config.save_checkpoint_steps
        if config.save_checkpoint_seconds:
            now = time.time()
            if now - self._last_time > config.save_checkpoint_seconds:
                self._last_time = now
                return True
        return False

    def _save(self, cb_params: Any, force: bool) -> None:
        step = int(cb_params.cur_step_num)
        if step == self._last_triggered_step or not self._due(step, force):
            return
        self._last_triggered_step = step
        name = (
            f"{self._prefix}-{cb_params.cur_epoch_num}_{self._step_in_epoch}"
            f"{self._extension}"
        )
        path = os.path.join(self._directory, name)
        self._make_room()
        network = self._config.saved_network or cb_params.train_network
        append = self._config.append_dict
        if "epoch_num" in append:
            append["epoch_num"] = int(cb_params.cur_epoch_num)
        if "step_num" in append:
            append["step_num"] = step
        save_checkpoint(
            network,
            path,
            integrated_save=self._config.integrated_save,
            async_save=self._config.async_save,
            append_dict=append or None,
            crc_check=self._config.crc_check,
            format=self._config.format,
        )
        if path in self._files:
            self._files.remove(path)
        self._files.append(path)
        self._latest = path

    def _make_room(self) -> None:
        """Delete old files so that the new one keeps the count within the limit."""
        config = self._config
        if config.async_save:
            wait_async_save()  # the files of earlier saves exist from here on
        self._files = [f for f in self._files if os.path.exists(f)]
        if config.keep_checkpoint_max:
            while len(self._files) >= config.keep_checkpoint_max:
                os.remove(self._files.pop(0))
        elif config.keep_checkpoint_per_n_minutes:
            now = time.time()
            window = config.keep_checkpoint_per_n_minutes * 60
            if now - self._last_keep_time < window:
                recent = [f for f in self._files if now - os.path.getmtime(f) < window]
                for old in recent[1:]:  # keep the oldest of the window
                    os.remove(old)
                    self._files.remove(old)
            else:
                self._last_keep_time = now
