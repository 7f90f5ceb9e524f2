"""The malformed-input corpus (tests/fixtures/malformed/cases.yaml), run through the real command line.

For every error case, in a fresh project holding only params/ and the case's input:
- `datastory check-data` (in-process, `cli.main`) exits 2 with one message naming the file, and the row,
  column, problem and fix where they apply, and no traceback; `--debug` shows the traceback;
- the ingest stage's library edge (`ingest.run`) raises the same message, and the project's files are
  byte-identical afterwards: no output is created when there was none, and none is changed when there was one;
- a few representative cases run the real `datastory ingest` (papermill) as a subprocess (slow).
Every "ok" case must read, and ingest must account for every row (kept, duplicate, excluded or rejected).
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from conftest import committed_params

from datastory import cli, config, ingest
from datastory.errors import DatastoryError

REPO = Path(__file__).resolve().parents[1]
MALFORMED = Path(__file__).parent / "fixtures" / "malformed"
MANIFEST = yaml.safe_load((MALFORMED / "cases.yaml").read_text(encoding="utf-8"))
CASES: list[dict[str, Any]] = MANIFEST["cases"]
BY_ID = {c["id"]: c for c in CASES}
MARKER = b"marker: an output of an earlier, good run\n"
SUBPROCESS_CASES = ["csv_unparseable_date", "csv_latin1_header_read_as_utf8", "xlsx_zip_bomb"]
DEBUG_CASES = ["csv_non_numeric_price", "xlsx_corrupt"]


def _params(cases: list[dict[str, Any]]) -> list[Any]:
    """pytest params named by case id; a case with `xfail` is a strict xfail (it must fail until fixed)."""
    return [pytest.param(c, id=c["id"], marks=[pytest.mark.xfail(reason=c["xfail"], strict=True)]
                         if c.get("xfail") else []) for c in cases]


ERRORS = _params([c for c in CASES if c["expect"] == "error"])
OKS = _params([c for c in CASES if c["expect"] == "ok"])


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """`base` with `over` merged in, key by key at every depth (lists and scalars are replaced)."""
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def data_params(case: dict[str, Any]) -> dict[str, Any]:
    """The case's params/data.yaml: the repo's file <- defaults <- layout <- the case's params."""
    data = yaml.safe_load(committed_params("data.yaml"))
    for layer in (MANIFEST.get("defaults") or {}, MANIFEST["layouts"][case["layout"]] or {}, case.get("params") or {}):
        data = merge(data, layer)
    if case.get("input") and "path" not in (case.get("params") or {}).get("file", {}):
        data["file"]["path"] = f"data/raw/{case['input']}"
    return data


