"""The parameter server's in-process parts: context options, roles, set_param_ps
on Parameters and Cells, what travels on the wire, the launcher's arguments."""

from __future__ import annotations

import os
import sys
import warnings

import numpy as np
import pytest

import spore
from spore import nn
from spore.common.initializer import Normal, initializer
from spore.parallel._ps import _cluster, _wire
from spore.ps_launch import launch, main


@pytest.fixture(autouse=True)
def _ps_reset():
    spore.reset_ps_context()
    yield
    spore.reset_ps_context()


@pytest.fixture
def worker_role(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MS_ROLE", "MS_WORKER")
    spore.set_ps_context(enable_ps=True)


# ---- context -------------------------------------------------------------------------


def test_ps_context_defaults_set_and_reset() -> None:
    assert spore.get_ps_context("enable_ps") is False
    assert spore.get_ps_context("ps_sync") is True
    spore.set_ps_context(enable_ps=True, server_num=2, ps_sync=False, ps_timeout=7.5)
    keys = ("enable_ps", "server_num", "ps_sync", "ps_timeout")
    assert [spore.get_ps_context(k) for k in keys] == [True, 2, False, 7.5]
    spore.reset_ps_context()
    assert spore.get_ps_context("server_num") is None


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"enable_ssl": True}, ValueError, r"option 'enable_ssl' is not supported"),
        ({"enable_ps": 1}, TypeError, r"'enable_ps' should be bool, but got int"),
        ({"server_num": 0}, ValueError, r"'server_num' should be >= 1, but got 0"),
        ({"server_num": 1.0}, TypeError, r"'server_num' should be int, but got float"),
        ({"ps_timeout": -1}, ValueError, r"'ps_timeout' should be > 0, but got -1"),
        ({"config_file_path": 3}, TypeError, r"'config_file_path' should be str"),
    ],
)
def test_bad_ps_options_are_refused_and_change_nothing(kwargs, error, match) -> None:
    with pytest.raises(error, match=match):
        spore.set_ps_context(**{"enable_ps": True, **kwargs})
    assert spore.get_ps_context("enable_ps") is False


def test_unknown_ps_option_read_is_refused() -> None:
    with pytest.raises(ValueError, match=r"option 'nope' is not supported"):
        spore.get_ps_context("nope")


def test_ps_workers_keep_initializer_parameters_lazy(worker_role) -> None:
    param = spore.Parameter(initializer("normal", (64, 8)), name="w")
    assert param.has_init is True
    spore.reset_ps_context()
    assert spore.Parameter(initializer("normal", (64, 8)), name="w").has_init is False


# ---- set_param_ps --------------------------------------------------------------------


