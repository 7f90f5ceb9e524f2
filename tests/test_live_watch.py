"""`datastory watch`: the pure decision (fingerprints in, what to do out), the fingerprint of a real folder, and
the command against a tiny real DVC project (one stage that counts the lines of data/raw/*.csv)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from e2e import env, start, wait_for

from datastory.errors import DatastoryError
from datastory.live import watch

SRC = str(Path(__file__).resolve().parents[1] / "src")
LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d run (\d+): (.+) -> dvc repro (ok|failed \(exit (\d+)\)) in "
                  r"\d+\.\d s(: (.*))?$")


# ---------------------------------------------------------------- pure decision
def test_changes_lists_added_removed_and_changed_names():
    before = {"a.csv": (10, 1), "b.csv": (5, 1), "c.csv": (1, 1)}
    after = {"a.csv": (10, 2), "b.csv": (5, 1), "d.csv": (3, 3)}
    assert watch.changes(before, after) == ["a.csv", "c.csv", "d.csv"]
    assert watch.changes(after, after) == []
    assert watch.changes(None, {"x": (1, 1)}) == ["x"]


def test_describe_names_one_file_or_counts_many():
    x = {"x.csv": (1, 1)}
    assert watch.describe(x, {"x.csv": (1, 2)}) == "data/raw/x.csv changed"
    assert watch.describe({}, x) == "data/raw/x.csv added"
    assert watch.describe(x, {}, "in") == "in/x.csv removed"
    assert watch.describe({"a": (1, 1)}, {"b": (1, 1)}) == "2 files changed in data/raw/ (a, b)"
    assert watch.describe(None, {k: (1, 1) for k in "edcba"}) == "5 files changed in data/raw/ (a, b, c, ...)"


def test_decide_runs_on_a_change_that_held_still():
    old, new = {"a.csv": (1, 1)}, {"a.csv": (2, 2)}
    assert watch.decide(old, None, old) == watch.Decision(False, "no change in data/raw/ since the last run")
    wait = watch.decide(old, old, new)
    assert not wait.run and "waiting for it to hold still" in wait.reason
    assert watch.decide(old, new, new) == watch.Decision(True, "data/raw/a.csv changed")
    assert watch.decide(old, None, new, settle=False) == watch.Decision(True, "data/raw/a.csv changed")


def test_decide_runs_a_first_time_when_nothing_is_recorded():
    now = {"a.csv": (1, 1)}
    assert not watch.decide(None, None, now).run                  # waits one check first
    first = watch.decide(None, now, now)
    assert first.run and first.reason.startswith("first run") and "1 file(s)" in first.reason
    assert watch.decide(None, None, {}, settle=False).run         # even an empty folder runs once


def test_commands_force_ingest_for_sql_only():
    assert watch.commands(False) == [["dvc", "repro"]]
    assert watch.commands(True) == [["dvc", "repro", "--single-item", "--force", "ingest"], ["dvc", "repro"]]


def test_error_line_prefers_datastorys_message():
    console = textwrap.dedent("""\
        Running stage 'ingest':
        > datastory ingest
        datastory: error: data/raw/x.csv, row 7, column 'amount': 'abc' is not a number
          fix: correct the value
        ERROR: failed to reproduce 'ingest': failed to run: datastory ingest, exited with 2
        """)
    assert watch.error_line(console) == "datastory: error: data/raw/x.csv, row 7, column 'amount': 'abc' is not a number"
    assert watch.error_line("x\nERROR: a\nERROR: b\n\n") == "ERROR: b"
    assert watch.error_line("one\ntwo  \n\n") == "two"
    assert watch.error_line("") == "(no output)"


def test_busy_is_only_dvcs_lock():
    assert watch.busy("ERROR: Unable to acquire lock. Most likely another DVC process is running or ...")
    assert not watch.busy("ERROR: failed to reproduce 'ingest': failed to run: datastory ingest, exited with 2")


def test_log_line_reads_as_one_line_per_run():
    ok = watch.log_line("2026-11-29 17:03:12", 3, "data/raw/x.csv changed", "dvc repro", 0, 41.24)
    assert ok == "2026-11-29 17:03:12 run 3: data/raw/x.csv changed -> dvc repro ok in 41.2 s"
    bad = watch.log_line("2026-11-29 17:03:12", 4, "data/raw/x.csv changed", "dvc repro", 2, 3.0, "ERROR: x")
    assert bad == "2026-11-29 17:03:12 run 4: data/raw/x.csv changed -> dvc repro failed (exit 2) in 3.0 s: ERROR: x"
    assert LINE.match(ok) and LINE.match(bad)


# ---------------------------------------------------------------- a real folder
def test_fingerprint_sees_sizes_times_and_names_but_not_hidden_or_excluded(tmp_path):
    raw = tmp_path / "raw"
    (raw / "sub").mkdir(parents=True)
    (raw / "sample").mkdir()
    (raw / ".git").mkdir()
    (raw / "a.csv").write_text("a\n1\n")
    (raw / "sub" / "b.xlsx").write_bytes(b"xx")
    (raw / ".~lock.a.csv#").write_text("x")
    (raw / ".git" / "x").write_text("x")
    (raw / "sample" / "transactions.parquet").write_bytes(b"p")
    fp = watch.fingerprint(raw, exclude=[raw / "sample"])
    assert sorted(fp) == ["a.csv", "sub/b.xlsx"]
    assert fp["a.csv"][0] == 4 and fp["sub/b.xlsx"][0] == 2
    os.utime(raw / "a.csv", ns=(fp["a.csv"][1] + 10**9, fp["a.csv"][1] + 10**9))
    assert watch.changes(fp, watch.fingerprint(raw, exclude=[raw / "sample"])) == ["a.csv"]
    (raw / "sub" / "b.xlsx").rename(raw / "sub" / "c.xlsx")
    assert "sub/c.xlsx" in watch.fingerprint(raw)
    assert watch.fingerprint(tmp_path / "missing") == {}


def test_state_round_trips_and_a_broken_one_counts_as_none(tmp_path):
    assert watch.load_state(tmp_path) is None
    watch.save_state(tmp_path, {"a.csv": (1, 2)})
    assert watch.load_state(tmp_path) == {"a.csv": (1, 2)}
    (tmp_path / watch.STATE).write_text("{not json")
    assert watch.load_state(tmp_path) is None


def test_project_reads_the_raw_folder_and_the_source(project):
    p = watch.project(str(project))
    assert p.root == project.resolve() and p.raw_dir == project.resolve() / "data" / "raw" and not p.sql
    assert p.exclude == [project.resolve() / "data" / "raw" / "sample"]
    data = yaml.safe_load((project / "params" / "data.yaml").read_text())
    data["source"] = "sql"
    data["sql"].update(url="sqlite:///data/raw/shop.db", table="lines")
    (project / "params" / "data.yaml").write_text(yaml.safe_dump(data))
    assert watch.project(str(project)).sql


def test_an_interval_of_zero_is_refused(project):
    with pytest.raises(DatastoryError, match="must be more than 0 seconds"):
        watch.watch(watch.project(str(project)), interval=0)


# ---------------------------------------------------------------- the command on a real DVC project
COUNT = """\
import pathlib, sys
raw = pathlib.Path("data/raw")
lines = 0
for f in sorted(raw.rglob("*.csv")):
    text = f.read_text()
    if "bad" in text:
        print(f"datastory: error: {f.as_posix()}, row 2: 'bad' is not a number", file=sys.stderr)
        sys.exit(2)
    lines += len(text.splitlines())
