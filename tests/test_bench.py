"""The quick benchmarks still run: each bench script at a tiny size, in its own process, exits 0 and prints its
figures. A bench is not a test (no timing is checked here), but one that stops at a changed signature prints
nothing at all (bench/churn.py stopped at the red list for a while)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

RUNS = {   # script and tiny arguments -> a line its output must hold
    "bridge": (["bench/bridge.py", "500", "1"], "largest gap between the steps and the change"),
    "churn": (["bench/churn.py", "3000"], "ratio model scoring / recency baseline"),
    "churn_sample": (["bench/churn_sample.py", "--customers", "6000", "--caps", "1000"],
                     "smallest cap within tolerance on every log"),
    "churn_scale": (["bench/churn_scale.py", "--customers", "20000", "--base", "5000", "--compare", "5000"],
                    "target <= 3.0 GB"),
    "ingest, streaming": (["bench/ingest.py", "--sizes", "2e4", "--repeats", "1", "--engine", "stream"],
                          "kpis/ingest time"),
    "kpis_stream": (["bench/kpis_stream.py", "--sizes", "2e4,4e4"], "time(40,000)/time(20,000)"),
    "series_stream": (["bench/series_stream.py", "--sizes", "2e4,4e4"], "same series bytes: True"),
    "live": (["bench/live.py", "50"], "ETag"),
    "workbook": (["bench/workbook.py", "2000"], "speed-up (pandas time / our time)"),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(RUNS))
def test_the_bench_runs_at_a_tiny_size(name, tmp_path):
    args, expect = RUNS[name]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "TMPDIR": str(tmp_path)}
    proc = subprocess.run([sys.executable, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
                          check=False)
    assert proc.returncode == 0, f"{' '.join(args)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    assert expect in proc.stdout, proc.stdout[-3000:]
    assert "Traceback" not in proc.stderr
