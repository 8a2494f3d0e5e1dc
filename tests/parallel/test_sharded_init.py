"""Sharded init: each rank's slice is the same block of the unsharded tensor, bit for
bit, for every initializer, layout and rank count (Note [sharded init])."""

from __future__ import annotations

import numpy as np
import pytest

import spore
from spore import Parameter
from spore.common import initializer as init
from spore.common.initializer import initializer
from spore.parallel import Layout, init_params, set_layout

INITIALIZERS_2D = [
    init.Zero(), init.One(), init.Constant(0.25), init.Normal(0.5, 0.1),
    init.Uniform(0.3), init.TruncatedNormal(0.2), init.XavierUniform(),
    init.XavierNormal(2.0), init.HeUniform(), init.HeNormal(mode="fan_out"),
    init.VarianceScaling(0.5, "fan_avg", "uniform"),
    init.VarianceScaling(1.0, "fan_in", "truncated_normal"), init.Identity(),
    init.Sparse(0.3), init.Orthogonal(),
]  # fmt: skip

# (world, dev_mat, tensor_map): row, column, 2-D block, with replication, 1/2/4 ranks.
LAYOUTS_2D = [
    (1, [1], [-1, -1]),
    (2, [2], [0, -1]),  # rows
    (2, [2], [-1, 0]),  # columns
    (2, [2], [-1, -1]),  # replicated
    (4, [4], [0, -1]),  # rows
    (4, [4], [-1, 0]),  # columns
    (4, [2, 2], [1, 0]),  # 2-D blocks
    (4, [2, 2], [0, 1]),  # 2-D blocks, transposed axes
    (4, [2, 2], [0, -1]),  # rows, 2 replicas
    (4, [2, 2], [-1, 1]),  # columns, 2 replicas (replicas adjacent)
]


def _unsharded(init_obj, shape, seed=7):
    spore.set_seed(seed)
    return Parameter(initializer(init_obj, shape), name="w").init_data().asnumpy()


def _sharded_slices(init_obj, shape, world, dev_mat, tensor_map, seed=7):
    """Build the Parameter afresh on every simulated rank, as each process would."""
    spore.set_auto_parallel_context(parallel_mode="semi_auto_parallel")
    slices = []
    for rank in range(world):
        spore.set_seed(seed)
        p = Parameter(initializer(init_obj, shape), name="w")
        assert p.has_init  # semi-auto parallel keeps it lazy
        layout = set_layout(p, dev_mat, tensor_map)
        init_params([p], rank=rank, world=world)
        assert (p.sliced, p.has_init, p.shape) == (True, False, layout.slice_shape)
        slices.append((layout, rank, p.asnumpy().copy()))
    spore.reset_auto_parallel_context()
    return slices


def _reassemble(shape, slices):
    full = np.full(shape, np.nan, np.float32)
    for layout, rank, values in slices:
        index = tuple(
            slice(o, o + s)
            for o, s in zip(layout.offsets(rank), layout.slice_shape, strict=True)
        )
        if not np.isnan(full[index]).all():  # a replica: must equal the first copy
            assert np.array_equal(full[index], values)
        full[index] = values
    return full


@pytest.mark.parametrize("init_obj", INITIALIZERS_2D, ids=lambda i: type(i).__name__)
@pytest.mark.parametrize(("world", "dev_mat", "tensor_map"), LAYOUTS_2D)
def test_slices_reassemble_into_the_unsharded_tensor(
    init_obj, world, dev_mat, tensor_map
):
    shape = (8, 12)
    expected = _unsharded(init_obj, shape)
    got = _reassemble(
        shape, _sharded_slices(init_obj, shape, world, dev_mat, tensor_map)
    )
    assert np.array_equal(got, expected)  # bit for bit, no NaN left