pathlib.Path("out").mkdir(exist_ok=True)
pathlib.Path("out/lines.txt").write_text(str(lines))
if pathlib.Path("touch-during-run").exists() and not (raw / "during.csv").exists():
    (raw / "during.csv").write_text("made while the pipeline ran\\n")
"""


@pytest.fixture
def tiny(project: Path) -> Path:
    """A real DVC project: the params of this one, and one stage counting the lines of data/raw/*.csv
    (its output persists, as the pipeline's do, so a failed run keeps the last good one)."""
    (project / "data" / "raw").mkdir(parents=True)
    (project / "data" / "raw" / "a.csv").write_text("x\n1\n")
    (project / "count.py").write_text(COUNT)
    stage = {"cmd": f"{sys.executable} count.py", "deps": ["count.py", "data/raw"],
             "outs": [{"out/lines.txt": {"persist": True}}]}
    (project / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"count": stage}}))
    subprocess.run(["dvc", "init", "--no-scm", "-q"], cwd=project, env=env(), check=True)
    return project


def datastory(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "datastory", "--root", str(root), *args], cwd=root,
                          env=env(PYTHONPATH=SRC, DVC_NO_ANALYTICS="1"), capture_output=True, text=True, timeout=600)


def runs(log: str) -> list[re.Match]:
    return [m for m in map(LINE.match, log.splitlines()) if m]


@pytest.mark.slow
def test_once_runs_skips_runs_on_a_change_and_reports_a_failure(tiny):
    res = datastory(tiny, "watch", "--once")
    assert res.returncode == 0, res.stderr
    (m,) = runs(res.stdout)
    assert m.group(2).startswith("first run") and m.group(3) == "ok"
    assert (tiny / "out" / "lines.txt").read_text() == "2"

    res = datastory(tiny, "watch", "--once")
    assert res.returncode == 0 and runs(res.stdout) == []
    assert res.stdout.endswith("no change in data/raw/ since the last run: nothing to run\n")

    (tiny / "data" / "raw" / "a.csv").write_text("x\n1\n2\n")
    res = datastory(tiny, "watch", "--once")
    (m,) = runs(res.stdout)
    assert m.group(2) == "data/raw/a.csv changed" and m.group(3) == "ok"
    assert (tiny / "out" / "lines.txt").read_text() == "3"

    (tiny / "data" / "raw" / "b.csv").write_text("x\nbad\n")
    res = datastory(tiny, "watch", "--once")
    (m,) = runs(res.stdout)
    assert m.group(2) == "data/raw/b.csv added" and m.group(4) != "0"
    assert res.returncode == int(m.group(4)) != 0
    assert m.group(6) == ("datastory: error: data/raw/b.csv, row 2: 'bad' is not a number "
                          f"(whole output: {watch.LAST_LOG})")
    assert "'bad' is not a number" in (tiny / watch.LAST_LOG).read_text()
    assert (tiny / "out" / "lines.txt").read_text() == "3"          # the last good build stays
    res = datastory(tiny, "watch", "--once")                        # the same files would fail the same way
    assert runs(res.stdout) == [] and res.returncode == 0
    (tiny / "data" / "raw" / "b.csv").unlink()
    (m,) = runs(datastory(tiny, "watch", "--once").stdout)
    assert m.group(2) == "data/raw/b.csv removed" and m.group(3) == "ok"


@pytest.mark.slow
def test_watch_runs_on_changes_once_more_after_one_during_a_run_and_stops_on_ctrl_c(tiny, tmp_path):
    assert datastory(tiny, "watch", "--once").returncode == 0      # the baseline run
    (tiny / "touch-during-run").write_text("")                      # the next run adds data/raw/during.csv
    log = tmp_path / "watch.log"
    proc = start(tiny, log, sys.executable, "-m", "datastory", "--root", str(tiny), "watch", "--interval", "0.3",
                 PYTHONPATH=SRC, DVC_NO_ANALYTICS="1")
    try:
        wait_for(log, r"watching data/raw/ every 0.3 s", proc, timeout=60)
        (tiny / "data" / "raw" / "a.csv").write_text("x\n1\n2\n3\n")
        wait_for(log, r" run 2: ", proc, timeout=300)
        (tiny / "data" / "raw" / "sample").mkdir()                   # the pipeline's own output: not a change
        (tiny / "data" / "raw" / "sample" / "transactions.parquet").write_bytes(b"p")
        (tiny / "data" / "raw" / "c.csv").write_text("x\n")
        wait_for(log, r" run 3: ", proc, timeout=300)
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=60)
    text = log.read_text()
    assert [(m.group(1), m.group(2), m.group(3)) for m in runs(text)] == [
        ("1", "data/raw/a.csv changed", "ok"),
        ("2", "data/raw/during.csv added", "ok"),      # made during run 1: one more run, then quiet
        ("3", "data/raw/c.csv added", "ok")]
    assert (tiny / "out" / "lines.txt").read_text() == "6"
    assert proc.returncode == 130 and "datastory: interrupted" in text and "Traceback" not in text


INGEST = """\
import pathlib
pathlib.Path("out").mkdir(exist_ok=True)
pathlib.Path("out/transactions.txt").write_text(pathlib.Path("{db}").read_text())
"""


@pytest.mark.slow
def test_with_a_sql_source_once_forces_ingest_then_runs_what_changed(project, tmp_path):
    """The database is outside the project and no DVC dependency: only a forced ingest can see it change."""
    data = yaml.safe_load((project / "params" / "data.yaml").read_text())
    data["source"] = "sql"
    data["sql"].update(url="sqlite:///data/raw/shop.db", table="lines")
    (project / "params" / "data.yaml").write_text(yaml.safe_dump(data))
    db = tmp_path / "database.txt"
    db.write_text("1 row\n")
    (project / "ingest.py").write_text(INGEST.format(db=db.as_posix()))
    (project / "report.py").write_text("import pathlib\npathlib.Path('out/report.txt').write_text("
                                       "'report of ' + pathlib.Path('out/transactions.txt').read_text())\n")
    py = sys.executable
    stages = {"ingest": {"cmd": f"{py} ingest.py", "deps": ["ingest.py"], "outs": ["out/transactions.txt"]},
              "report": {"cmd": f"{py} report.py", "deps": ["report.py", "out/transactions.txt"],
                         "outs": ["out/report.txt"]}}
    (project / "dvc.yaml").write_text(yaml.safe_dump({"stages": stages}))
    subprocess.run(["dvc", "init", "--no-scm", "-q"], cwd=project, env=env(), check=True)

    res = datastory(project, "watch", "--once")
    assert res.returncode == 0, res.stdout + res.stderr
    assert re.match(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d run 1: source is sql \(--once\) -> dvc repro --single-item "
                    r"--force ingest && dvc repro ok in \d+\.\d s$", res.stdout)
    assert (project / "out" / "report.txt").read_text() == "report of 1 row\n"
    db.write_text("2 rows\n")
    assert datastory(project, "watch", "--once").returncode == 0
    assert (project / "out" / "report.txt").read_text() == "report of 2 rows\n"


@pytest.mark.slow
def test_a_run_that_finds_dvc_busy_is_tried_again(tiny):
    zc = pytest.importorskip("zc.lockfile")
    lock = zc.LockFile(str(tiny / ".dvc" / "tmp" / "lock"))   # what a running `dvc repro` holds
    try:
        res = datastory(tiny, "watch", "--once")
    finally:
        lock.close()
    (m,) = runs(res.stdout)
    assert m.group(3).startswith("failed") and "Unable to acquire lock" in m.group(6)
    assert m.group(6).endswith("; trying again at the next check")
    (m,) = runs(datastory(tiny, "watch", "--once").stdout)          # not recorded as done: it runs again
    assert m.group(2).startswith("first run") and m.group(3) == "ok"
