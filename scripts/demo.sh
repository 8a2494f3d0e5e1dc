#!/usr/bin/env bash
# The main job: install, then run the seed document's four examples.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m spore.examples.seed_examples
