"""The server side of the parameter server: its parts of the PS parameters, the
optimizer that updates them, and the rounds that gather every worker's push.

A *round* is a call that every worker makes, in the same order: registering an
optimizer's PS parameters, or (synchronous mode) pushing one step's gradients.
The round completes when all workers have joined; then the server acts once and
answers everyone. A round that a worker does not join within the timeout fails
for all, naming the missing workers, and so does a worker that stops sending
heartbeats: no one waits forever (issue 7, point 5).
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

import torch
import torch.distributed.rpc

from spore.common.parameter import Parameter
from spore.common.tensor import Tensor
from spore.parallel._ps import _wire
from spore.parallel._ps._cluster import Cluster, server_name, worker_name

_SERVER: Server | None = None  # this process's server; the rpc handlers use it


class _Part:
    """This server's rows ``[start, stop)`` of one PS parameter (all of a 0-d one)."""

    def __init__(self, record: dict[str, Any], param: Parameter) -> None:
        self.key: str = record["key"]
        self.start, self.stop = record["rows"]
        self.sparse: bool = record["sparse"]  # pushes arrive as (ids, rows)
        self.local: bool = record["local"]  # the workers keep a copy to refresh
        self.mean = False  # set with the optimizer
        self.param = param
        self.optimizer: Any = None  # set by the workers' optimizer setup
        self.record = record

    @property
    def data(self) -> torch.Tensor:
        return self.param._materialized()

    def state(self, prefix: str) -> torch.Tensor:
        if not prefix:
            return self.data
        if self.optimizer is None or prefix not in self.optimizer._state_prefixes:
            raise ValueError(f"{self.key!r} has no optimizer state {prefix!r}")
        return getattr(self.optimizer, prefix)[0]._materialized()


class _Round:
    __slots__ = ("futures", "items", "kind", "since")

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.items: dict[int, Any] = {}
        self.futures: dict[int, torch.futures.Future] = {}
        self.since = time.monotonic()


def _optimizer_class(name: str) -> Any:
    from spore import nn

    classes = {"Momentum": nn.Momentum, "Adam": nn.Adam}
    ftrl = getattr(nn, "FTRL", None)
    if ftrl is not None:
        classes["FTRL"] = ftrl
    if name not in classes:
        raise ValueError(f"the optimizer {name!r} cannot run on a parameter server")
    return classes[name]


