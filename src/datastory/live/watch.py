"""`datastory watch`: re-run `dvc repro` when a source file in data/raw/ changes, or on an interval for SQL.

Files are compared by a fingerprint (relative name -> size and mtime in ns) of everything under the raw folder,
hidden files and the pipeline's own output there (the sample) left out. A change runs the pipeline once it has
held still for one check, so a file still being copied in is not read half-written; changes made while a run is
going trigger one more run after it, never a queue. With `source: sql` nothing on disk says the database
changed, so each interval forces ingest (`dvc repro --single-item --force ingest`) and then runs `dvc repro`,
which re-runs the later stages only when the transactions changed.

The fingerprint of the last run is kept in `.datastory/watch.json` (git-ignored), so `watch --once` from cron
runs only when something changed since its last run. A failed run is recorded too: the same files would fail
the same way, so the watch waits for the next change. Unless it failed because another `dvc` held the
project's lock: then the next check tries again.

`changes`, `describe`, `decide`, `error_line`, `busy` and `log_line` are pure; `fingerprint`, `run_once` and `watch`
are the I/O edge.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from .. import io
from ..errors import DatastoryError

FILES_INTERVAL = 10.0    # seconds between checks of data/raw/
SQL_INTERVAL = 3600.0    # seconds between runs with a SQL source
STATE = ".datastory/watch.json"
LAST_LOG = ".datastory/watch-last.log"   # the whole console of the last run
REPRO = ["dvc", "repro"]
FORCE_INGEST = ["dvc", "repro", "--single-item", "--force", "ingest"]

Fingerprint = dict[str, tuple[int, int]]   # relative path -> (size, mtime_ns)


@dataclass(frozen=True)
class Decision:
    run: bool
    reason: str   # why it runs, or why not


# ---------------------------------------------------------------- pure core
def changes(before: Fingerprint | None, after: Fingerprint) -> list[str]:
    """Names added, removed or changed from `before` to `after`, sorted."""
    before = before or {}
    return sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))


def describe(before: Fingerprint | None, after: Fingerprint, raw: str = "data/raw") -> str:
    """`data/raw/x.csv changed` (or added, removed), or `3 files changed in data/raw/ (a.csv, b.csv, ...)`."""
    changed = changes(before, after)
    if len(changed) == 1:
        name = changed[0]
        how = "added" if name not in (before or {}) else "removed" if name not in after else "changed"
        return f"{raw}/{name} {how}"
    shown = ", ".join(changed[:3]) + (", ..." if len(changed) > 3 else "")
    return f"{len(changed)} files changed in {raw}/ ({shown})"


def decide(last_run: Fingerprint | None, previous: Fingerprint | None, now: Fingerprint,
           raw: str = "data/raw", settle: bool = True) -> Decision:
    """Run when `now` differs from the last run's fingerprint and (with `settle`) held still since `previous`."""
    if last_run is not None and now == last_run:
        return Decision(False, f"no change in {raw}/ since the last run")
    if settle and now != previous:
        return Decision(False, f"{raw}/ is changing: waiting for it to hold still")
    if last_run is None:
        return Decision(True, f"first run (no earlier run of `datastory watch` recorded); {len(now)} file(s) in {raw}/")
    return Decision(True, describe(last_run, now, raw))


def commands(sql: bool) -> list[list[str]]:
    """What one run executes, in order (stopping at the first that fails)."""
    return [FORCE_INGEST, REPRO] if sql else [REPRO]


def error_line(output: str) -> str:
    """The line of a failed run's console that says what went wrong.

    datastory's own message first (the stage's `datastory: error: ...`), then DVC's `ERROR: ...`, else the last
    line that is not empty."""
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    for prefix in ("datastory: error:", "ERROR:", "error:"):
        found = [ln for ln in lines if ln.startswith(prefix)]
        if found:
            return found[-1] if prefix != "datastory: error:" else found[0]
    return lines[-1] if lines else "(no output)"


def busy(console: str) -> bool:
    """True when the run failed only because another DVC process holds the project's lock: try again later."""
    return "Unable to acquire lock" in console


def log_line(when: str, n: int, reason: str, command: str, code: int, seconds: float, error: str = "") -> str:
    """`2026-11-29 17:03:12 run 3: data/raw/x.csv changed -> dvc repro ok in 41.2 s` (or `failed (exit 2): ...`)."""
    head = f"{when} run {n}: {reason} -> {command}"
    if code == 0:
        return f"{head} ok in {seconds:.1f} s"
    return f"{head} failed (exit {code}) in {seconds:.1f} s: {error}"