def test_set_param_ps_needs_a_role(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MS_ROLE", raising=False)
    spore.set_ps_context(enable_ps=True)
    param = spore.Parameter(1.0, name="w")
    with pytest.raises(
        RuntimeError, match=r"this process has no parameter-server role"
    ):
        param.set_param_ps()
    assert param.is_param_ps is False


def test_set_param_ps_refuses_a_non_bool(worker_role) -> None:
    param = spore.Parameter(1.0, name="w")
    with pytest.raises(
        TypeError, match=r"'init_in_server' should be bool, but got int"
    ):
        param.set_param_ps(1)
    assert param.is_param_ps is False


class _Net(nn.Cell):
    def __init__(self) -> None:
        super().__init__()
        self.embedding = nn.Embedding(10, 4)
        self.dense = nn.Dense(4, 2)
        self.dense.bias.requires_grad = False


def test_cell_set_param_ps_marks_every_trainable_parameter(worker_role) -> None:
    net = _Net()
    net.set_param_ps()
    flags = {p.name: (p.is_param_ps, p.init_in_server) for p in net.get_parameters()}
    assert flags == {
        "embedding.embedding_table": (True, False),
        "dense.weight": (True, False),
        "dense.bias": (False, False),  # not trainable
    }


def test_cell_set_param_ps_init_in_server_is_all_or_nothing(worker_role) -> None:
    net = _Net()
    with pytest.raises(RuntimeError, match=r"but got 'dense.weight'"):
        net.set_param_ps(init_in_server=True)
    assert not any(p.is_param_ps for p in net.get_parameters())
    net.embedding.set_param_ps(init_in_server=True)  # only the table: allowed
    assert net.embedding.embedding_table.init_in_server is True


def test_cell_set_param_ps_refuses_a_non_bool_recurse(worker_role) -> None:
    with pytest.raises(TypeError, match=r"'recurse' should be bool, but got str"):
        _Net().set_param_ps(recurse="yes")


# ---- roles ---------------------------------------------------------------------------


def _ms_env(monkeypatch: pytest.MonkeyPatch, **values: str) -> None:
    for name in ("MS_ROLE", "MS_SERVER_NUM", "MS_WORKER_NUM", "MS_SCHED_HOST",
                 "MS_SCHED_PORT", "MS_NODE_ID", "RANK", "WORLD_SIZE"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    for name, value in values.items():
        monkeypatch.setenv(name, value)


FULL = {"MS_SERVER_NUM": "1", "MS_WORKER_NUM": "2", "MS_SCHED_HOST": "127.0.0.1",
        "MS_SCHED_PORT": "29500"}  # fmt: skip


def test_roles_from_mindspore_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    _ms_env(monkeypatch, MS_ROLE="MS_WORKER", MS_NODE_ID="1", **FULL)
    cluster = _cluster.resolve(5.0)
    assert (cluster.role, cluster.index, cluster.rpc_rank, cluster.world) == (
        "MS_WORKER",
        1,
        2,
        3,
    )


def test_roles_from_torchrun_ranks(monkeypatch: pytest.MonkeyPatch) -> None:
    _ms_env(monkeypatch, RANK="0", WORLD_SIZE="3")
    spore.set_ps_context(server_num=1)
    assert _cluster.resolve(5.0).role == "MS_PSERVER"
    monkeypatch.setenv("RANK", "2")
    cluster = _cluster.resolve(5.0)
    assert (cluster.role, cluster.index, cluster.worker_num) == ("MS_WORKER", 1, 2)


@pytest.mark.parametrize(
    ("values", "match"),
    [
        ({"MS_ROLE": "MS_BOSS", **FULL}, r"MS_ROLE should be one of"),
        ({"MS_ROLE": "MS_WORKER"},
         r"needs the environment variables \['MS_SERVER_NUM'"),
        ({"MS_ROLE": "MS_WORKER", **dict(FULL, MS_WORKER_NUM="0")},
         r"MS_WORKER_NUM should be an integer >= 1, but got '0'"),
        ({"MS_ROLE": "MS_PSERVER", "MS_NODE_ID": "1", **FULL},
         r"MS_NODE_ID=1 is out of range for MS_PSERVER with 1"),
        ({"RANK": "0", "WORLD_SIZE": "1", "MS_SERVER_NUM": "1"},
         r"WORLD_SIZE=1 cannot have server_num=1 servers and at least one worker"),
        ({}, r"this process has no role"),
    ],
)  # fmt: skip
def test_inconsistent_roles_are_refused(monkeypatch, values, match) -> None:
    _ms_env(monkeypatch, **values)
    with pytest.raises(RuntimeError, match=match):
        _cluster.resolve(5.0)


# ---- the wire ------------------------------------------------------------------------


@pytest.mark.parametrize(("total", "servers"), [(10, 3), (3, 3), (7, 1), (2000001, 4)])
def test_rows_split_into_contiguous_near_equal_parts(total: int, servers: int) -> None:
    parts = [_wire.rows_of(total, servers, i) for i in range(servers)]
    assert parts[0][0] == 0 and parts[-1][1] == total
    assert all(a[1] == b[0] for a, b in zip(parts, parts[1:], strict=False))
    sizes = [stop - start for start, stop in parts]
    assert max(sizes) - min(sizes) <= 1


@pytest.mark.parametrize(
    "init",
    ["normal", "uniform", "truncatedNormal", "xavier_uniform", "he_normal", "zeros"],
)
def test_a_server_rebuilds_any_rows_of_a_lazy_table_bit_for_bit(init: str) -> None:
    lazy = initializer(init, (50, 7), spore.float32)
    spec = _wire.initializer_spec(lazy)
    assert spec is not None and _wire.is_plain(spec)
    rebuilt = _wire.lazy_from_spec(spec)
    rebuilt._materialize_block((20, 0), (13, 7))
    full = lazy.init_data().asnumpy()
    assert np.array_equal(rebuilt.asnumpy(), full[20:33])


def test_an_initializer_with_unplain_arguments_is_sent_as_values() -> None:
    init = Normal(0.1)
    init._kwargs = dict(init._kwargs, extra=object())
    assert _wire.initializer_spec(initializer(init, (3, 3))) is None


def test_unknown_names_on_the_wire_are_refused() -> None:
    with pytest.raises(ValueError, match=r"unknown dtype 'Float7'"):
        _wire.dtype_from_name("Float7")
    spec = _wire.initializer_spec(initializer("normal", (2, 2)))
    with pytest.raises(ValueError, match=r"unknown initializer 'evil'"):
        _wire.lazy_from_spec(dict(spec, name="evil"))


# ---- the launcher --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (
            (["x"], 0, 1),
            r"'server_num' and 'worker_num' should be >= 1, but got 0 and 1",
        ),
        (([], 1, 1), r"'command' should not be empty"),
    ],
)
def test_launch_refuses_bad_arguments(args, match) -> None:
    with pytest.raises(ValueError, match=match):
        launch(*args)


