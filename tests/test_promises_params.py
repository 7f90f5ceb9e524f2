"""Hostile parameters are refused before anything runs: by `datastory check-params`, by every pipeline
command before it writes, and so by `dvc repro` at its first stage.

Each case edits one key of a fresh project's params and expects one message naming the file, the key, the
value and a fix, exit status 2, no traceback, and not one file written (inside the project or beside it).
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from datastory import cli

REPO = Path(__file__).resolve().parents[1]

# (id, params file, key path, value, fragments the message must hold besides file, key and value)
CASES: list[tuple[str, str, tuple[str | int, ...], Any, list[str]]] = [
    ("outbox_outside", "paths", ("paths", "outbox_dir"), "../escape_outbox", ["leads out of the project"]),
    ("output_absolute", "paths", ("paths", "kpis"), "/tmp/kpis.parquet", ["not relative to the project"]),
    ("output_into_sources", "paths", ("paths", "runs_dir"), "src/runs", ["holds the project's sources"]),
    ("data_file_outside", "data", ("file", "path"), "../../../etc/passwd", ["leads out of the project"]),
    ("data_file_absolute", "data", ("file", "path"), "/etc/passwd", ["not relative to the project"]),
    ("data_file_other_kind", "data", ("file", "path"), "data/raw/notes.md", ["extension is '.md'"]),
    ("currency_crlf", "data", ("currency",), "EU\r\nR", ["email's headers"]),
    ("label_crlf", "report", ("audiences", "north", "label"), "North\r\nBcc: x@evil.example", ["email's headers"]),
    ("to_crlf", "report", ("audiences", "north", "to", 0), "n@example.com\r\nBcc: x@evil.example",
     ["email's headers"]),
    ("to_not_an_address", "report", ("audiences", "north", "to", 0), "north manager", ["not one email address"]),
    ("from_crlf", "deliver", ("from_addr",), "reports@example.com\nBcc: x@evil.example", ["email's headers"]),
    ("horizon_daily", "forecast", ("horizon",), 1000, ["with freq D", "at most 730", "backtest"]),
    ("region_misspelt", "report", ("audiences", "north", "regions"), ["Nrth"], ["'Nrth' is not a region"]),
]
IDS = [c[0] for c in CASES]


def hostile(root: Path, case: tuple) -> None:
    """Copy params/ into `root` and set the case's key (with freq D for the horizon case)."""
    _, stage, keys, value, _ = case
    shutil.copytree(REPO / "params", root / "params")
    path = root / "params" / f"{stage}.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if stage == "forecast":
        data["freq"] = "D"
    if stage == "data" and keys == ("file", "path"):
        data["source"] = "csv"
    node = data
    for key in keys[:-1]:
        node = node[key]
    node[keys[-1]] = value
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")


def snapshot(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*"))}


def check_message(err: str, case: tuple) -> None:
    _, stage, keys, value, fragments = case
    file = "params/paths.yaml" if stage == "paths" else f"params/{stage}.yaml"
    key = ".".join(str(k) for k in keys)
    assert err.startswith(f"datastory: error: {file}: key '{key}' has value {value!r}: "), err
    for fragment in fragments:
        assert fragment in err, (fragment, err)
    assert "\n  fix: " in err and "Traceback" not in err


@pytest.fixture
def project(tmp_path, monkeypatch) -> Path:
    monkeypatch.delenv("DATASTORY_ROOT", raising=False)
    root = tmp_path / "project"
    root.mkdir()
    return root


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_check_params_refuses_with_file_key_value_and_fix(project, capsys, case):
    hostile(project, case)
    before = snapshot(project.parent)
    assert cli.main(["--root", str(project), "check-params"]) == 2
    check_message(capsys.readouterr().err, case)
    assert snapshot(project.parent) == before


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_the_first_stage_refuses_before_it_writes(project, capsys, case):
    """`datastory sample` is the first stage `dvc repro` runs: it writes nothing with a bad value anywhere."""
    hostile(project, case)
    before = snapshot(project.parent)
    assert cli.main(["--root", str(project), "sample"]) == 2
    check_message(capsys.readouterr().err, case)
    assert snapshot(project.parent) == before


def test_the_stages_after_ingest_check_regions_against_the_ingested_data(project, capsys):
    """With the regions of a source column, the first check is against the data: the stages after ingest
    refuse a misspelt region before they write (here the kpis stage; the report stage would come later)."""
    import pandas as pd

    shutil.copytree(REPO / "params", project / "params")
    data = yaml.safe_load((project / "params/data.yaml").read_text())
    data["source"] = "csv"
    (project / "params/data.yaml").write_text(yaml.safe_dump(data))
    report = yaml.safe_load((project / "params/report.yaml").read_text())
    report["audiences"]["north"]["regions"] = ["Nrth"]
    (project / "params/report.yaml").write_text(yaml.safe_dump(report))
    assert cli.main(["--root", str(project), "check-params"]) == 0
    assert "regions cannot be checked yet" in capsys.readouterr().out
    tx = project / "data/interim/transactions.parquet"
    tx.parent.mkdir(parents=True)
    pd.DataFrame({"region": ["East", "North", "South", "West"]}).to_parquet(tx)
    before = snapshot(project.parent)
    assert cli.main(["--root", str(project), "kpis"]) == 2
    err = capsys.readouterr().err
    assert "params/report.yaml: key 'audiences.north.regions' has value ['Nrth']" in err
    assert "the ingested data (data/interim/transactions.parquet) has the regions East, North, South, West" in err
    assert snapshot(project.parent) == before


@pytest.mark.slow
@pytest.mark.e2e
def test_dvc_repro_stops_before_any_stage_writes(tmp_path):
    """The outbox outside the project: `dvc repro` fails at its first stage and nothing is written, neither
    outside the project (the email) nor inside it."""
    from e2e import copy_repo, sh, unchanged_since_commit, untracked_artifacts

    root = copy_repo(tmp_path / "repo")
    paths = yaml.safe_load((root / "params/paths.yaml").read_text())
    paths["paths"]["outbox_dir"] = "../escape_outbox"
    (root / "params/paths.yaml").write_text(yaml.safe_dump(paths))
    res = sh(root, "dvc", "repro", check=False)
    assert res.returncode != 0
    out = res.stdout + res.stderr
    assert "key 'paths.outbox_dir' has value '../escape_outbox': leads out of the project" in out
    assert "Traceback" not in out
    assert not (tmp_path / "escape_outbox").exists()
    assert untracked_artifacts(root) == [] and unchanged_since_commit(root, "dvc.lock", "metrics")
