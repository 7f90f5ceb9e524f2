"""Benchmark: the whole pipeline on a generated invoice log of N lines, streaming: seconds and memory per stage.

Run: .venv/bin/python bench/pipeline_scale.py [--lines 1e6,1e7] [--keep DIR]
     (10M lines: about 4 minutes and 1 GB of log on disk; 100M: about 22 minutes and 7.5 GB)

- Data: bench/ingest.py's seeded invoice log (cancellations, guest and postage lines, duplicates, non-ASCII
  text; one customer per 40 lines), generated in a process of its own, in a temp folder or --keep DIR where a
  later run reuses it.
- Each size: a copy of the project as a fresh clone holds it (bench/pipeline.py's copy_project) whose
  params/data.yaml maps that log (bench/ingest.py's invoice mapping) with `engine: stream`, so that ingest, and
  after it the kpis, forecast and churn stages, read in bounded memory; then a cold `dvc repro` there, every
  stage and every audience's report and email.
- Per stage: wall seconds (from each "Running stage" line of DVC to the next) and the peak resident memory
  of the run's whole process tree while the stage ran (DVC, the stage's command, its kernel, a LocalCluster's
  workers), sampled every 0.25 s, so a shorter peak can be missed.
- Target (the scale issue): each stage within 4 GB, as ingest and the kpis stage at 100 million lines.
Not a test: timings depend on the machine and on what else runs on it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _proc import tree_rss_mb  # noqa: E402  (bench/ is not a package)
from ingest import generate_in_child, invoice_params  # noqa: E402
from pipeline import BIN, STAGE_LINE, copy_project  # noqa: E402

CAP_MB = 4096
SAMPLE_S = 0.25


def invoice_project(dst: Path, log: Path) -> Path:
    """A fresh copy of the project reading `log` (hard-linked into data/raw/ where it can be) as ingest streams it."""
    copy_project(dst)
    raw = dst / "data" / "raw" / "invoices.csv"
    raw.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(log, raw)
    except OSError:
        shutil.copyfile(log, raw)
    path = dst / "params" / "data.yaml"
    data = invoice_params(yaml.safe_load(path.read_text(encoding="utf-8")), "data/raw/invoices.csv", "stream")
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return dst


def run(dst: Path) -> tuple[float, list[tuple[str, float, float]]]:
    """A cold `dvc repro` in `dst`: total seconds, and (stage, seconds, peak tree MiB) per stage."""
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "PYTHONPATH": str(dst / "src")}
    env.pop("DATASTORY_ROOT", None)
    proc = subprocess.Popen(["dvc", "repro"], cwd=dst, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    current, peaks, done = ["(dvc start)"], {}, threading.Event()

    def sample() -> None:
        while not done.is_set():
            peaks[current[0]] = max(peaks.get(current[0], 0.0), tree_rss_mb(proc.pid))
            done.wait(SAMPLE_S)

    sampler = threading.Thread(target=sample, daemon=True)
    t0 = time.perf_counter()
    sampler.start()
    marks, output = [], []
    for line in proc.stdout:
        output.append(line)
        if m := STAGE_LINE.match(line):
            marks.append((m.group(1), time.perf_counter()))
            current[0] = m.group(1)
    code = proc.wait()
    total = time.perf_counter() - t0
    done.set()
    sampler.join()
    if code != 0:
        sys.exit(f"dvc repro failed in {dst}:\n{''.join(output[-40:])}")
    ends = [t for _, t in marks[1:]] + [t0 + total]
    return total, [(name, end - start, peaks.get(name, 0.0)) for (name, start), end in zip(marks, ends, strict=True)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", default="1e6,1e7", help="log sizes, comma-separated (e.g. 1e6,1e7)")
    ap.add_argument("--keep", type=Path, help="folder for the generated logs, reused by later runs")
    args = ap.parse_args(argv)
    sizes = [int(float(s)) for s in args.lines.split(",") if s]
    logs = args.keep or Path(tempfile.mkdtemp(prefix="datastory-logs-"))
    logs.mkdir(parents=True, exist_ok=True)
    try:
        for n in sizes:
            log, secs = generate_in_child(n, logs, seed=0)
            print(f"{n:,} lines: log {log.stat().st_size / 2**20:,.0f} MiB (generated in {secs:.0f} s)", flush=True)
            dst = Path(tempfile.mkdtemp(prefix="datastory-scale-"))
            try:
                total, stages = run(invoice_project(dst, log))
            finally:
                shutil.rmtree(dst, ignore_errors=True)
            print(f"== {n:,} lines, engine stream, {os.cpu_count()} CPUs: cold `dvc repro` {total:.0f} s")
            print(f"  {'stage':<22} {'seconds':>8} {'peak MiB':>9}")
            for name, sec, peak in stages:
                print(f"  {name:<22} {sec:8.1f} {peak:9.0f}{'  over 4 GB' if peak > CAP_MB else ''}")
            worst = max(stages, key=lambda s: s[2])
            slowest = max(stages, key=lambda s: s[1])
            print(f"  slowest stage {slowest[0]} ({slowest[1] / total:.0%} of the run); largest peak "
                  f"{worst[0]} {worst[2]:,.0f} MiB (target <= {CAP_MB:,} MiB)", flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(logs, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