def test_launch_command_line_refuses_bad_counts(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--worker_num", "0", "train.py"])
    assert exit_info.value.code == 2
    assert "'worker_num' should be >= 1" in capsys.readouterr().err


@pytest.mark.parametrize(("given", "seen"), [(None, "1"), ("0", "0")])
def test_launch_backs_large_buffers_with_huge_pages_unless_told(
    tmp_path, given, seen
) -> None:
    # Note [PS buffers]: the launcher turns PyTorch's huge-page allocation on for
    # every process it starts, and keeps a value the caller chose.
    env = {k: v for k, v in os.environ.items() if k != "THP_MEM_ALLOC_ENABLE"}
    if given is not None:
        env["THP_MEM_ALLOC_ENABLE"] = given
    record = (
        "import os, sys; name = os.environ['MS_ROLE'] + os.environ['MS_NODE_ID']; "
        "open(os.path.join(sys.argv[1], name), 'w').write("
        "os.environ.get('THP_MEM_ALLOC_ENABLE', 'unset'))"
    )
    status = launch([sys.executable, "-c", record, str(tmp_path)], 1, 2, env=env)
    assert status == 0
    seen_by = {p.name: p.read_text() for p in tmp_path.iterdir()}
    assert seen_by == {"MS_PSERVER0": seen, "MS_WORKER0": seen, "MS_WORKER1": seen}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux hint")
@pytest.mark.parametrize("given", [None, "0", "1"])
def test_a_ps_process_without_the_huge_page_switch_is_told(
    monkeypatch: pytest.MonkeyPatch, given: str | None
) -> None:
    # Note [PS buffers]: under plain torchrun nothing sets the switch, and steps
    # are slower without it; a value the caller set is a decision, not warned.
    from spore.parallel._ps import _runtime

    monkeypatch.delenv("THP_MEM_ALLOC_ENABLE", raising=False)
    if given is None:
        with pytest.warns(RuntimeWarning, match="THP_MEM_ALLOC_ENABLE=1"):
            _runtime._hint_huge_pages()
    else:
        monkeypatch.setenv("THP_MEM_ALLOC_ENABLE", given)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            _runtime._hint_huge_pages()


def test_optimizer_state_of_ps_parameters_stays_lazy_on_a_worker(worker_role) -> None:
    # Note [PS step]: the servers hold a PS parameter's optimizer state; the
    # worker's copy is never stepped, so building the optimizer allocates none,
    # even for parameters whose own values are already materialised.
    net = _Net()
    net.init_parameters_data()
    assert not any(p.has_init for p in net.get_parameters())
    net.set_param_ps()
    dense_weight = net.dense.weight.value().asnumpy().copy()
    optimizer = nn.Adam(net.trainable_params(), learning_rate=0.1)
    lazy = {m.name: m.has_init for m in optimizer.moment1 + optimizer.moment2}
    assert lazy == {
        "moment1.embedding.embedding_table": True,
        "moment1.dense.weight": True,
        "moment2.embedding.embedding_table": True,
        "moment2.dense.weight": True,
    }
    moment = optimizer.moment1[1]
    assert moment.shape == (2, 4) and moment.dtype == spore.float32
    np.testing.assert_array_equal(moment.init_data().asnumpy(), np.zeros((2, 4)))
    np.testing.assert_array_equal(net.dense.weight.value().asnumpy(), dense_weight)