def make_db(path: Path, tables: dict[str, Any]) -> None:
    """A SQLite database with the case's tables (text and numbers as given; no declared types)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as conn:
        for name, table in tables.items():
            cols = ", ".join(f'"{c}"' for c in table["columns"])
            conn.execute(f'CREATE TABLE "{name}" ({cols})')
            marks = ", ".join("?" for _ in table["columns"])
            conn.executemany(f'INSERT INTO "{name}" VALUES ({marks})', table["rows"])
    conn.close()


def build(root: Path, case: dict[str, Any], notebook: bool = False) -> Path:
    """A project folder for `case`: params/ (data.yaml overridden), the input in data/raw/, a SQLite db."""
    shutil.copytree(REPO / "params", root / "params")
    text = yaml.safe_dump(data_params(case), sort_keys=False, allow_unicode=True)
    (root / "params" / "data.yaml").write_text(text, encoding="utf-8")
    if case.get("input"):
        (root / "data" / "raw").mkdir(parents=True)
        shutil.copyfile(MALFORMED / case["input"], root / "data" / "raw" / case["input"])
    if case.get("db"):
        make_db(root / "data" / "raw" / "shop.db", case["db"])
    if notebook:
        (root / "notebooks").mkdir()
        shutil.copyfile(REPO / "notebooks" / "01_ingest.ipynb", root / "notebooks" / "01_ingest.ipynb")
    return root


def plant_outputs(root: Path) -> None:
    """Outputs of an earlier good run (known bytes): a failing run must leave them exactly as they are."""
    paths = config.paths(root)
    for target in (paths.transactions, paths.rejected, paths.data_quality):
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(MARKER + target.name.encode())


def snapshot(root: Path) -> dict[str, str]:
    """Every file and folder under `root`: relative path -> sha256 of the bytes ('dir' for a folder)."""
    out = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        out[rel] = "dir" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def assert_message(case: dict[str, Any], text: str) -> None:
    """The message names the file, row, column, problem and fix that the case lists, and shows no traceback."""
    for fragment in case["message"]:
        assert fragment in text, f"{case['id']}: {fragment!r} missing from:\n{text}"
    named = case.get("names_file") or (Path(case["input"]).name if case.get("input") else None)
    if named:
        assert named in text, f"{case['id']}: the file {named} is not named:\n{text}"
    assert "fix:" in text, f"{case['id']}: no fix given:\n{text}"
    for fragment in case.get("absent", []):
        assert fragment not in text, f"{case['id']}: {fragment!r} must not appear in:\n{text}"
    assert "Traceback" not in text and "internal error" not in text, text


# Categories Python hides by default; any other warning would be printed on the user's terminal.
HIDDEN = (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning)


def run_cli(*args: str) -> tuple[int, list[str]]:
    """`cli.main(args)` and the warnings it emitted that a terminal would show (file:line: Warning: ...)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        status = cli.main(list(args))
    shown = [f"{w.category.__name__}: {w.message}" for w in caught if not issubclass(w.category, HIDDEN)]
    return status, shown


@pytest.fixture
def env(monkeypatch):
    """A clean environment: no DATASTORY_ROOT from the caller; `set(case)` adds the case's variables."""
    monkeypatch.delenv("DATASTORY_ROOT", raising=False)

    def set_case(case: dict[str, Any]) -> None:
        for key, value in (case.get("env") or {}).items():
            monkeypatch.setenv(key, str(value))
    return set_case


# ---------------------------------------------------------------- the manifest itself
def test_manifest_is_complete():
    """At least 32 error cases and the issue's list of must-haves; every input exists and is small."""
    ids = [c["id"] for c in CASES]
    assert len(ids) == len(set(ids)), "case ids must be unique"
    assert sum(c["expect"] == "error" for c in CASES) >= 32
    inputs = {c.get("input") for c in CASES}
    for name in ("empty.csv", "header_only.csv", "semicolon.csv", "missing_customer_column.csv",
                 "duplicate_header.csv", "bad_date.csv", "mixed_dates.csv", "text_quantity.csv", "inf_price.csv",
                 "bom_utf8.csv", "latin1.csv", "empty.xlsx", "corrupt.xlsx", "zipbomb.xlsx", "formulas.xlsx"):
        assert name in inputs, name
    assert {"sqlite_missing_table", "sqlite_missing_database"} <= set(ids)
    for case in CASES:
        assert case["expect"] in ("error", "ok"), case["id"]
        assert (case["expect"] == "ok") == ("verdict" in case), f"{case['id']}: a verdict for each ok case, only"
        assert case["layout"] in MANIFEST["layouts"], case["id"]
        if case["expect"] == "error":
            assert case["message"], case["id"]
        if case.get("input"):
            path = MALFORMED / case["input"]
            assert path.is_file() and path.stat().st_size < 20_000, case["input"]