@pytest.mark.parametrize(
    ("world", "dev_mat", "tensor_map"),
    [(2, [2], [0, -1, -1]), (2, [2], [-1, 0, -1]), (4, [2, 2], [1, 0, -1]),
     (4, [2, 2], [-1, -1, 0])],
)  # fmt: skip
@pytest.mark.parametrize(
    "init_obj", [init.Dirac(), init.Dirac(groups=2), init.HeNormal()]
)
def test_3d_slices_reassemble(init_obj, world, dev_mat, tensor_map):
    shape = (4, 4, 6)
    expected = _unsharded(init_obj, shape)
    got = _reassemble(
        shape, _sharded_slices(init_obj, shape, world, dev_mat, tensor_map)
    )
    assert np.array_equal(got, expected)


def test_replicas_hold_identical_slices():
    slices = _sharded_slices(init.Normal(), (8, 12), 4, [2, 2], [0, -1])
    layout = slices[0][0]
    assert [layout.slice_index(r) for r in range(4)] == [0, 1, 0, 1]
    assert np.array_equal(slices[0][2], slices[2][2])
    assert not np.array_equal(slices[0][2], slices[1][2])


def test_sliced_init_never_allocates_the_full_tensor(monkeypatch):
    """The initializer is asked for the local block only."""
    requested = []
    original = init.Normal._fill

    def spy(self, out, full_shape, offsets, key):
        requested.append((out.shape, tuple(full_shape), tuple(offsets)))
        return original(self, out, full_shape, offsets, key)

    monkeypatch.setattr(init.Normal, "_fill", spy)
    spore.set_auto_parallel_context(parallel_mode="semi_auto_parallel")
    p = Parameter(initializer(init.Normal(), (1024, 64)), name="w")
    set_layout(p, [4], [0, -1])
    init_params(p, rank=3, world=4)
    assert requested == [((256, 64), (1024, 64), (768, 0))]
    assert p.to_torch().untyped_storage().nbytes() == 256 * 64 * 4


def test_init_data_without_layout_uses_the_declared_one():
    spore.set_auto_parallel_context(parallel_mode="semi_auto_parallel")
    spore.set_seed(3)
    p = Parameter(initializer("normal", (4, 6)), name="w")
    set_layout(p, Layout.create((4, 6), [2], [-1, 0]))
    p.init_data()  # rank 0 outside torch.distributed
    spore.reset_auto_parallel_context()
    assert (p.shape, p.sliced) == ((4, 3), True)
    assert np.array_equal(p.asnumpy(), _unsharded("normal", (4, 6), seed=3)[:, :3])


def test_init_data_accepts_a_layout_object_as_mindspores_tuple():
    spore.set_auto_parallel_context(parallel_mode="semi_auto_parallel")
    spore.set_seed(5)
    p = Parameter(initializer("uniform", (4, 8)), name="w")
    p.init_data(Layout.create((4, 8), [2, 2], [1, 0]).to_tuple(), set_sliced=True)
    spore.reset_auto_parallel_context()
    assert (p.shape, p.sliced) == ((2, 4), True)
    assert np.array_equal(p.asnumpy(), _unsharded("uniform", (4, 8), seed=5)[:2, :4])


def test_init_params_refuses_a_device_matrix_not_matching_the_world():
    spore.set_auto_parallel_context(parallel_mode="semi_auto_parallel")
    p = Parameter(initializer("normal", (4, 6)), name="w")
    set_layout(p, [2], [0, -1])
    with pytest.raises(ValueError, match=r"has 2 devices, but the world size is 4"):
        init_params(p, rank=0, world=4)
    assert p.has_init


def test_init_params_refuses_a_rank_outside_the_device_matrix():
    spore.set_auto_parallel_context(parallel_mode="semi_auto_parallel")
    p = Parameter(initializer("normal", (4, 6)), name="w")
    set_layout(p, [2], [0, -1])
    with pytest.raises(ValueError, match=r"the rank should be in \[0, 2\)"):
        init_params(p, rank=2, world=2)
    assert p.has_init


def test_unsharded_parameters_materialise_whole():
    spore.set_auto_parallel_context(parallel_mode="semi_auto_parallel")
    net = spore.nn.Dense(6, 4)
    set_layout(net.weight, [2], [0, -1])
    init_params(net, rank=1, world=2)
    assert (net.weight.shape, net.bias.shape, net.bias.sliced) == ((2, 6), (4,), False)
