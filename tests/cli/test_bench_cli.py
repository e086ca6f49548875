"""Smoke test: ``python -m bench cli --quick`` runs and prints its ratio (figures not judged)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_bench_cli_quick_reports_a_ratio() -> None:
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'src'}"}
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "cli", "--quick", "--rounds", "1"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"ratio \(leaseq exec, concurrency 1\) = \d+\.\d\d", proc.stdout)
    assert "200 runs of " in proc.stdout