class Server:
    """One server process's state. Handlers run on rpc threads; ``lock`` guards
    the rounds, ``apply_lock`` the parameters."""

    def __init__(self, cluster: Cluster, sync: bool) -> None:
        self.cluster = cluster
        self.name = server_name(cluster.index)
        self.workers = cluster.worker_num
        self.sync = sync
        self.lock = threading.Lock()
        self.apply_lock = threading.Lock()
        self.parts: dict[str, _Part] = {}
        self.rounds: dict[int, _Round] = {}
        now = time.monotonic()
        self.heard: dict[int, float] = dict.fromkeys(range(self.workers), now)
        self.finished: set[int] = set()
        self.failure: str | None = None
        self.done = threading.Event()
        self._watchdog = threading.Thread(
            target=self._watch, name="spore-ps-watchdog", daemon=True
        )

    def start_watchdog(self) -> None:
        """Start timing the workers (once the job has formed)."""
        with self.lock:
            now = time.monotonic()
            self.heard = dict.fromkeys(range(self.workers), now)
        self._watchdog.start()

    # ---- rounds ------------------------------------------------------------------

    def join(self, seq: int, worker: int, kind: str, item: Any, complete: Any) -> Any:
        """Add ``worker``'s ``item`` to round ``seq``; when all are in, run
        ``complete(items)`` (a dict worker -> result) and answer every future."""
        future: torch.futures.Future = torch.futures.Future()
        with self.lock:
            self._hear(worker)
            if self.failure is not None:
                future.set_exception(RuntimeError(self.failure))
                return future
            found = self.rounds.get(seq)
            if found is None:
                found = self.rounds[seq] = _Round(kind)
            if found.kind != kind or worker in found.items:
                why = (
                    f"call {seq} is a {found.kind} for other workers but a {kind} "
                    f"for {worker_name(worker)}"
                    if found.kind != kind
                    else f"{worker_name(worker)} joined call {seq} twice"
                )
                self._fail_locked(f"the workers' calls disagree: {why}")
                future.set_exception(RuntimeError(self.failure))
                return future
            found.items[worker] = item
            found.futures[worker] = future
            if len(found.items) < self.workers:
                return future
            del self.rounds[seq]
        try:
            with self.apply_lock:
                results = complete(found.items)
        except Exception as err:  # answer everyone with the same clear error
            message = f"{self.name}: {kind} failed: {type(err).__name__}: {err}"
            for waiting in found.futures.values():
                waiting.set_exception(RuntimeError(message))
            return future
        for index, waiting in found.futures.items():
            waiting.set_result(results[index])
        return future

    def _hear(self, worker: int) -> None:
        if not 0 <= worker < self.workers:
            raise ValueError(f"unknown worker index {worker}")
        self.heard[worker] = time.monotonic()

    def heartbeat(self, worker: int) -> bool:
        with self.lock:
            self._hear(worker)
            return self.failure is None

    def _fail_locked(self, message: str) -> None:
        if self.failure is None:
            self.failure = f"{self.name}: {message}"
            print(
                f"spore parameter server: {self.failure}", file=sys.stderr, flush=True
            )
        for found in self.rounds.values():
            for waiting in found.futures.values():
                if not waiting.done():
                    waiting.set_exception(RuntimeError(self.failure))
        self.rounds.clear()
        self.done.set()

    def _watch(self) -> None:
        timeout = self.cluster.timeout
        while not self.done.wait(min(0.5, timeout / 4)):
            now = time.monotonic()
            with self.lock:
                for seq, found in sorted(self.rounds.items()):
                    if now - found.since > timeout:
                        missing = sorted(set(range(self.workers)) - set(found.items))
                        self._fail_locked(
                            f"{', '.join(worker_name(w) for w in missing)} sent "
                            f"nothing for call {seq} ({found.kind}) within "
                            f"{timeout:g} s while {len(found.items)} other worker(s) "
                            "waited: a worker died or hung"
                        )
                        break
                else:
                    silent = [
                        w
                        for w, t in self.heard.items()
                        if w not in self.finished and now - t > timeout
                    ]
                    if silent:
                        self._fail_locked(
                            f"{', '.join(worker_name(w) for w in silent)} stopped "
                            f"responding (no message or heartbeat for {timeout:g} s): "
                            "a worker died or hung"
                        )

    # ---- registration ----------------------------------------------------------------

    def register(self, seq: int, worker: int, records: list, payloads: list) -> Any:
        if not isinstance(records, list) or not all(
            isinstance(r, dict) and _wire.is_plain(r) for r in records
        ):
            raise ValueError("a registration should be a list of plain records")
        if not isinstance(payloads, list) or len(payloads) != len(records):
            raise ValueError("a registration needs one payload per record")
        return self.join(seq, worker, "registration", (records, payloads), self._create)

    def _create(self, items: dict[int, Any]) -> dict[int, list[torch.Tensor]]:
        first_records, first_payloads = items[0]
        for worker, (records, _) in items.items():
            if [_comparable(r) for r in records] != [
                _comparable(r) for r in first_records
            ]:
                raise ValueError(
                    f"{worker_name(worker)} registered other parameters than "
                    f"{worker_name(0)} (names, shapes, dtypes or optimizer settings "
                    "differ): every worker must build the same network"
                )
        made = []
        for record, payload in zip(first_records, first_payloads, strict=True):
            if record["key"] in self.parts:
                raise ValueError(f"the parameter {record['key']!r} is registered twice")
            made.append(self._make_part(record, payload))
        for part in made:
            self.parts[part.key] = part
        values = [part.data.detach() for part in made if part.local]
        return dict.fromkeys(items, values)

    def _make_part(self, record: dict[str, Any], payload: Any) -> _Part:
        shape = tuple(int(d) for d in record["shape"])
        start, stop = record["rows"]
        block = (stop - start, *shape[1:]) if shape else ()
        if record["init"] is not None:
            lazy = _wire.lazy_from_spec(record["init"])
            if tuple(lazy.shape) != shape:
                raise ValueError(f"{record['key']!r}: the initializer's shape differs")
            lazy._materialize_block((start,) + (0,) * (len(shape) - 1), block)
            data = lazy._materialized()
        else:
            data = _wire.check_tensor(payload, f"the value of {record['key']!r}")
            if tuple(data.shape) != block:
                raise ValueError(
                    f"{record['key']!r}: expected a value of shape {block}, "
                    f"got {tuple(data.shape)}"
                )
            data = data.clone()
        if str(Tensor.from_torch(data).dtype) != record["dtype"]:
            raise ValueError(f"{record['key']!r}: expected dtype {record['dtype']}")
        return _Part(record, Parameter(Tensor.from_torch(data), name=record["key"]))

    def configure(self, seq: int, worker: int, records: list) -> Any:
        if not isinstance(records, list) or not all(
            isinstance(r, dict) and _wire.is_plain(r) for r in records
        ):
            raise ValueError("an optimizer setup should be a list of plain records")
        return self.join(seq, worker, "optimizer setup", records, self._configure)

    def _configure(self, items: dict[int, Any]) -> dict[int, bool]:
        records = items[0]
        for worker, others in items.items():
            if others != records:
                raise ValueError(
                    f"{worker_name(worker)} set up other optimizer settings than "
                    f"{worker_name(0)}: every worker must build the same optimizer"
                )
        made = {}
        for record in records:
            part = self._part(record["key"])
            if part.optimizer is not None or record["key"] in made:
                raise ValueError(f"{record['key']!r} already has an optimizer")
            cls = _optimizer_class(record["optimizer"])
            made[record["key"]] = cls(
                [part.param],
                learning_rate=float(record["lr"]),
                weight_decay=float(record["weight_decay"]),
                loss_scale=float(record["loss_scale"]),
                **record["config"],
            )
        for key, optimizer in made.items():
            part = self.parts[key]
            part.optimizer, part.mean = (
                optimizer,
                bool(next(r for r in records if r["key"] == key)["mean"]),
            )
        return dict.fromkeys(items, True)

    # ---- a training step -------------------------------------------------------------

    def step(self, seq: int, worker: int, keys: list, grads: list, lrs: list) -> Any:
        if not (
            isinstance(keys, list)
            and isinstance(grads, list)
            and isinstance(lrs, list)
            and len(keys) == len(grads) == len(lrs)
        ):
            raise ValueError("a push needs equally long lists of keys, grads and lrs")
        for key in keys:
            if key not in self.parts or self.parts[key].optimizer is None:
                raise ValueError(f"{key!r} has no optimizer on {self.name}")
        if self.sync:
            return self.join(seq, worker, "push", (keys, grads, lrs), self._apply_all)
        future: torch.futures.Future = torch.futures.Future()
        with self.lock:
            self._hear(worker)
        with self.apply_lock:
            try:
                result = self._apply_all({worker: (keys, grads, lrs)})[worker]
                future.set_result([t.clone() for t in result])
            except Exception as err:
                future.set_exception(
                    RuntimeError(
                        f"{self.name}: push failed: {type(err).__name__}: {err}"
                    )
                )
        return future

    def _apply_all(self, items: dict[int, Any]) -> dict[int, list[torch.Tensor]]:
        keys = items[min(items)][0]
        for worker, (others, _, _) in items.items():
            if others != keys:
                raise ValueError(
                    f"{worker_name(worker)} pushed other parameters than the rest"
                )
        out = []
        for position, key in enumerate(keys):
            part = self.parts[key]
            grad = self._gradient(part, [items[w][1][position] for w in sorted(items)])
            lr = float(items[min(items)][2][position])
            part.optimizer._set_static_lr(lr)
            part.optimizer((grad,))
            if part.local:
                out.append(part.data.detach())
        return dict.fromkeys(items, out)

    def _gradient(self, part: _Part, pushes: list[Any]) -> torch.Tensor:
        """The step's gradient of ``part``: the workers' pushes summed (in worker
        order) and, for a mean, divided by the number of workers."""
        data = part.data
        if part.sparse:
            total = torch.zeros_like(data)
            for push in pushes:
                ids, rows = push
                ids = _wire.check_tensor(ids, f"ids of {part.key!r}")
                rows = _wire.check_tensor(rows, f"rows of {part.key!r}")
                if ids.numel() and (
                    int(ids.min()) < 0 or int(ids.max()) >= data.shape[0]
                ):
                    raise ValueError(f"row ids of {part.key!r} are out of range")
                total.index_add_(0, ids.long(), rows.to(total.dtype))
        else:
            grads = [
                _wire.check_tensor(p, f"the gradient of {part.key!r}") for p in pushes
            ]
            for grad in grads:
                if grad.shape != data.shape:
                    raise ValueError(
                        f"the gradient of {part.key!r} should have shape "
                        f"{tuple(data.shape)}, got {tuple(grad.shape)}"
                    )
            # The received tensors are this server's own: sum into the first.
            total = grads[0].to(data.dtype)
            for grad in grads[1:]:
                total.add_(grad)
        if part.mean and len(pushes) > 1:
            total.div_(self.workers)
        return total

    # ---- reads and writes outside training ------------------------------------------

    def lookup(self, worker: int, key: str, ids: torch.Tensor) -> torch.Tensor:
        part = self._part(key)
        ids = _wire.check_tensor(ids, "ids")
        with self.lock:
            self._hear(worker)
        local = ids.long() - part.start
        if local.numel() and (
            int(local.min()) < 0 or int(local.max()) >= part.stop - part.start
        ):
            raise ValueError(f"row ids for {key!r} are outside {self.name}'s rows")
        with self.apply_lock:
            return part.data.index_select(0, local)

    def fetch(self, key: str, prefix: str) -> torch.Tensor:
        part = self._part(key)
        with self.apply_lock:
            return part.state(prefix).detach().clone()

    def assign(self, key: str, prefix: str, value: torch.Tensor) -> bool:
        part = self._part(key)
        value = _wire.check_tensor(value, f"the value of {key!r}")
        with self.apply_lock:
            target = part.state(prefix)
            if value.shape != target.shape:
                raise ValueError(
                    f"the value of {key!r} should have shape {tuple(target.shape)}, "
                    f"got {tuple(value.shape)}"
                )
            with torch.no_grad():
                target.copy_(value)
        return True

    def _part(self, key: Any) -> _Part:
        if not isinstance(key, str) or key not in self.parts:
            raise ValueError(f"{key!r} is not registered on {self.name}")
        return self.parts[key]

    def finish(self, worker: int, ok: bool, message: str) -> bool:
        with self.lock:
            self._hear(worker)
            self.finished.add(worker)
            if not ok:
                self._fail_locked(f"{worker_name(worker)} failed: {message}")
            elif len(self.finished) == self.workers:
                self.done.set()
        return True