def _content(name: str, data: bytes) -> Any:
    """What a fixture holds, independent of the writer's version stamp: Parquet as a table, a readable
    workbook as its zip members, anything else (text, gzip, deliberately broken files) as bytes."""
    import io
    import zipfile

    import pyarrow.parquet as pq

    try:
        if name.endswith(".parquet"):
            return pq.read_table(io.BytesIO(data)).to_pylist()
        if name.endswith(".xlsx"):
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                return {i.filename: zf.read(i) for i in zf.infolist()}
    except Exception:  # a broken fixture: compare its bytes
        pass
    return data


def test_corpus_script_regenerates_the_committed_files():
    """make_corpus.py is deterministic: it rebuilds what is committed (the bytes, for everything it writes
    by hand; the rows or zip members where a library writes its version into the file)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_corpus", MALFORMED / "make_corpus.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    first, second = module.corpus(), module.corpus()
    assert first == second, "make_corpus.py must give the same bytes twice"
    for name, data in first.items():
        committed = (MALFORMED / name).read_bytes()
        assert _content(name, committed) == _content(name, data), f"{name} differs: run make_corpus.py"


def test_merged_params_are_valid_for_every_case(tmp_path):
    """Overrides only change what the case says; every other case's params pass validation."""
    for case in CASES:
        if case["id"] in ("params_unknown_encoding", "sqlite_query_syntax_error"):   # refused by params on purpose
            continue
        config.DataParams.model_validate(data_params(case))


# ---------------------------------------------------------------- every error case
@pytest.mark.parametrize("planted", [False, True], ids=["no-outputs", "outputs"])
@pytest.mark.parametrize("case", ERRORS)
def test_error_case(case, planted, tmp_path, capsys, env):
    """check-data exits 2 with the full message and no traceback; ingest raises it too; nothing is written."""
    env(case)
    root = build(tmp_path / "project", case)
    if planted:
        plant_outputs(root)
    before = snapshot(root)

    status, shown = run_cli("--root", str(root), "check-data")
    out, err = capsys.readouterr()
    assert status == 2, f"exit {status}\nstdout:\n{out}\nstderr:\n{err}"
    assert err.startswith("datastory: error: "), err
    assert_message(case, err)
    assert "Traceback" not in out
    assert not shown, f"library warnings would reach the terminal besides the message: {shown}"
    assert snapshot(root) == before

    with pytest.raises(DatastoryError) as info:
        ingest.run(root)
    assert f"datastory: error: {info.value}\n" == err, "ingest and check-data must report the same problem"
    assert snapshot(root) == before


@pytest.mark.parametrize("case_id", DEBUG_CASES)
def test_debug_shows_the_traceback(case_id, tmp_path, capsys, env):
    case = BY_ID[case_id]
    env(case)
    root = build(tmp_path / "project", case)
    status = cli.main(["--debug", "--root", str(root), "check-data"])
    err = capsys.readouterr().err
    assert status == 2
    assert "Traceback (most recent call last)" in err
    for fragment in case["message"]:
        assert fragment in err


# ---------------------------------------------------------------- the real terminal command
def datastory(root: Path, *args: str, env_vars: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).parent / "datastory"
    environ = {k: v for k, v in os.environ.items() if k != "DATASTORY_ROOT"} | (env_vars or {})
    return subprocess.run([str(exe), "--root", str(root), *args], cwd=root.parent, capture_output=True, text=True,
                          timeout=300, env=environ)


@pytest.mark.slow
@pytest.mark.parametrize("case_id", SUBPROCESS_CASES)
def test_ingest_command_fails_cleanly(case_id, tmp_path):
    """`datastory ingest` (papermill): exit 2, the message, no traceback, outputs and the run record untouched."""
    case = BY_ID[case_id]
    root = build(tmp_path / "project", case, notebook=True)
    plant_outputs(root)
    before = snapshot(root)
    res = datastory(root, "ingest", env_vars={k: str(v) for k, v in (case.get("env") or {}).items()})
    assert res.returncode == 2, res.stdout + res.stderr
    assert "stage 'ingest' stopped" in res.stderr
    assert_message(case, res.stdout + res.stderr)
    after = snapshot(root)
    assert {k: v for k, v in after.items() if v != "dir"} == {k: v for k, v in before.items() if v != "dir"}
    assert set(after) - set(before) <= {"reports", "reports/runs"}, set(after) - set(before)


