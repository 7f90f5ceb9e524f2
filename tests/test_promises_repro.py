"""Promises 1 and 2, end to end: byte-identical reruns whatever the time zone or locale, a clean `dvc status`,
minimal re-runs, and crash safety (SIGKILL in the middle of a stage leaves no truncated artifact, and the
next `dvc repro` finishes the job).

One extra pipeline run: a clone of the session's `built` project is started under TZ=Pacific/Kiritimati and LANG=C.UTF-8, killed while
report@executive runs, resumed, and then compared byte for byte with the session's `built` project.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from types import SimpleNamespace

import nbformat
import openpyxl
import pandas as pd
import pytest
import yaml
from e2e import artifacts, clone, sh, sha256s, stages_run, start, temp_files, wait_for
from pypdf import PdfReader

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

# UTC+14 and a bare C locale: the opposite corner of the world from the default run.
ELSEWHERE = {"TZ": "Pacific/Kiritimati", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
KILL_IN = "report@executive"


def open_with_reader(path: Path) -> None:
    """Open one artifact with the reader its consumers use; raises if it is truncated or corrupt."""
    kind = path.suffix
    if kind == ".parquet":
        pd.read_parquet(path)
    elif kind == ".xlsx":
        openpyxl.load_workbook(path, read_only=True).close()
    elif kind == ".pdf":
        assert len(PdfReader(path, strict=True).pages) > 0
    elif kind == ".json":
        json.loads(path.read_text(encoding="utf-8"))
    elif kind == ".csv":
        pd.read_csv(path)
    elif kind == ".ipynb":
        nbformat.read(path, as_version=4)
    elif kind == ".html":
        assert path.read_text(encoding="utf-8").rstrip().endswith("</html>")


def unreadable(root: Path) -> tuple[list[str], int]:
    """(artifacts that fail to open, how many were opened)."""
    bad, n = [], 0
    for f in artifacts(root):
        n += 1
        try:
            open_with_reader(f)
        except Exception as exc:  # any failure to read is the finding
            bad.append(f"{f.relative_to(root)}: {type(exc).__name__}: {exc}")
    return bad, n


@pytest.fixture(scope="module")
def crashed(tmp_path_factory, built) -> SimpleNamespace:
    """A clone of `built` run elsewhere (TZ/locale), SIGKILLed mid-stage, inspected, then resumed."""
    root = clone(built, tmp_path_factory.mktemp("kiritimati") / "project")
    log = tmp_path_factory.mktemp("logs") / "killed.log"
    proc = start(root, log, "dvc", "repro", **ELSEWHERE)
    try:
        wait_for(log, rf"^Running stage '{KILL_IN}'", proc)
        deadline = time.monotonic() + 60  # until the stage is inside its notebook (the runner's temp exists)
        while not temp_files(root) and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
        time.sleep(1.0)
        assert proc.poll() is None, "the pipeline finished before it could be killed"
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    bad, opened = unreadable(root)
    state = SimpleNamespace(root=root, killed_log=log.read_text(errors="replace"), unreadable=bad, opened=opened,
                            temps=[t.relative_to(root).as_posix() for t in temp_files(root)],
                            locked_outs=_lock_outs(root))
    state.resumed = sh(root, "dvc", "repro", check=False, **ELSEWHERE)
    return state


def _lock_outs(root: Path) -> set[str]:
    """Every output path dvc.lock records (the stages that completed)."""
    if not (root / "dvc.lock").is_file():
        return set()
    lock = yaml.safe_load((root / "dvc.lock").read_text()) or {}
    return {o["path"] for stage in lock.get("stages", {}).values() for o in stage.get("outs", [])}


def test_kill_mid_stage_leaves_no_truncated_artifact(crashed):
    assert f"Running stage '{KILL_IN}'" in crashed.killed_log
    assert crashed.opened >= 8, "expected the finished stages' parquet/json/notebooks to be in place"
    assert not crashed.unreadable, crashed.unreadable


def test_kill_leaves_temp_files_only_as_hidden_non_outputs(crashed):
    """A killed atomic write may leave its hidden `.name.XXXX.tmp.ext`, never a file at an output path."""
    for rel in crashed.temps:
        assert Path(rel).name.startswith("."), rel
        assert rel not in crashed.locked_outs, rel
    declared = {f.relative_to(crashed.root).as_posix() for f in artifacts(crashed.root)}
    assert not declared & set(crashed.temps)


def test_next_repro_completes_and_keeps_finished_stages(crashed):
    res = crashed.resumed
    assert res.returncode == 0, f"resume failed:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    ran = stages_run(res.stdout)
    assert KILL_IN in ran, ran
    assert not {"sample", "ingest", "kpis", "forecast", "churn"} & set(ran), ran
    assert not unreadable(crashed.root)[0]


def test_rerun_elsewhere_is_byte_identical(crashed, built):
    """Same inputs and params, other TZ/locale, one crash on the way: every artifact has the same sha256."""
    here, there = sha256s(built), sha256s(crashed.root)
    assert len(here) > 30
    assert sorted(here) == sorted(there)
    differ = sorted(k for k in here if here[k] != there[k])
    assert not differ, differ
    kinds = {Path(k).suffix for k in here}
    assert {".parquet", ".xlsx", ".html", ".pdf", ".eml", ".json", ".csv", ".ipynb"} <= kinds


def test_status_is_clean_after_repro(crashed):
    res = sh(crashed.root, "dvc", "status", **ELSEWHERE)
    assert "up to date" in res.stdout, res.stdout


def test_report_param_change_reruns_only_that_audiences_report_and_deliver(crashed):
    """Last in this module: it edits the copy's params/report.yaml (one audience's label).

    dvc.yaml tracks params/report.yaml per audience (title, company, page_size, audiences.<key>), so a
    change to `audiences.east` must re-run report@east and deliver@east and nothing else. (A change to
    `title` re-runs all ten report@*/deliver@* stages the same way, at five times the cost.)
    """
    path = crashed.root / "params/report.yaml"
    text = path.read_text()
    assert "label: East sales" in text
    path.write_text(text.replace("label: East sales", "label: East sales and service", 1))
    ran = stages_run(sh(crashed.root, "dvc", "repro", **ELSEWHERE).stdout)
    assert ran == ["report@east", "deliver@east"], ran
    html = (crashed.root / "reports/east/report.html").read_text(encoding="utf-8")
    assert "East sales and service" in html
    assert "up to date" in sh(crashed.root, "dvc", "status").stdout
