"""The worker side of the parameter server.

At an optimizer's first step the client registers the optimizer's PS parameters
with the servers (names, shapes, the optimizer and its settings, and worker 0's
initial values, or their initializer spec when still lazy), and starts every
worker from the servers' values. Each step it pushes the PS gradients and pulls
the new values in one call per server; the optimizer updates only the other
parameters locally. Tables set with ``init_in_server`` never exist here: the
`Embedding` layer looks its rows up on the servers, and the lookup's backward
pass collects a sparse gradient (ids, rows) to push.
"""

from __future__ import annotations

import threading
from typing import Any

import torch
import torch.distributed.rpc as rpc

from spore.common import dtype as mstype
from spore.common.initializer import Zero
from spore.common.parameter import Parameter
from spore.communication.management import _first_line
from spore.parallel._ps import _server, _wire
from spore.parallel._ps._cluster import Cluster, server_name

_TABLE_SUFFIX = "embedding_table"


class RemoteHandle:
    """What a Parameter of a PS parameter holds on a worker (`Parameter._ps_remote`).

    ``local`` is True for a PS parameter the worker keeps a copy of (its values
    are refreshed from the servers after every step); False for server-held
    values (an ``init_in_server`` table, and the optimizer state of every PS
    parameter), whose Parameter stays lazy and shows ``anchor`` to autograd.
    """

    def __init__(self, client: PSClient, entry: _Entry, prefix: str, local: bool):
        self.client, self.entry, self.prefix, self.local = client, entry, prefix, local
        self.anchor = torch.zeros((), dtype=torch.float32, requires_grad=not local)
        self.pending: list[tuple[torch.Tensor, torch.Tensor]] = []  # sparse grads

    def fetch(self) -> torch.Tensor:
        """A copy of the full values, gathered from the servers."""
        return self.client.fetch(self.entry, self.prefix)

    def assign(self, data: Any) -> None:
        """Send new full values (a spore Tensor) to the servers."""
        values = data._materialized().detach()
        self.client.assign(self.entry, self.prefix, values)

    def lookup(self, ids: torch.Tensor) -> torch.Tensor:
        """The table's rows for ``ids`` (shape ``ids.shape + row shape``),
        differentiable: the backward pass records the sparse gradient."""
        return _Lookup.apply(self.anchor, ids, self)


class _Lookup(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, anchor: torch.Tensor, ids: torch.Tensor, handle: Any) -> Any:
        flat = ids.reshape(-1).long()
        unique, inverse = torch.unique(flat, return_inverse=True)
        rows = handle.client.gather_rows(handle.entry, unique)
        ctx.handle, ctx.row_shape = handle, tuple(rows.shape[1:])
        ctx.save_for_backward(unique, inverse)
        return rows.index_select(0, inverse).reshape(*ids.shape, *ctx.row_shape)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> Any:
        unique, inverse = ctx.saved_tensors
        rows = torch.zeros((unique.numel(), *ctx.row_shape), dtype=grad.dtype)
        rows.index_add_(0, inverse, grad.reshape(-1, *ctx.row_shape))
        ctx.handle.pending.append((unique, rows))
        return torch.zeros((), dtype=torch.float32), None, None


class _Entry:
    """One PS parameter: where its rows live, and its Parameters on this worker."""

    def __init__(self, key: str, param: Parameter, parts: list[tuple[int, int, int]]):
        self.key = key
        self.param = param
        self.parts = parts  # (server, start, stop)
        self.handle: RemoteHandle | None = None
        self.configured = False  # an optimizer's settings were sent


class Plan:
    """An optimizer's PS parameters (by index) and how to step them."""

    def __init__(self, client: PSClient, indices: list[int], entries: list[_Entry]):
        self.client = client
        self.indices = frozenset(indices)
        self.order = indices
        self.entries = entries

    def step(self, grads: list[Any], lrs: list[float]) -> None:
        self.client.step(self, grads, lrs)