@pytest.mark.slow
def test_failed_ingest_command_creates_no_folders(tmp_path):
    case = BY_ID[SUBPROCESS_CASES[0]]
    root = build(tmp_path / "project", case, notebook=True)
    before = snapshot(root)
    res = datastory(root, "ingest")
    assert res.returncode == 2, res.stderr
    assert snapshot(root) == before, set(snapshot(root)) - set(before)


@pytest.mark.slow
def test_ingest_command_debug_shows_the_traceback(tmp_path):
    case = BY_ID[SUBPROCESS_CASES[0]]
    root = build(tmp_path / "project", case, notebook=True)
    res = datastory(root, "--debug", "ingest")
    assert res.returncode == 2, res.stderr
    assert "Traceback (most recent call last)" in res.stderr
    assert case["message"][0] in res.stderr


# ---------------------------------------------------------------- handled, not an error
@pytest.mark.parametrize("case", OKS)
def test_ok_case(case, tmp_path, capsys, env):
    """check-data reads the input, summarises it and judges what it supports (and writes nothing); ingest writes
    outputs that account for every row."""
    env(case)
    root = build(tmp_path / "project", case)
    before = snapshot(root)
    status, shown = run_cli("--root", str(root), "check-data")
    out, err = capsys.readouterr()
    assert not shown, f"library warnings would reach the terminal: {shown}"
    assert "rows read     " in out and "Traceback" not in out + err
    assert "\nforecast      " in out and "\nchurn         " in out  # what the history allows, said before anything runs
    if case["verdict"] == "usable":
        assert status == 0 and "\nverdict       usable\n" in out, err
    else:   # read well, but the pipeline cannot run on it: exit 2, saying why
        assert status == 2, err
        verdict = next(line for line in out.splitlines() if line.startswith("verdict"))
        assert verdict.startswith("verdict       unusable: ") and case["verdict"] in verdict, verdict
        assert err.startswith("datastory: error: ") and "cannot run the whole pipeline" in err and "fix:" in err
        assert case["verdict"] in err
    for fragment in case.get("summary") or []:
        assert fragment in out, (fragment, out)
    assert snapshot(root) == before

    returned = ingest.run(root)
    paths = config.paths(root)
    quality = json.loads(paths.data_quality.read_text(encoding="utf-8"))
    assert quality["rows_read"] == returned["rows_read"]
    for key, value in (case.get("quality") or {}).items():
        assert quality[key] == value, (key, quality)
    excluded, rejected_n = sum(quality["excluded"].values()), sum(quality["rejected"].values())
    assert quality["rows_read"] == quality["rows_kept"] + quality["duplicates_removed"] + excluded + rejected_n

    tx = pd.read_parquet(paths.transactions)
    assert len(tx) == quality["rows_kept"]
    rejected = pd.read_parquet(paths.rejected)
    assert len(rejected) == quality["rows_read"] - quality["rows_kept"]
    expected = case.get("set_aside") or []
    assert sorted(rejected["row"].tolist()) == sorted(e["row"] for e in expected)
    for e in expected:
        got = rejected.loc[rejected["row"] == e["row"]].iloc[0]
        assert got["disposition"] == e["disposition"], (e, got.to_dict())
        assert e["reason"] in got["reason"], (e, got.to_dict())
        if "column" in e:
            assert got["column"] == e["column"], (e, got.to_dict())
    for column, values in (case.get("values") or {}).items():
        assert set(tx[column].astype(str)) == set(values), (column, sorted(set(tx[column].astype(str))))
    if "amount_total" in case:
        assert tx["amount"].sum() == pytest.approx(case["amount_total"])
