"""Small measurements behind explanations in bench/README.md (not targets).

    python bench/probes.py rpc-echo   # 100 MB rpc echo, with and without huge pages
    python bench/probes.py tables     # ziggurat tables: computed against shipped
    python bench/probes.py fill       # ns/elem of row and column slices vs torch

Each prints one line per measurement. One torch thread everywhere.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _echo(value):  # the rpc target: must be importable by name in both processes
    return value


def _rpc_child(rank: int, port: str) -> None:
    import torch
    import torch.distributed.rpc as rpc

    torch.set_num_threads(1)
    options = rpc.TensorPipeRpcBackendOptions(
        init_method=f"tcp://127.0.0.1:{port}", rpc_timeout=60
    )
    rpc.init_rpc(f"p{rank}", rank=rank, world_size=2, rpc_backend_options=options)
    if rank == 0:
        value = torch.ones(25 * 2**20)  # 100 MiB of float32
        times = []
        for i in range(7):
            start = time.perf_counter()
            rpc.rpc_sync("p1", _echo, args=(value,))
            if i >= 2:
                times.append(time.perf_counter() - start)
        flag = os.environ.get("THP_MEM_ALLOC_ENABLE", "unset")
        print(f"rpc echo of 100 MiB, THP_MEM_ALLOC_ENABLE={flag}: "
              f"median {statistics.median(times):.3f} s of 5")  # fmt: skip
    rpc.shutdown()


def rpc_echo() -> None:
    import socket

    for flag in ("0", "1"):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = str(sock.getsockname()[1])
        env = dict(os.environ, THP_MEM_ALLOC_ENABLE=flag, OMP_NUM_THREADS="1")
        procs = [
            subprocess.Popen(
                [sys.executable, __file__, "rpc-child", str(r), port], env=env
            )
            for r in (0, 1)
        ]
        for proc in procs:
            proc.wait(timeout=300)


def tables() -> None:
    from spore.common import _random_math as rm

    start = time.perf_counter()
    rm.computed_layers()
    computed = time.perf_counter() - start
    start = time.perf_counter()
    rm._stored_layers()
    stored = time.perf_counter() - start
    print(f"ziggurat tables: computed {computed * 1e3:.1f} ms, "
          f"loaded {stored * 1e3:.1f} ms")  # fmt: skip


def fill() -> None:
    import numpy as np
    import torch

    from spore.common import _random as rnd
    from spore.common._random_bits import Block, Stream

    torch.set_num_threads(1)
    cases = [
        ("rows", (5504, 2048), (2752, 0), (2752, 2048)),
        ("columns, runs of 2752", (2048, 5504), (0, 2752), (2048, 2752)),
        ("columns, runs of 1024", (2048, 2048), (0, 1024), (2048, 1024)),
    ]
    for label, full, offsets, shape in cases:
        out = np.ones(shape, np.float32)  # touched: no page faults in the timing
        spore_s, torch_s, read_s = [], [], []
        values = torch.ones(shape)
        block = Block(full, offsets, shape)
        for _ in range(7):
            start = time.perf_counter()
            rnd.fill_normal(out, full, offsets, (3, 4), 0.0, 0.02)
            spore_s.append(time.perf_counter() - start)
            start = time.perf_counter()
            values.normal_(0.0, 0.02)
            torch_s.append(time.perf_counter() - start)
            stream = Stream((3, 4))
            start = time.perf_counter()
            for c0, c1 in block.chunks(rnd.CHUNK):
                block.read(stream, c0, c1, False)
            read_s.append(time.perf_counter() - start)
        n = out.size / 1e9
        print(f"{label}: spore {statistics.median(spore_s) / n:.2f} ns/elem "
              f"(of which bits {statistics.median(read_s) / n:.2f}), torch "
              f"normal_ {statistics.median(torch_s) / n:.2f} ns/elem")  # fmt: skip


def main() -> None:
    what = sys.argv[1] if len(sys.argv) > 1 else ""
    if what == "rpc-child":
        _rpc_child(int(sys.argv[2]), sys.argv[3])
    elif what in ("rpc-echo", "tables", "fill"):
        {"rpc-echo": rpc_echo, "tables": tables, "fill": fill}[what]()
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
