"""The ``spore`` command.

spore demo [--epochs N] [--limit N] [--out DIR] ...   train a CNN on digits
spore demo --nproc 2 [...]                           the same, data parallel
spore seed                                           the seed document's examples
spore ckpt show|convert|diff ...                     inspect, convert, diff checkpoints
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence


def _build_parser() -> argparse.ArgumentParser:
    from spore.examples import digits_demo

    parser = argparse.ArgumentParser(
        prog="spore", description="MindSpore's parameter system on PyTorch."
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = commands.add_parser(
        "demo",
        help="train a small CNN on scikit-learn's 8x8 digits (needs spore[demo])",
        description="Train a small CNN on scikit-learn's 8x8 digits with spore's "
        "Model, print the parameter table and a summary, and save a plot.",
    )
    digits_demo.add_arguments(demo)
    # ---- data parallel (issue 5) ----
    demo.add_argument(
        "--nproc",
        type=int,
        default=1,
        help="ranks on this machine; above 1, train data-parallel through "
        "torch.distributed.run (gloo on CPU, NCCL on GPU)",
    )
    commands.add_parser(
        "seed", help="print the four examples of the seed document (r1.3)"
    )
    # ---- checkpoints (issue 4) ----
    from spore import _cli_ckpt

    _cli_ckpt.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``spore`` command; returns the exit status."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    if args.command == "demo":
        if args.nproc > 1:  # data parallel (issue 5)
            from spore.examples import train_data_parallel

            return train_data_parallel.launch_demo(args)
        from spore.examples import digits_demo

        return digits_demo.run_from_args(args)
    if args.command == "ckpt":  # checkpoints (issue 4)
        from spore import _cli_ckpt

        return _cli_ckpt.run(args)
    if args.command == "seed":
        from spore.examples import seed_examples

        seed_examples.main()
        return 0
    parser.print_help()
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