def _comparable(record: dict[str, Any]) -> dict[str, Any]:
    """A record without what only worker 0 sends (the initial values' spec)."""
    return {k: v for k, v in record.items() if k != "init"}


# ---- rpc entry points: module-level functions, so rpc can name them ------------------


def _server() -> Server:
    if _SERVER is None:
        raise RuntimeError("this process is not a parameter server")
    return _SERVER


@torch.distributed.rpc.functions.async_execution
def rpc_register(seq: int, worker: int, records: list, payloads: list) -> Any:
    return _server().register(seq, worker, records, payloads)


@torch.distributed.rpc.functions.async_execution
def rpc_configure(seq: int, worker: int, records: list) -> Any:
    return _server().configure(seq, worker, records)


@torch.distributed.rpc.functions.async_execution
def rpc_step(seq: int, worker: int, keys: list, grads: list, lrs: list) -> Any:
    return _server().step(seq, worker, keys, grads, lrs)


def rpc_lookup(worker: int, key: str, ids: torch.Tensor) -> torch.Tensor:
    return _server().lookup(worker, key, ids)


def rpc_fetch(key: str, prefix: str) -> torch.Tensor:
    return _server().fetch(key, prefix)


def rpc_assign(key: str, prefix: str, value: torch.Tensor) -> bool:
    return _server().assign(key, prefix, value)


def rpc_heartbeat(worker: int) -> bool:
    return _server().heartbeat(worker)


def rpc_finish(worker: int, ok: bool, message: str) -> bool:
    return _server().finish(worker, ok, message)
