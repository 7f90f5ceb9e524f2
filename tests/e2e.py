"""Helpers for end-to-end tests: a throwaway copy of this repository, built with the real `dvc repro`."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def env(**extra: str) -> dict[str, str]:
    out = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", **extra}
    out.pop("DATASTORY_ROOT", None)
    return out


def own_code(cwd: Path) -> dict[str, str]:
    """PYTHONPATH=<copy>/src when `cwd` is a project copy: run the copy's code, not the editable install's.

    The venv's editable install points at the live tree; without this an edit to the working tree made while the
    tests run would change one copy's results but not the other's.
    """
    src = Path(cwd) / "src"
    return {"PYTHONPATH": str(src)} if (src / "datastory").is_dir() else {}


def sh(cwd: Path, *cmd: str, check: bool = True, timeout: int = 900, **extra: str) -> subprocess.CompletedProcess:
    res = subprocess.run(cmd, cwd=cwd, env=env(**own_code(cwd), **extra), capture_output=True, text=True,
                         timeout=timeout)
    if check and res.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {res.returncode}\n--- stdout\n{res.stdout[-4000:]}"
                             f"\n--- stderr\n{res.stderr[-4000:]}")
    return res


def copy_repo(dst: Path, n_customers: int = 300) -> Path:
    """Copy the tracked and not-ignored files (the tree a fresh clone would have, plus local edits)."""
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                           capture_output=True, check=True).stdout.decode().split("\0")
    for rel in filter(None, files):
        src = REPO / rel
        if src.is_file():
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / rel)
    data = yaml.safe_load((dst / "params/data.yaml").read_text())
    data["sample"]["n_customers"] = n_customers
    (dst / "params/data.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    sh(dst, "git", "init", "-q")
    sh(dst, "git", "add", "-A")
    # a fixed author and date: the same tree gives the same commit id, which the reports' footers print
    sh(dst, "git", "-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qm", "copy", **GIT_DATES)
    return dst


def clone(src: Path, dst: Path) -> Path:
    """A second checkout of `src`'s commit (a copy_repo project): the very same sources, no outputs.

    Copying the live working tree twice could pick up an edit made in between; a clone cannot.
    """
    sh(dst.parent, "git", "clone", "-q", str(src), str(dst))
    return dst


GIT_DATES = {"GIT_AUTHOR_DATE": "2025-01-01T00:00:00+00:00", "GIT_COMMITTER_DATE": "2025-01-01T00:00:00+00:00"}
ARTIFACT_DIRS = ("data", "reports", "metrics")
# What io.atomic_path leaves behind if the process is killed between mkstemp and os.replace.
TEMP_NAME = re.compile(r"^\..+\.tmp(\.[A-Za-z0-9]+)?$")
STAGE_LINE = re.compile(r"^Running stage '([^']+)'", re.MULTILINE)


def artifacts(root: Path) -> list[Path]:
    """Every file the pipeline wrote (data/, reports/, metrics/), minus placeholders and crash litter."""
    out = []
    for top in ARTIFACT_DIRS:
        for f in sorted((root / top).rglob("*")):
            if f.is_file() and f.name not in (".gitkeep", ".gitignore", "README.md") and not TEMP_NAME.match(f.name):
                out.append(f)
    return out


def unchanged_since_commit(root: Path, *paths: str) -> bool:
    """True when none of the tracked `paths` (e.g. dvc.lock, metrics) differs from the copy's commit."""
    return sh(root, "git", "status", "--porcelain", "--untracked-files=no", "--", *paths).stdout == ""


def untracked_artifacts(root: Path) -> list[Path]:
    """The artifacts git does not track: what a run wrote beyond the committed metrics."""
    tracked = set(sh(root, "git", "ls-files").stdout.splitlines())
    return [f for f in artifacts(root) if f.relative_to(root).as_posix() not in tracked]


def temp_files(root: Path) -> list[Path]:
    """Atomic-write temp files left in the artifact folders."""
    return [f for top in ARTIFACT_DIRS for f in sorted((root / top).rglob("*")) if TEMP_NAME.match(f.name)]


def sha256s(root: Path) -> dict[str, str]:
    """Repo-relative path -> sha256 of every artifact, plus dvc.lock (which records every output's md5)."""
    files = [*artifacts(root), root / "dvc.lock"]
    return {f.relative_to(root).as_posix(): hashlib.sha256(f.read_bytes()).hexdigest() for f in files}


def stages_run(output: str) -> list[str]:
    """The stages `dvc repro` ran, in order, from its "Running stage 'x':" lines."""
    return STAGE_LINE.findall(output)


def start(cwd: Path, log: Path, *cmd: str, **extra: str) -> subprocess.Popen:
    """Start `cmd` in its own process group, stdout and stderr to `log` (poll it; kill the group)."""
    with open(log, "wb") as fh:
        return subprocess.Popen(cmd, cwd=cwd, env=env(PYTHONUNBUFFERED="1", **own_code(cwd), **extra), stdout=fh,
                                stderr=subprocess.STDOUT, start_new_session=True)


def wait_for(log: Path, pattern: str, proc: subprocess.Popen, timeout: float = 600) -> None:
    """Block until `pattern` (regex) shows in `log`; fail if the process ends first or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if re.search(pattern, log.read_text(errors="replace"), re.MULTILINE):
            return
        if proc.poll() is not None:
            raise AssertionError(f"exited {proc.returncode} before {pattern!r}:\n{log.read_text()[-4000:]}")
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {pattern!r}:\n{log.read_text()[-4000:]}")


def streaming_project(project: Path, tx, engine: str):
    """The project at `project` with a CSV source of ingest engine `engine` (params/data.yaml) and `tx` as the
    transactions ingest wrote: what the stages after ingest read when it streams or not. Its paths."""
    from datastory import config, io

    data = yaml.safe_load((project / "params/data.yaml").read_text(encoding="utf-8"))
    data.update(source="csv", engine=engine)
    data["file"]["path"] = "data/raw/log.csv"
    (project / "params/data.yaml").write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    (project / "data/raw").mkdir(parents=True, exist_ok=True)
    (project / "data/raw/log.csv").write_text("not read after ingest\n", encoding="utf-8")
    paths = config.paths(project)
    io.write_parquet(tx, paths.transactions)
    return paths
