"""Behaviour cases (../shared/diff): real MindSpore's printed output, byte for byte.

The runner executes every case in its own interpreter with ``mindspore``
imports resolved to spore; each case becomes one test here. Skipped when the
shared folder is not beside the checkout.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DIFF = ROOT.parent / "shared" / "diff"
CASES = (
    sorted(p.stem for p in (DIFF / "cases").glob("[0-9]*.py")) if DIFF.is_dir() else []
)


@pytest.fixture(scope="module")
def failures() -> dict[str, str]:
    env = dict(os.environ, SPORE_PYTHON=sys.executable)
    proc = subprocess.run(
        [sys.executable, str(DIFF / "run.py"), "--impl", "spore",
         "--pythonpath", str(ROOT),
         "--jobs", str(os.cpu_count() or 2), "--timeout", "120"],
        env=env, capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    out: dict[str, str] = {}
    for line in proc.stdout.splitlines():
        if line.startswith("FAIL "):
            name, _, reason = line[5:].partition(": ")
            out[name] = reason
    last_line = proc.stdout.strip().splitlines()[-1]
    assert last_line.endswith(f"{len(out)} failed"), proc.stdout
    return out


@pytest.mark.skipif(not CASES, reason="../shared/diff is not beside this checkout")
@pytest.mark.parametrize("case", CASES)
def test_case_prints_what_mindspore_printed(
    case: str, failures: dict[str, str]
) -> None:
    assert case not in failures, failures.get(case)