# ---------------------------------------------------------------- I/O edge
def fingerprint(raw_dir: Path, exclude: Iterable[Path] = ()) -> Fingerprint:
    """Every file under `raw_dir` but hidden ones and those under `exclude`: name -> (size, mtime_ns)."""
    skip = [Path(os.path.abspath(p)) for p in exclude]
    out: Fingerprint = {}
    if not raw_dir.is_dir():
        return out
    for dirpath, dirnames, filenames in os.walk(raw_dir):
        here = Path(os.path.abspath(dirpath))
        dirnames[:] = [d for d in dirnames if not d.startswith(".") and here / d not in skip]
        for name in filenames:
            path = here / name
            if name.startswith(".") or path in skip:
                continue
            try:
                st = path.stat()
            except OSError:   # removed while we looked
                continue
            out[path.relative_to(Path(os.path.abspath(raw_dir))).as_posix()] = (st.st_size, st.st_mtime_ns)
    return out


def load_state(root: Path) -> Fingerprint | None:
    try:
        data = json.loads((root / STATE).read_text(encoding="utf-8"))
        return {k: (int(v[0]), int(v[1])) for k, v in data["fingerprint"].items()}
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return None


def save_state(root: Path, fp: Fingerprint) -> None:
    io.write_json({"fingerprint": {k: list(v) for k, v in fp.items()}}, root / STATE)


@dataclass
class Project:
    root: Path
    raw_dir: Path
    exclude: list[Path]
    sql: bool

    @property
    def raw_rel(self) -> str:
        try:
            return self.raw_dir.relative_to(self.root).as_posix()
        except ValueError:
            return str(self.raw_dir)

    def fingerprint(self) -> Fingerprint:
        return fingerprint(self.raw_dir, self.exclude)


def project(root_arg: str | None = None) -> Project:
    from .. import config

    root = config.project_root(root_arg)
    p = config.paths(root)
    sql = config.load("data", root).source == "sql"
    return Project(root, p.raw_dir, [p.sample.parent if p.sample.parent != p.raw_dir else p.sample], sql)


def execute(root: Path, sql: bool) -> tuple[int, str, str]:
    """Run the pipeline in `root`: (exit code, the command as logged, its whole console)."""
    if shutil.which("dvc") is None:
        raise DatastoryError("`dvc` is not on PATH", fix="activate the project's .venv (`make setup` makes it)")
    out, code, shown = [], 0, []
    for cmd in commands(sql):
        shown.append(" ".join(cmd))
        res = subprocess.run(cmd, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             errors="replace", stdin=subprocess.DEVNULL)
        out.append(res.stdout)
        code = res.returncode
        if code != 0:
            break
    console = "".join(out)
    io.write_text(console, root / LAST_LOG)
    return code, " && ".join(shown), console


def run_pipeline(proj: Project, n: int, reason: str, echo: Callable[[str], None]) -> tuple[int, bool]:
    """One run and its log line: (exit code, whether it should count as done for these files)."""
    started = time.monotonic()
    when = time.strftime("%Y-%m-%d %H:%M:%S")
    code, shown, console = execute(proj.root, proj.sql)
    again = code != 0 and busy(console)
    error = "" if code == 0 else (f"{error_line(console)} (whole output: {LAST_LOG})"
                                  + ("; trying again at the next check" if again else ""))
    echo(log_line(when, n, reason, shown, code, time.monotonic() - started, error))
    return code, not again


def watch(proj: Project, interval: float | None = None, once: bool = False,
          echo: Callable[[str], None] = print) -> int:
    """Check and run until interrupted (or one check with `once`); the exit status of the last run."""
    every = interval if interval is not None else (SQL_INTERVAL if proj.sql else FILES_INTERVAL)
    if every <= 0:
        raise DatastoryError(f"--interval {every:g} must be more than 0 seconds",
                             fix=f"for example --interval {FILES_INTERVAL:g}")
    if not once:
        what = (f"source is sql: running the pipeline every {every:g} s" if proj.sql
                else f"watching {proj.raw_rel}/ every {every:g} s")
        echo(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {what} (Ctrl-C stops)")
    n, last_code, previous = 0, 0, None
    while True:
        if proj.sql:
            n += 1
            why = "source is sql (--once)" if once else (f"source is sql: every {every:g} s" if n > 1
                                                         else "source is sql: first run")
            last_code, _ = run_pipeline(proj, n, why, echo)
        else:
            now = proj.fingerprint()
            d = decide(load_state(proj.root), previous, now, proj.raw_rel, settle=not once)
            if d.run:
                n += 1
                last_code, done = run_pipeline(proj, n, d.reason, echo)
                if done:   # what it ran on: files that changed during it trigger one more
                    save_state(proj.root, now)
                previous = None              # a change made during the run must hold still again
            else:
                if once:
                    echo(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {d.reason}: nothing to run")
                previous = now
        if once:
            return last_code
        time.sleep(every)
