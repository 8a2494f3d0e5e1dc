#!/usr/bin/env bash
# The whole test suite: install, lint (ruff, config in pyproject.toml), then
# pytest (which also runs the MindSpore behaviour cases in ../shared/diff when
# that folder is present).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh "test,demo"  # demo extras too: the CLI tests train briefly
.venv/bin/ruff check --no-cache .
exec .venv/bin/python -m pytest "$@"
