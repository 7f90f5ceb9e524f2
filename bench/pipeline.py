"""Benchmark: a cold `dvc repro` of the sample, seconds per stage and where they go.

Run: .venv/bin/python bench/pipeline.py [--repeats R] [--against REF] [--keep]
     default R = 3 (each run in a fresh copy; the table quotes medians). With --against (a git ref, e.g.
     a release branch), the committed tree of REF runs too, alternating with this tree, and the bench
     prints the ratio of the two medians: a before/after measured in one run, under the same load.

- Each run copies the tracked and not-ignored files of this project (what a fresh clone holds, plus
  local edits), and the dashboards' Vega bundle that `make setup` made (.datastory/vega/, when there is one),
  into a temporary folder, makes it a git repository and runs `dvc repro` there: every
  stage runs, nothing is installed, the copy's own src/ is the code that runs, through its own `datastory`
  command (`python -m datastory`: the entry point installed here may be another tree's).
- Seconds per stage: from each "Running stage" line of DVC's output to the next (DVC's own hashing
  and lock writing included, as a user waits for them).
- Shares of the whole run, from the side file that `DATASTORY_TIMINGS` makes the runner write (the
  executed notebooks keep no timings):
  - kernel: papermill's wall time minus its cells' (kernel start and stop, notebook read and write, and the
    notebook's import lines, which the kernel runs before its first cell: kernel.notebook_imports);
  - model fits: the forecast and churn notebooks' cells that fit (`forecast.run`, `churn.run_history`);
    the forecast's includes its LocalCluster start;
  - other cells: every other notebook cell (imports, loading, tables, plots, saving);
  - rendering: the report stage outside its notebook (HTML, PDF; and the workbook and dashboard where they
    do not overlap the notebook, which runs in its kernel while they are built);
  - commands outside notebooks: the rest of each stage's `datastory` process (from its start, as the
    system records it, to its end: interpreter start, imports, the sample and deliver stages, writing);
  - dvc: the run's seconds outside every stage's command: DVC's start, reading dvc.yaml and params, hashing
    deps and outputs, and reading and rewriting dvc.lock after each stage.
- CPU seconds (user + system) of the run's processes, which another user's load moves less than wall time.
Not a test: timings depend on the machine and on what else runs on it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
STAGE_LINE = re.compile(r"^Running stage '([^']+)'")
# the first line of the cells that fit: the forecast's backtests and fits, the churn model's cutoffs and fits
FIT_CELLS = ("forecast.run(", "churn.run_history(")
PR_SET_CHILD_SUBREAPER = 36   # prctl(2)
GIT_DATES = {"GIT_AUTHOR_DATE": "2025-01-01T00:00:00+00:00", "GIT_COMMITTER_DATE": "2025-01-01T00:00:00+00:00"}


def copy_project(dst: Path, ref: str | None = None) -> Path:
    """The tracked and not-ignored files (or the tree committed at git `ref`), committed in a new git
    repository (DVC needs one)."""
    if ref:
        tar = subprocess.run(["git", "archive", "--format=tar", ref], cwd=REPO, capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", str(dst)], input=tar.stdout, check=True)
    files = [] if ref else subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                                          cwd=REPO, capture_output=True, check=True).stdout.decode().split("\0")
    for rel in filter(None, files):
        if (REPO / rel).is_file():
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, dst / rel)
    # what `make setup` leaves in the project besides the install: the dashboards' Vega bundle (`datastory
    # plots-page`, made once per vl-convert version). Not a pipeline output: the copy is set up, its pipeline cold
    from datastory.dashboard.page import BUNDLE_CACHE

    bundles = REPO / BUNDLE_CACHE
    if bundles.is_dir():
        shutil.copytree(bundles, dst / BUNDLE_CACHE)
    env = {**os.environ, **GIT_DATES}
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"],
                ["git", "-c", "user.email=b@example.com", "-c", "user.name=b", "commit", "-qm", "copy"]):
        subprocess.run(cmd, cwd=dst, env=env, check=True, capture_output=True)
    return dst


def cold_run(dst: Path) -> tuple[float, dict[str, float], list[dict], float]:
    """Run `dvc repro` in the copy: total seconds, seconds per stage, the runner's timing records, and the CPU
    seconds (user + system) of every process of the run: this process adopts the ones whose parent ended before
    them (a kernel left to exit after its notebook, a LocalCluster's forkserver and workers), and reaps them."""
    timings = dst / ".bench-timings.jsonl"
    # the `datastory` command of the copy's own code (`python -m datastory`: its __main__), not the one installed
    # in this environment, whose entry point may be another tree's
    shim = dst / ".bench-bin"
    shim.mkdir()
    (shim / "datastory").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m datastory "$@"\n')
    (shim / "datastory").chmod(0o755)
    env = {**os.environ, "PATH": os.pathsep.join([str(shim), str(BIN), os.environ.get("PATH", "")]),
           "PYTHONPATH": str(dst / "src"), "DATASTORY_TIMINGS": str(timings)}
    env.pop("DATASTORY_ROOT", None)
    marks: list[tuple[str, float]] = []
    adopting = adopt_orphans()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.Popen(["dvc", "repro"], cwd=dst, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    output = []
    for line in proc.stdout:
        output.append(line)
        if m := STAGE_LINE.match(line):
            marks.append((m.group(1), time.perf_counter()))
    total = time.perf_counter() - t0
    returncode = proc.wait()
    if adopting:
        reap_orphans()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if returncode != 0:
        sys.exit(f"dvc repro failed in {dst}:\n{''.join(output[-40:])}")
    ends = [t for _, t in marks[1:]] + [t0 + total]
    stages = {name: end - start for (name, start), end in zip(marks, ends, strict=True)}
    records = [json.loads(line) for line in timings.read_text().splitlines()] if timings.exists() else []
    return total, stages, records, cpu


def adopt_orphans() -> bool:
    """Make this process the one that orphans of its descendants are given to (Linux), so their CPU time joins
    this process's children's when it reaps them. False where the system has no such thing."""
    import ctypes

    try:
        return ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def reap_orphans(within: float = 30.0) -> None:
    """Wait for the adopted processes still running (a kernel finishing its exit), for up to `within` seconds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            time.sleep(0.05)
    print(f"some processes of the run still run after {within:.0f} s: their CPU time is not counted", flush=True)


def shares(total: float, stages: dict[str, float], records: list[dict]) -> dict[str, float]:
    """Split the run's seconds into kernel, model fits, other cells, rendering and the rest."""
    out = defaultdict(float)
    command = {(rec["stage"], rec["suffix"]): rec["seconds"] for rec in records if rec.get("step") == "command"}
    commands = sum(command.values())
    for rec in records:
        if rec.get("step", "papermill") != "papermill":  # the report's renderers: inside the stage's seconds
            continue
        cells = [c for c in rec.get("cells", []) if c["seconds"] is not None]
        in_cells = sum(c["seconds"] for c in cells)
        out["kernel start/stop (and the notebook's imports)"] += rec["seconds"] - in_cells
        for c in cells:
            out["model fits" if any(k in c["source"] for k in FIT_CELLS) else "other cells"] += c["seconds"]
        if rec["stage"] == "report":
            name = f"report@{rec['suffix']}"
            whole = command.get(("report", rec["suffix"]), stages.get(name, 0.0))   # DVC's part left out when known
            out["rendering (html, pdf, xlsx)"] += max(0.0, whole - rec["seconds"])
    if commands:   # the stages' commands' own seconds are known: what is left is DVC's
        out["commands outside notebooks (start, imports, I/O)"] = commands - sum(out.values())
        out["dvc (dvc.lock read and rewritten per stage, hashes)"] = total - commands
    else:
        out["the rest (cli, dvc, sample, deliver)"] = total - sum(out.values())
    return dict(out)


def report(label: str, totals: list[float], per_stage: dict, per_share: dict, cell_secs: dict,
           step_secs: dict, cpus: list[float]) -> float:
    med = statistics.median(totals)
    print(f"\n== {label}: cold `dvc repro` of the sample, {os.cpu_count()} CPUs, median of {len(totals)}: "
          f"{med:.1f} s (runs: {' '.join(f'{t:.1f}' for t in totals)}; target <= 45 s)")
    print(f"CPU seconds of every process of the run (user + system; less sensitive to other load than wall "
          f"time), median: {statistics.median(cpus):.1f} (runs: {' '.join(f'{c:.1f}' for c in cpus)})")
    print("seconds per stage (median):")
    for name, secs in per_stage.items():
        print(f"  {name:<22} {statistics.median(secs):6.1f}")
    print("where the time goes (median seconds, share of the median run):")
    for name, secs in sorted(per_share.items(), key=lambda kv: -statistics.median(kv[1])):
        m = statistics.median(secs)
        print(f"  {name:<38} {m:6.1f}  {m / med:6.1%}")
    print("slowest notebook cells (median seconds, summed over the report's audiences):")
    summed: dict[tuple, float] = defaultdict(float)
    for key, secs in cell_secs.items():
        summed[key[:2]] += statistics.median(secs) * len(secs) / len(totals)
    names = {key[:2]: key[2] for key in cell_secs}
    for key, sec in sorted(summed.items(), key=lambda kv: -kv[1])[:8]:
        print(f"  {sec:6.1f}  {key[0]} cell {key[1]}: {names[key]}")
    if step_secs:
        print("report renderers (median seconds, summed over audiences; workbook and dashboard overlap the notebook):")
        for name, secs in step_secs.items():
            print(f"  {statistics.median(secs):6.1f}  {name}")
    return med


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--against", metavar="REF", help="also run the tree committed at this git ref, alternating")
    ap.add_argument("--keep", action="store_true", help="keep the copies (their paths are printed)")
    args = ap.parse_args(argv)
    trees = {"this tree": None, **({args.against: args.against} if args.against else {})}
    found = {label: (defaultdict(list), defaultdict(list), defaultdict(list), [], defaultdict(list), [])
             for label in trees}
    for i in range(args.repeats):
        for label, ref in trees.items():
            per_stage, per_share, cell_secs, totals, step_secs, cpus = found[label]
            dst = Path(tempfile.mkdtemp(prefix="datastory-bench-"))
            try:
                total, stages, records, cpu = cold_run(copy_project(dst, ref))
            finally:
                if args.keep:
                    print(f"copy kept: {dst}")
                else:
                    shutil.rmtree(dst, ignore_errors=True)
            totals.append(total)
            cpus.append(cpu)
            for name, sec in stages.items():
                per_stage[name].append(sec)
            for name, sec in shares(total, stages, records).items():
                per_share[name].append(sec)
            steps: dict[str, float] = defaultdict(float)
            for rec in records:
                if rec.get("step", "papermill") not in ("papermill", "command"):   # the report's renderers
                    steps[rec["step"]] += rec["seconds"]
            for name, sec in steps.items():
                step_secs[name].append(sec)
            for rec in records:
                for c in rec.get("cells", []):
                    if c["seconds"] is not None:
                        cell_secs[(rec["stage"] if rec["suffix"] is None else "report", c["index"],
                                   c["source"])].append(c["seconds"])
            print(f"run {i + 1}, {label}: {total:.1f} s, {cpu:.1f} CPU s", flush=True)
    medians = {label: report(label, f[3], f[0], f[1], f[2], f[4], f[5]) for label, f in found.items()}
    if args.against:
        print(f"\nthis tree / {args.against}: {medians['this tree'] / medians[args.against]:.2f}x the time "
              f"({medians[args.against] - medians['this tree']:+.1f} s saved), medians of {args.repeats} "
              "alternating runs")
        cpu = {label: statistics.median(found[label][5]) for label in trees}
        print(f"CPU seconds: this tree / {args.against}: {cpu['this tree'] / cpu[args.against]:.2f}x "
              f"({cpu[args.against] - cpu['this tree']:+.1f} s saved)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
