#!/usr/bin/env bash
# The main job: install spore with its demo extras, print the seed document's four
# examples, then train a small CNN on scikit-learn's digits (`spore demo`).
# Extra arguments go to `spore demo`, e.g. `bash scripts/demo.sh --epochs 5 --out /tmp/x`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh "test,demo"
echo "== spore seed: the seed document's four examples =="
.venv/bin/spore seed
echo
echo "== spore demo: a CNN on scikit-learn's 8x8 digits =="
exec .venv/bin/spore demo "$@"
