"""The whole pipeline from a CSV invoice-line log mapped only through params (the README's worked
example, taken from the README itself), then from the same log in a SQLite table."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pandas as pd
import pytest
import yaml
from e2e import REPO, copy_repo, sh, stages_run

from datastory import io

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

AUDIENCES = yaml.safe_load((REPO / "params/report.yaml").read_text())["audiences"]


def readme_example() -> dict:
    """The params block the README's worked example shows (after its marker comment)."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    block = text.split("<!-- invoice-log-example", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    return yaml.safe_load(block)


def set_data_params(root: Path, overrides: dict) -> None:
    path = root / "params/data.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    for key, value in overrides.items():
        data[key] = {**data[key], **value} if isinstance(value, dict) and key != "columns" else value
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")


@pytest.fixture(scope="module")
def csv_project(tmp_path_factory) -> Path:
    root = copy_repo(tmp_path_factory.mktemp("invoices"))
    sh(root, "datastory", "sample", "--invoice-log", "data/raw/invoices.csv")
    set_data_params(root, readme_example())
    sh(root, "dvc", "repro")
    return root


def test_csv_invoice_log_builds_every_pack(csv_project):
    root = csv_project
    q = io.read_json(root / "data/interim/data_quality.json")
    assert q["source"] == "csv"
    assert q["rows_read"] == (q["rows_kept"] + q["duplicates_removed"] + sum(q["excluded"].values())
                              + sum(q["rejected"].values()))
    assert q["excluded"]["non-product line"] > 0 and q["excluded"]["no customer id"] > 0
    assert q["cancelled_lines"] > 0 and q["cancelled_lines"] == q["return_lines"]
    log = pd.read_csv(root / "data/raw/invoices.csv", dtype=str, keep_default_na=False)
    assert q["rows_read"] == len(log)
    rejected = io.read_parquet(root / "data/interim/rejected.parquet")
    assert len(rejected) == q["rows_read"] - q["rows_kept"]
    # row numbers are the CSV's own lines: the set-aside line really is what the reason says
    post = rejected[rejected["reason"] == "non-product line"].iloc[0]
    assert log.iloc[int(post["row"]) - 2]["StockCode"] == "POST" == post["StockCode"]
    tx = io.read_parquet(root / "data/interim/transactions.parquet")
    assert set(tx["region"]) == {"North", "South", "East", "West"}
    kept = log[~log["StockCode"].eq("POST") & log["CustomerID"].ne("")].drop_duplicates()
    revenue = (kept["Quantity"].astype(float) * kept["UnitPrice"].astype(float)).sum()
    assert tx["amount"].sum() == pytest.approx(revenue, rel=1e-9)
    for key in AUDIENCES:
        for ext in ("xlsx", "html", "pdf"):
            assert (root / "reports" / key / f"report.{ext}").stat().st_size > 1000
        assert (root / "reports/outbox" / f"{key}.eml").is_file()
    html = (root / "reports/executive/report.html").read_text(encoding="utf-8")
    assert "Excluded by rule: non-product line" in html
    assert sh(root, "dvc", "status").stdout.strip() in ("Data and pipelines are up to date.", "")
    # the source is the CSV: the sample stage generated no company, only its empty placeholder
    assert io.read_parquet(root / "data/raw/sample/transactions.parquet").empty


def test_check_data_summarises_the_log(csv_project):
    out = sh(csv_project, "datastory", "check-data").stdout
    assert "data/raw/invoices.csv (csv, on_bad_rows: fail)" in out
    assert "non-product line" in out and "verdict       usable" in out
    assert ("forecast      156 weeks (about 3 years) of full weeks: weekly forecast with yearly seasonality, "
            "backtested on 3 folds of 13 weeks") in out


def _outputs(root: Path) -> dict[str, bytes]:
    """Every output dvc.lock records (folders walked), by path; the executed notebooks apart."""
    lock = yaml.safe_load((root / "dvc.lock").read_text(encoding="utf-8"))
    found = {}
    for stage in lock["stages"].values():
        for out in stage.get("outs", []):
            path = root / out["path"]
            for f in sorted(path.rglob("*")) if path.is_dir() else [path]:
                if f.is_file():
                    found[f.relative_to(root).as_posix()] = f.read_bytes()
    return found


def test_streaming_the_same_log_writes_every_output_byte_for_byte(csv_project):
    """The whole pipeline (dvc repro) with ingest streaming, and so the kpis, forecast and churn stages reading
    the transactions file a batch or a shard at a time (2,000 lines), writes every output of the in-memory run:
    the data, the metrics, the workbooks, reports, dashboards and emails. Only the executed notebooks say which
    way they went."""
    root = csv_project
    memory = _outputs(root)
    assert "with the transactions in memory" in memory["reports/runs/04_churn.ipynb"].decode("utf-8")
    set_data_params(root, {"engine": "stream"})
    try:
        res = sh(root, "dvc", "repro", DATASTORY_STREAM_BATCH="2000", DATASTORY_CHURN_SHARD_ROWS="2000")
    finally:
        set_data_params(root, {"engine": readme_example().get("engine", "auto")})
    assert {"ingest", "kpis", "forecast", "churn"} <= set(stages_run(res.stdout))
    assert len(io.read_parquet(root / "data/interim/transactions.parquet")) > 2000 * 3   # so many reads happened
    stream = _outputs(root)
    assert stream.keys() == memory.keys()
    notebooks = {k for k in memory if k.endswith(".ipynb")}
    assert len(notebooks) >= 5 and len(memory) - len(notebooks) >= 20
    assert [k for k in memory if k not in notebooks and stream[k] != memory[k]] == []
    assert "read from the file in batches" in stream["reports/runs/02_kpis.ipynb"].decode("utf-8")
    assert "shard by shard" in stream["reports/runs/04_churn.ipynb"].decode("utf-8")


def test_same_log_from_a_sqlite_table_gives_the_same_transactions(csv_project):
    root = csv_project
    from_csv = (root / "data/interim/transactions.parquet").read_bytes()
    log = pd.read_csv(root / "data/raw/invoices.csv", dtype=str, keep_default_na=False)
    with sqlite3.connect(root / "data/raw/shop.db") as con:
        log.to_sql("invoice_lines", con, index=False)
    con.close()
    set_data_params(root, {"source": "sql", "sql": {"url": "sqlite:///data/raw/shop.db", "table": "invoice_lines"}})
    res = sh(root, "dvc", "repro")
    assert "Running stage 'ingest'" in res.stdout
    assert (root / "data/interim/transactions.parquet").read_bytes() == from_csv
    q = io.read_json(root / "data/interim/data_quality.json")
    assert q["source"] == "sql" and q["rows_read"] == len(log)
    assert (root / "reports/executive/report.pdf").is_file()
