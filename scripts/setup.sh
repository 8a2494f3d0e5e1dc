#!/usr/bin/env bash
# Create .venv (once) and install spore into it. torch==2.13.0 is installed first:
# it is the CPU build on local disk here, and a bare `torch` could pull a
# multi-GB CUDA build. The package itself only asks for torch>=2.4.
# Usage: bash scripts/setup.sh [EXTRAS]   (default "test"; demo.sh passes "test,demo")
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-test}"
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check torch==2.13.0
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[${extras}]"
