"""Helpers for end-to-end tests: a throwaway copy of this repository, built with the real `dvc repro`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def env(**extra: str) -> dict[str, str]:
    out = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", **extra}
    out.pop("DATASTORY_ROOT", None)
    return out


def sh(cwd: Path, *cmd: str, check: bool = True, timeout: int = 900, **extra: str) -> subprocess.CompletedProcess:
    res = subprocess.run(cmd, cwd=cwd, env=env(**extra), capture_output=True, text=True, timeout=timeout)
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
    sh(dst, "git", "-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qm", "copy")
    return dst
