"""Initializers with structure: Identity, Sparse, Dirac, Orthogonal.

Re-exported by ``spore.common.initializer``; split out to keep modules small. Like
every built-in they fill any block of the full tensor (see ``_fill`` in
``_initializer_base.py``).
"""

from __future__ import annotations

import math

import numpy as np

from spore.common import _random
from spore.common._initializer_base import Key, Shape, _Builtin, _check_sigma, _register


def _block_slices(offsets: Shape, shape: Shape) -> tuple[slice, ...]:
    return tuple(slice(o, o + n) for o, n in zip(offsets, shape, strict=True))


@_register()
class Identity(_Builtin):
    """The 2-D identity matrix ``np.eye(rows, cols)``.

    Raises:
        ValueError: When the data is produced, if the tensor is not 2-D.

    Examples:
        >>> from spore.common.initializer import initializer
        >>> initializer("identity", [2, 3]).init_data().asnumpy().tolist()
        [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
    """

    def _fill(
        self, out: np.ndarray, full_shape: Shape, offsets: Shape, key: Key
    ) -> None:
        if len(full_shape) != 2:
            raise ValueError(
                f"For 'Identity', the initialized tensor should be 2-D, but got "
                f"{len(full_shape)} dimensions."
            )
        out.fill(0)
        (r0, c0), (rows, cols) = offsets, out.shape
        d = np.arange(max(r0, c0), min(r0 + rows, c0 + cols))
        out[d - r0, d - c0] = 1


@_register()
class Sparse(_Builtin):
    """N(0, sigma**2) with ``ceil(sparsity * rows)`` random zeros in every column.

    Args:
        sparsity: Fraction of each column set to zero.
        sigma: Standard deviation of the non-zero values. Default: 0.01.

    Raises:
        ValueError: When the data is produced, if the tensor is not 2-D or
            ``sigma < 0``.

    Examples:
        >>> from spore.common.initializer import initializer, Sparse
        >>> x = initializer(Sparse(0.5), [4, 3]).init_data().asnumpy()
        >>> [int((x[:, j] == 0).sum()) for j in range(3)]
        [2, 2, 2]
    """

    def __init__(self, sparsity: float, sigma: float = 0.01) -> None:
        super().__init__(sparsity=sparsity, sigma=sigma)
        self.sparsity = sparsity
        self.sigma = sigma

    def _fill(
        self, out: np.ndarray, full_shape: Shape, offsets: Shape, key: Key
    ) -> None:
        if len(full_shape) != 2:
            raise ValueError(
                f"For 'Sparse', the initialized tensor should be 2-D, but got "
                f"{len(full_shape)} dimensions."
            )
        _check_sigma(self.sigma, "Sparse")
        rows, cols = full_shape
        # MindSpore parity: zeroes permutation[:ceil(sparsity * rows)] (slice rules).
        zeros = len(range(rows)[: int(math.ceil(self.sparsity * rows))])
        _random.fill_normal(out, full_shape, offsets, key, 0.0, float(self.sigma))
        (r0, c0), (nr, nc) = offsets, out.shape
        out[
            _random.sparse_zero_mask(
                key, rows, cols, zeros, (r0, r0 + nr), (c0, c0 + nc)
            )
        ] = 0


@_register()
class Dirac(_Builtin):
    """Identity-preserving convolution kernels (per group), for 3-, 4- and 5-D shapes.

    ``w[g * out/groups + d, d, centre...] = 1`` for ``d < min(out/groups, in)``, with
    ``centre = size // 2`` in every spatial dimension; all else 0.

    Args:
        groups: Number of groups of the convolution. Default: 1.

    Raises:
        ValueError: When the data is produced, if the tensor is not 3-, 4- or 5-D
            or ``groups`` does not divide its first dimension.

    Examples:
        >>> from spore.common.initializer import initializer
        >>> initializer("dirac", [1, 1, 3]).init_data().asnumpy().tolist()
        [[[0.0, 1.0, 0.0]]]
    """

    def __init__(self, groups: int = 1) -> None:
        super().__init__(groups=groups)
        self.groups = groups

    def _fill(
        self, out: np.ndarray, full_shape: Shape, offsets: Shape, key: Key
    ) -> None:
        if len(full_shape) not in (3, 4, 5):
            raise ValueError(
                "For 'Dirac', the initialized tensor should have 3, 4 or 5 "
                f"dimensions, but got {len(full_shape)}."
            )
        if full_shape[0] % self.groups:
            raise ValueError(
                f"For 'Dirac', the first dimension {full_shape[0]} should be divisible "
                f"by 'groups', but got groups={self.groups}."
            )
        out.fill(0)
        per_group = full_shape[0] // self.groups
        d = np.arange(min(per_group, full_shape[1]))
        rows = (np.arange(self.groups)[:, None] * per_group + d).reshape(-1)
        ones = [rows, np.tile(d, self.groups)] + [
            np.full(rows.size, n // 2) for n in full_shape[2:]
        ]
        inside = np.ones(rows.size, np.bool_)
        for axis, (o, n) in enumerate(zip(offsets, out.shape, strict=True)):
            inside &= (ones[axis] >= o) & (ones[axis] < o + n)
        out[tuple(i[inside] - o for i, o in zip(ones, offsets, strict=True))] = 1


@_register()
class Orthogonal(_Builtin):
    """A (semi-)orthogonal matrix from the QR decomposition of a normal matrix.

    The tensor is viewed as ``rows x prod(rest)``. A block is cut from the full
    matrix, which is computed whole: QR needs all of it. Its normal draws are
    bit-exact everywhere; the QR (LAPACK) is exact only on the same machine and BLAS.

    Args:
        gain: Scaling factor. Default: 1.

    Raises:
        ValueError: When the data is produced, if the tensor has fewer than 2 dims.

    Examples:
        >>> import numpy as np
        >>> from spore.common.initializer import initializer
        >>> q = initializer("orthogonal", [3, 3]).init_data().asnumpy()
        >>> bool(np.allclose(q @ q.T, np.eye(3), atol=1e-5))
        True
    """

    def __init__(self, gain: float = 1.0) -> None:
        super().__init__(gain=gain)
        self.gain = gain

    def _fill(
        self, out: np.ndarray, full_shape: Shape, offsets: Shape, key: Key
    ) -> None:
        if len(full_shape) < 2:
            raise ValueError(
                f"For 'Orthogonal', the initialized tensor should have at least 2 "
                f"dimensions, but got {len(full_shape)}."
            )
        rows = full_shape[0]
        cols = math.prod(full_shape) // rows
        flat = np.empty((rows, cols), np.float64)
        _random.fill_normal(flat, (rows, cols), (0, 0), key, 0.0, 1.0)
        if rows < cols:
            flat = flat.T
        q, r = np.linalg.qr(flat)
        q *= np.sign(np.diag(r))
        if rows < cols:
            q = q.T
        full = (q * self.gain).reshape(full_shape)
        np.copyto(out, full[_block_slices(offsets, out.shape)], casting="unsafe")