class PSClient:
    """A worker's connection to the servers."""

    def __init__(self, cluster: Cluster, sync: bool) -> None:
        self.cluster = cluster
        self.sync = sync
        self.worker = cluster.index
        self.seq = [0] * cluster.server_num  # rounds joined, per server
        self.load = [0] * cluster.server_num  # bytes placed on each server
        self.entries: dict[str, _Entry] = {}
        self.failed: str | None = None
        self._stop = threading.Event()
        self._beat = threading.Thread(target=self._heartbeat, daemon=True)
        self._beat.start()

    # ---- calls -----------------------------------------------------------------------

    def _call(self, server: int, what: str, func: Any, args: tuple) -> Any:
        return rpc.rpc_async(server_name(server), func, args=args)

    def _wait(self, futures: dict[int, Any], what: str) -> dict[int, Any]:
        out = {}
        for server, future in futures.items():
            try:
                result = future.wait()
                if isinstance(result, BaseException):  # a handler's own failure
                    raise result
                out[server] = result
            except Exception as err:
                self.failed = f"{server_name(server)} failed during {what}: {err}"
                raise RuntimeError(
                    f"For 'parameter server', {server_name(server)} failed or could "
                    f"not be reached during {what} (worker {self.worker}): "
                    f"{_first_line(err)}"
                ) from None
        return out

    def _round(self, server: int) -> int:
        self.seq[server] += 1
        return self.seq[server]

    def _heartbeat(self) -> None:
        period = max(self.cluster.timeout / 4, 0.05)
        while not self._stop.wait(period):
            for server in range(self.cluster.server_num):
                try:
                    rpc.rpc_async(
                        server_name(server), _server.rpc_heartbeat, args=(self.worker,)
                    )
                except Exception:  # a dead server is reported by the next real call
                    return

    # ---- registration ----------------------------------------------------------------

    def register(self, params: list[Parameter]) -> None:
        """Place ``params`` on the servers and start them from the servers' values
        (called by ``set_param_ps``; every worker registers the same ones in the
        same order). Worker 0 sends the initial values, or their initializer spec
        while they are lazy, so a server computes exactly a local init.

        Raises:
            RuntimeError: If a built-in initializer is needed and missing, or a
                server fails.
        """
        fresh = [p for p in params if p.name not in self.entries]
        if not fresh:
            return
        by_server: dict[int, tuple[list, list]] = {}
        entries = []
        for param in fresh:
            spec = _wire.initializer_spec(param) if param.has_init else None
            if param.init_in_server and param.has_init and spec is None:
                raise RuntimeError(
                    f"For 'set_param_ps', the initializer of '{param.name}' cannot be "
                    "rebuilt on the server from plain arguments; init_in_server needs "
                    "a built-in initializer."
                )
            entry = _Entry(param.name, param, self._place(param))
            entries.append(entry)
            for server, start, stop in entry.parts:
                record = {
                    "key": param.name,
                    "shape": list(param.shape),
                    "dtype": str(param.dtype),
                    "rows": [start, stop],
                    "local": not param.init_in_server,
                    "sparse": param.init_in_server,
                    "init": None,
                }
                payload = None
                if self.worker == 0:
                    if spec is not None:
                        record["init"] = spec
                    else:
                        payload = _rows(param._materialized(), start, stop).contiguous()
                records, payloads = by_server.setdefault(server, ([], []))
                records.append(record)
                payloads.append(payload)
        futures = {
            server: self._call(
                server,
                "registration",
                _server.rpc_register,
                (self._round(server), self.worker, records, payloads),
            )  # fmt: skip
            for server, (records, payloads) in sorted(by_server.items())
        }
        answers = self._wait(futures, "registration")
        self._adopt(entries, answers)
        for entry in entries:
            self.entries[entry.key] = entry
            entry.handle = RemoteHandle(
                self, entry, "", local=not entry.param.init_in_server
            )
            entry.param._ps_remote = entry.handle

    def attach(self, optimizer: Any) -> Plan:
        """Give the servers ``optimizer``'s settings for its PS parameters; from
        now on its steps push and pull them (called at its first step).

        Raises:
            RuntimeError: If the optimizer cannot run on a server, its weight
                decay is dynamic, a PS parameter already has another optimizer,
                or a server fails.
        """
        params = list(optimizer.parameters)
        indices = [i for i, p in enumerate(params) if p.is_param_ps]
        config = getattr(optimizer, "_ps_config", None)
        if config is None:
            raise RuntimeError(
                f"For 'set_param_ps', the optimizer {optimizer.cls_name} cannot update "
                "parameters on a parameter server; use Momentum, Adam or FTRL (the "
                f"PS parameters: {[params[i].name for i in indices]})."
            )
        self.register([params[i] for i in indices])
        settings = config()
        by_server: dict[int, list] = {}
        entries = []
        for i in indices:
            entry = self.entries[params[i].name]
            if entry.param is not params[i] or entry.configured:
                raise RuntimeError(
                    f"For 'set_param_ps', Parameter '{params[i].name}' is already "
                    "trained by another optimizer on the parameter server."
                )
            entries.append(entry)
            record = {
                "key": entry.key,
                "mean": optimizer._ps_mean(),
                "optimizer": optimizer.cls_name,
                "config": settings,
                "lr": optimizer._ps_lr(i),
                "weight_decay": optimizer._ps_weight_decay(i),
                "loss_scale": float(optimizer.loss_scale),
            }
            for server, _, _ in entry.parts:
                by_server.setdefault(server, []).append(record)
        futures = {
            server: self._call(
                server,
                "optimizer setup",
                _server.rpc_configure,
                (self._round(server), self.worker, records),
            )  # fmt: skip
            for server, records in sorted(by_server.items())
        }
        self._wait(futures, "optimizer setup")
        for i, entry in zip(indices, entries, strict=True):
            entry.configured = True
            for prefix in optimizer._state_prefixes:
                state = getattr(optimizer, prefix)[i]
                if not state.has_init:  # made before set_param_ps: free it
                    state._set_lazy(state.shape, state.dtype, Zero(), (0, 0))
                state._ps_remote = RemoteHandle(self, entry, prefix, local=False)
        return Plan(self, indices, entries)

    def _place(self, param: Parameter) -> list[tuple[int, int, int]]:
        """Tables are split by rows over all servers; anything else goes whole to
        the least loaded server (in registration order: the same on every worker)."""
        servers = self.cluster.server_num
        size = param.nbytes
        rows = param.shape[0] if param.shape else 0
        if param.name.endswith(_TABLE_SUFFIX) and rows >= servers and servers > 1:
            parts = []
            for server in range(servers):
                start, stop = _wire.rows_of(rows, servers, server)
                parts.append((server, start, stop))
                self.load[server] += size * (stop - start) // rows
            return parts
        server = min(range(servers), key=lambda s: (self.load[s], s))
        self.load[server] += size
        return [(server, 0, rows)]

    def _adopt(self, entries: list[_Entry], answers: dict[int, list]) -> None:
        """Copy the servers' values (one answer per server, its pieces in the order
        of ``entries``) into the local copies; tables held only there are skipped."""
        taken = dict.fromkeys(answers, 0)
        for entry in entries:
            if entry.param.init_in_server:
                continue
            pieces = []
            for server, _, _ in entry.parts:
                pieces.append(answers[server][taken[server]])
                taken[server] += 1
            data = entry.param._materialized()
            with torch.no_grad():
                _assemble_into(data, entry.parts, pieces)

    # ---- a step ----------------------------------------------------------------------

    def step(self, plan: Plan, grads: list[Any], lrs: list[float]) -> None:
        """Push the PS gradients of this step and pull the new values."""
        pushes: dict[int, tuple[list, list, list]] = {}
        for i, entry in zip(plan.order, plan.entries, strict=True):
            sparse = entry.param.init_in_server
            if sparse:
                assert entry.handle is not None
                ids, rows = _take_pending(entry.handle, entry.param)
            for server, start, stop in entry.parts:
                keys, values, rates = pushes.setdefault(server, ([], [], []))
                keys.append(entry.key)
                rates.append(float(lrs[i]))
                if sparse:
                    mine = (ids >= start) & (ids < stop)
                    values.append((ids[mine] - start, rows[mine]))
                else:
                    grad = grads[i]
                    if grad is None:
                        grad = torch.zeros_like(entry.param._materialized())
                    values.append(_rows(grad, start, stop).contiguous())
        futures = {
            server: self._call(
                server,
                "a push",
                _server.rpc_step,
                (self._round(server) if self.sync else 0, self.worker, *push),
            )  # fmt: skip
            for server, push in sorted(pushes.items())
        }
        answers = self._wait(futures, "a push and pull of gradients")
        self._adopt(plan.entries, answers)  # the new values, as at registration

    # ---- reads and writes ------------------------------------------------------------

    def gather_rows(self, entry: _Entry, ids: torch.Tensor) -> torch.Tensor:
        """The rows ``ids`` (sorted, unique) of a server-held table."""
        futures, order = {}, []
        for server, start, stop in entry.parts:
            mine = (ids >= start) & (ids < stop)
            if bool(mine.any()):
                futures[server] = rpc.rpc_async(
                    server_name(server), _server.rpc_lookup,
                    args=(self.worker, entry.key, ids[mine]),
                )  # fmt: skip
                order.append(server)
        answers = self._wait(futures, f"a lookup in '{entry.key}'")
        if not order:
            row_shape = tuple(entry.param.shape[1:])
            return torch.empty(
                (0, *row_shape), dtype=mstype.to_torch(entry.param.dtype)
            )
        return torch.cat([answers[server] for server in order])

    def fetch(self, entry: _Entry, prefix: str) -> torch.Tensor:
        futures = {
            server: rpc.rpc_async(
                server_name(server), _server.rpc_fetch, args=(entry.key, prefix)
            )
            for server, _, _ in entry.parts
        }
        answers = self._wait(futures, f"a read of '{entry.key}'")
        if len(entry.parts) == 1:
            return answers[entry.parts[0][0]]
        return torch.cat([answers[server] for server, _, _ in entry.parts])

    def assign(self, entry: _Entry, prefix: str, values: torch.Tensor) -> None:
        futures = {
            server: rpc.rpc_async(
                server_name(server),
                _server.rpc_assign,
                args=(entry.key, prefix, _rows(values, start, stop).contiguous()),
            )  # fmt: skip
            for server, start, stop in entry.parts
        }
        self._wait(futures, f"a write of '{entry.key}'")

    # ---- the end ---------------------------------------------------------------------

    def finish(self, ok: bool, message: str = "") -> bool:
        """Tell every server this worker is done; False if any could not be told."""
        self._stop.set()
        futures = {
            server: rpc.rpc_async(
                server_name(server), _server.rpc_finish, args=(self.worker, ok, message)
            )
            for server in range(self.cluster.server_num)
        }
        try:
            self._wait(futures, "the end of training")
        except RuntimeError:
            return False
        return True


def _rows(data: torch.Tensor, start: int, stop: int) -> torch.Tensor:
    if data.dim() == 0:
        return data
    if start == 0 and stop == data.shape[0]:
        return data
    return data[start:stop]


def _assemble_into(
    data: torch.Tensor, parts: list[tuple[int, int, int]], pieces: list[torch.Tensor]
) -> None:
    """Put the servers' rows into ``data`` (in place: optimizers and autograd
    keep the same tensor). A whole value received from one server is adopted as
    ``data``'s storage instead of copied: it is this process's own buffer."""
    if len(pieces) == 1:
        piece = pieces[0]
        if (
            piece.shape == data.shape
            and piece.dtype == data.dtype
            and piece.is_contiguous()
            and data.is_contiguous()
        ):
            data.set_(piece)
            return
    for (_, start, stop), piece in zip(parts, pieces, strict=True):
        _rows(data, start, stop).copy_(piece.reshape(_rows(data, start, stop).shape))


def _take_pending(
    handle: RemoteHandle, param: Parameter
) -> tuple[torch.Tensor, torch.Tensor]:
    """The sparse gradient the lookups of this step recorded (then forgotten)."""
    pending, handle.pending = handle.pending, []
    row_shape = tuple(param.shape[1:])
    if not pending:
        return (
            torch.empty(0, dtype=torch.int64),
            torch.empty((0, *row_shape), dtype=mstype.to_torch(param.dtype)),
        )
    ids = torch.cat([p[0] for p in pending])
    rows = torch.cat([p[1] for p in pending])
    return ids, rows
