"""Streaming ingest (datastory.ingest_stream): the same outputs and the same messages as the in-memory path.

Logs are written as real CSV files and ingested twice by `ingest.run` in a real project folder: with
engine: memory, and with engine: stream and batches of a few records (DATASTORY_STREAM_BATCH), so that
duplicates, multi-line quoted values and a customer's lines fall on both sides of batch boundaries.
The three outputs must be the same bytes. Every malformed CSV of the corpus must get the same message from
both engines, and nothing written.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import shapes
import yaml
from conftest import committed_params
from test_malformed_inputs import BY_ID, build, data_params

from datastory import config, ingest, ingest_stream, io, streaming
from datastory.errors import DataError, DatastoryError

REPO = Path(__file__).resolve().parents[1]


def awkward_log(seed: int = 5) -> pd.DataFrame:
    """The invoice log of tests/shapes.py (cancellations, guest lines, postage, fees, bad debt) plus: exact
    duplicates right after their row and far from it, non-ASCII countries and customer ids, multi-line quoted
    descriptions, a line break inside a mapped value (rejected in quarantine), a country that is not mapped,
    and lines whose region is missing next to the customer's other lines."""
    log = shapes.invoice_log(n_customers=60, seed=seed, countries=("United Kingdom", "Germany", "France",
                                                                    "Österreich", "Česko"))
    rng = np.random.default_rng(seed)
    n = len(log)
    desc = log["Description"].to_numpy(dtype=object)
    for i in rng.choice(n, n // 15, replace=False):
        desc[i] = f"{desc[i]}\nzweite Zeile, \"zitiert\"\r\nÜberlänge"
    log["Description"] = desc
    ids = log["CustomerID"].to_numpy(dtype=object)
    for i in rng.choice(n, 10, replace=False):
        if ids[i]:
            ids[i] = f"Kunde-{ids[i]}-ß"
    log["CustomerID"] = ids
    country = log["Country"].to_numpy(dtype=object)
    for i in rng.choice(n, 12, replace=False):
        country[i] = ""    # a missing country: the customer's other lines give the region
    country[rng.choice(n, 2, replace=False)] = "Côte\nd'Ivoire"
    log["Country"] = country
    near = rng.choice(n - 1, 25, replace=False)
    far = rng.choice(n // 3, 10, replace=False)
    parts, previous = [], 0
    for i in sorted(near):
        parts += [log.iloc[previous:i + 1], log.iloc[[i]]]
        previous = i + 1
    parts += [log.iloc[previous:], log.iloc[far]]
    return pd.concat(parts, ignore_index=True)


def write_csv(log: pd.DataFrame, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(log.to_csv(index=False, lineterminator="\n").encode("utf-8"))
    return path


def make_project(root: Path, log: pd.DataFrame, engine: str, **data) -> Path:
    shutil.copytree(REPO / "params", root / "params")
    params = yaml.safe_load(committed_params("data.yaml"))
    params.update(source="csv", engine=engine, on_bad_rows=data.pop("on_bad_rows", "quarantine"))
    params["file"]["path"] = "data/raw/log.csv"
    params["columns"] = dict(shapes.INVOICE_MAPPING)
    params["rules"] = {**params["rules"], **shapes.INVOICE_RULES, "max_timestamp": "2026-12-31", **data}
    (root / "params" / "data.yaml").write_text(yaml.safe_dump(params, sort_keys=False, allow_unicode=True),
                                               encoding="utf-8")
    write_csv(log, root / "data" / "raw" / "log.csv")
    return root


def outputs(root: Path) -> dict[str, bytes]:
    paths = config.paths(root)
    return {p.name: p.read_bytes() for p in (paths.transactions, paths.rejected, paths.data_quality)}


def both(tmp_path: Path, log: pd.DataFrame, monkeypatch, batch: int, **data) -> tuple[dict, dict, dict]:
    memory = make_project(tmp_path / "memory", log, "memory", **data)
    stream = make_project(tmp_path / "stream", log, "stream", **data)
    q_memory = ingest.run(memory)
    monkeypatch.setenv("DATASTORY_STREAM_BATCH", str(batch))
    q_stream = ingest.run(stream)
    assert q_stream == q_memory
    return outputs(memory), outputs(stream), q_memory


def test_time_ranges_are_whole_days_of_at_most_the_lines_asked_and_take_every_day():
    rng = np.random.default_rng(3)
    for trial in range(200):
        start = pd.Timestamp("2024-01-01") + pd.Timedelta(days=int(rng.integers(0, 400)))
        gaps = np.cumsum(rng.integers(1, 4, size=int(rng.integers(0, 60))))
        days = [(start + pd.Timedelta(days=int(g)), int(rng.integers(1, 30))) for g in gaps]
        if trial % 3 == 0:
            days.append((None, int(rng.integers(1, 5))))    # lines without a date sort last
        rows = int(rng.integers(1, 80))
        ranges = ingest_stream.time_ranges(days, rows)
        assert ranges[0][0] is None and ranges[-1][1] is None
        assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:], strict=False))   # no gap, no overlap
        assert all(a < b for a, b in ranges[1:-1])
        lines = [[n for d, n in days if d is not None and (lo is None or d >= lo) and (hi is None or d < hi)]
                 for lo, hi in ranges]
        for inside in lines:
            assert inside or len(ranges) == 1, "a range without a dated line"
            assert sum(inside) <= rows or len(inside) == 1   # a day of more lines is a range of its own
        for inside, after in zip(lines, lines[1:], strict=False):
            assert sum(inside) + after[0] > rows             # as few ranges as that allows: none could grow


@pytest.mark.parametrize("batch", [7, 50, 100_000])
def test_streaming_gives_the_same_bytes_as_in_memory(tmp_path, monkeypatch, batch):
    log = awkward_log()
    ranges = []
    sql = ingest_stream._range_sql
    monkeypatch.setattr(ingest_stream, "_range_sql", lambda start, end: ranges.append((start, end)) or sql(start, end))
    memory, stream, q = both(tmp_path, log, monkeypatch, batch)
    # small batches sort many time ranges one after another, a large one the whole log at once
    assert len(ranges) > {7: 10, 50: 1}[batch] if batch < 1000 else len(ranges) == 1
    # the log really holds what the test is about
    assert q["duplicates_removed"] >= 25 and q["cancelled_lines"] > 0 and q["excluded"]["no customer id"] > 0
    assert q["missing_region_filled"] > 0 and q["rejected"]["country holds a control character"] == 2
    assert q["unmapped_countries"].get("Österreich", 0) > 0
    assert memory.keys() == stream.keys()
    for name in memory:
        assert stream[name] == memory[name], f"{name} differs between the engines (batch {batch})"
    rejected = pd.read_parquet(config.paths(tmp_path / "stream").rejected)
    assert rejected["row"].is_monotonic_increasing
    # rows are the file's own line numbers: the multi-line descriptions before a row push it down
    lines = (tmp_path / "stream" / "data" / "raw" / "log.csv").read_text(encoding="utf-8").split("\n")
    first_dup = rejected[rejected["disposition"] == "duplicate"].iloc[0]
    assert lines[int(first_dup["row"]) - 1].startswith(f"{first_dup['InvoiceNo']},")


def test_a_customer_and_region_split_across_batches_and_fail_mode(tmp_path, monkeypatch):
    """on_bad_rows: fail with a clean log (guest lines and postage only excluded): identical outputs too."""
    log = shapes.invoice_log(n_customers=40, seed=9)
    log = pd.concat([log, log.iloc[[3, 4]], log.iloc[[len(log) - 1]]], ignore_index=True)
    memory, stream, q = both(tmp_path, log, monkeypatch, 11, on_bad_rows="fail")
    assert q["duplicates_removed"] == 3
    assert memory == stream


def test_guessed_date_format_and_no_order_id(tmp_path, monkeypatch):
    """Purchases without an order id (one order per customer and timestamp) and dates whose format is guessed."""
    log = shapes.purchase_log(n_customers=80)
    for root, engine in ((tmp_path / "m", "memory"), (tmp_path / "s", "stream")):
        make_project(root, log, engine)
        data = yaml.safe_load((root / "params" / "data.yaml").read_text(encoding="utf-8"))
        data["columns"] = dict(shapes.PURCHASE_MAPPING)
        data["rules"] = {**data["rules"], **shapes.PURCHASE_RULES, "date_format": "", "cancelled_prefix": "",
                         "non_product_codes": [], "country_regions": {}}
        (root / "params" / "data.yaml").write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    q = ingest.run(tmp_path / "m")
    monkeypatch.setenv("DATASTORY_STREAM_BATCH", "13")
    assert ingest.run(tmp_path / "s") == q
    assert outputs(tmp_path / "m") == outputs(tmp_path / "s")
    assert q["order_ids"] == ingest.ORDER_PER_CUSTOMER_TIME


def snapshot(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def bad_value_log(position: int, n_customers: int = 400) -> pd.DataFrame:
    """A clean log with one unusable price at data row `position`, and a guest line holding another bad price
    before it (excluded by the rules, so never judged)."""
    log = shapes.invoice_log(n_customers=n_customers, seed=3, bad_debt=0, fees=0)
    assert len(log) > position + 10
    log.loc[position, "UnitPrice"] = "12,5O"
    guest = log.index[(log["CustomerID"] == "") & (log.index < position)][0]
    log.loc[guest, "UnitPrice"] = "n/a"
    return log


def test_a_bad_value_deep_in_the_file_gets_the_same_message_and_nothing_is_written(tmp_path, monkeypatch):
    log = bad_value_log(position=len(shapes.invoice_log(n_customers=400, seed=3, bad_debt=0, fees=0)) - 40)
    log.loc[120, "Description"] = "eine\nlange\nBeschreibung"    # line numbers run ahead of record numbers
    messages = refusals_by_engine(lambda engine: make_project(tmp_path / engine, log, engine, on_bad_rows="fail"),
                                  97, monkeypatch, ingest.run, DataError)
    assert messages[0] == messages[1]
    line = len(log) - 40 + 2 + 2    # header, 0-based row, the two extra lines of the description
    assert f"line {line} (record {line - 2}), column 'UnitPrice'" in messages[1] and "'12,5O'" in messages[1]


def test_the_first_check_in_order_wins_over_an_earlier_row(tmp_path, monkeypatch):
    """In memory, the first check in check order that any row fails is reported (with its count over the
    file), not the first bad row: an empty invoice number late in the file beats a bad price early on."""
    log = shapes.invoice_log(n_customers=200, seed=4, bad_debt=0, fees=0)
    log.loc[30, "UnitPrice"] = "abc"
    log.loc[[len(log) - 20, len(log) - 5], "InvoiceNo"] = ""
    messages = []
    for engine in ("memory", "stream"):
        root = make_project(tmp_path / engine, log, engine, on_bad_rows="fail")
        monkeypatch.setenv("DATASTORY_STREAM_BATCH", "64")
        with pytest.raises(DataError) as info:
            ingest.run(root)
        messages.append(str(info.value))
    assert messages[0] == messages[1]
    assert "order id is empty" in messages[1] and "2 row(s)" in messages[1]


CSV_ERRORS = [c["id"] for c in BY_ID.values() if c["expect"] == "error" and c.get("input", "").endswith(".csv")
              and data_params(c)["source"] == "csv" and not c.get("xfail") and not c.get("env")]


def refusals_by_engine(project, batch: int, monkeypatch, run, error: type = DatastoryError) -> list[str]:
    """`run(root)`'s error message (an `error`) with engine memory, then stream (batches of `batch` records), each
    in the project `project(engine)` makes; asserts that neither run wrote anything."""
    messages = []
    for engine in ("memory", "stream"):
        root = project(engine)
        before = snapshot(root)
        monkeypatch.setenv("DATASTORY_STREAM_BATCH", str(batch))
        with pytest.raises(error) as info:
            run(root)
        messages.append(str(info.value))
        assert snapshot(root) == before, f"{engine} wrote something"
    return messages


def case_project(case: dict, tmp_path: Path):
    """A factory of the corpus case's project with params/data.yaml's engine set (for refusals_by_engine)."""
    def project(engine: str) -> Path:
        root = build(tmp_path / engine, case)
        data = yaml.safe_load((root / "params" / "data.yaml").read_text(encoding="utf-8"))
        data["engine"] = engine
        (root / "params" / "data.yaml").write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True),
                                                   encoding="utf-8")
        return root
    return project


@pytest.mark.parametrize("case_id", CSV_ERRORS)
def test_every_malformed_csv_gets_the_same_message_from_both_engines(case_id, tmp_path, monkeypatch):
    messages = refusals_by_engine(case_project(BY_ID[case_id], tmp_path), 3, monkeypatch, ingest.run)
    assert messages[1] == messages[0]


def test_engine_auto_streams_only_large_csv_files(project, monkeypatch):
    tmp_path = project
    cfg = config.DataParams(source="csv", engine="auto", file=config.FileParams(path="data/raw/log.csv"))
    write_csv(shapes.invoice_log(n_customers=5), tmp_path / "data" / "raw" / "log.csv")
    assert not streaming.streams(cfg, tmp_path)
    monkeypatch.setattr(streaming, "AUTO_BYTES", 100)
    assert streaming.streams(cfg, tmp_path)
    assert not streaming.streams(cfg.model_copy(update={"engine": "memory"}), tmp_path)
    assert streaming.streams(cfg.model_copy(update={"engine": "stream"}), tmp_path)
    assert not streaming.streams(config.DataParams(engine="stream"), tmp_path)   # the sample: in memory


def test_engine_is_a_checked_param():
    with pytest.raises(ValueError):
        config.DataParams(engine="fast")


@pytest.mark.slow
def test_the_ingest_notebook_streams_and_writes_the_same_bytes(tmp_path, monkeypatch):
    """The stage's notebook (papermill) with engine: stream writes what ingest.run writes in memory."""
    from datastory import runner

    log = awkward_log(seed=8)
    memory = make_project(tmp_path / "memory", log, "memory")
    stream = make_project(tmp_path / "stream", log, "stream")
    shutil.copytree(REPO / "notebooks", stream / "notebooks")
    ingest.run(memory)
    monkeypatch.setenv("DATASTORY_STREAM_BATCH", "40")
    executed = runner.execute("ingest", stream)
    assert outputs(stream) == outputs(memory)
    assert "streamed in batches" in Path(executed).read_text(encoding="utf-8")


# ---------------------------------------------------------------- check-data: the same pass, nothing written
def gap_log() -> pd.DataFrame:
    """A clean invoice log without a line in June 2024: a month inside the period with no row."""
    log = shapes.invoice_log(n_customers=120, seed=6)
    return log[~log["InvoiceDate"].str.match(r"6/\d+/2024 ")].reset_index(drop=True)


CHECK_LOGS = {
    "awkward, quarantine": (awkward_log, {}),
    "clean, fail, a month without rows": (gap_log, {"on_bad_rows": "fail"}),
    "too few customers (unusable)": (lambda: shapes.invoice_log(n_customers=8, seed=2), {}),
}


@pytest.mark.parametrize("batch", [7, 100_000])
@pytest.mark.parametrize("case", list(CHECK_LOGS))
def test_check_data_says_the_same_from_both_engines_and_writes_nothing(case, batch, tmp_path, monkeypatch):
    from datastory import profile, stages

    make_log, data = CHECK_LOGS[case]
    log = make_log()
    said, roots = [], {}
    for engine in ("memory", "stream"):
        root = roots[engine] = make_project(tmp_path / engine, log, engine, **data)
        before = snapshot(root)
        if engine == "stream":   # the streaming pass, not the whole file in memory
            monkeypatch.setenv("DATASTORY_STREAM_BATCH", str(batch))
            monkeypatch.setattr(ingest, "prepare", lambda *a, **k: pytest.fail("check-data read the file whole"))
        lines, refusal = stages.check_data(root)
        said.append((lines, str(refusal)))
        assert snapshot(root) == before, f"check-data wrote something ({engine})"
    assert said[1] == said[0]
    lines, refusal = said[0]
    assert lines[0] == "source        data/raw/log.csv (csv, on_bad_rows: " + data.get("on_bad_rows", "quarantine") + ")"
    assert lines[-1].startswith("verdict       ") and any(line.startswith("churn         ") for line in lines)
    if case.startswith("clean"):
        assert "warning: no rows in 1 month(s) inside the period: 2024-06" in lines
    if case.startswith("awkward"):
        assert any(line.startswith("warning: 2 countries are not in rules.country_regions") for line in lines)
    assert ("unusable" in lines[-1]) == case.endswith("(unusable)") == (refusal != "None")
    # the profile the stream counted is the one of the transactions an in-memory ingest keeps
    monkeypatch.undo()
    monkeypatch.setenv("DATASTORY_STREAM_BATCH", str(batch))
    streamed = ingest_stream.check(config.load("data", roots["stream"]), roots["stream"])
    ingest.run(roots["memory"])
    in_memory = profile.of(pd.read_parquet(config.paths(roots["memory"]).transactions))
    pd.testing.assert_frame_equal(streamed.kept.days, in_memory.days)
    pd.testing.assert_frame_equal(streamed.kept.segments, in_memory.segments, check_exact=False, rtol=1e-12)
    assert (streamed.kept.lines, streamed.kept.sales, streamed.kept.negatives, streamed.kept.product_lines) == (
        in_memory.lines, in_memory.sales, in_memory.negatives, in_memory.product_lines)
    assert streamed.quality == io.read_json(config.paths(roots["memory"]).data_quality)


def test_check_data_stops_on_a_bad_line_with_the_same_message_from_both_engines(tmp_path, monkeypatch):
    from datastory import stages

    log = bad_value_log(position=300)
    log.loc[120, "Description"] = "eine\nlange\nBeschreibung"
    messages = refusals_by_engine(lambda engine: make_project(tmp_path / engine, log, engine, on_bad_rows="fail"),
                                  64, monkeypatch, stages.check_data, DataError)
    assert messages[0] == messages[1]
    assert "line 304 (record 302), column 'UnitPrice'" in messages[1] and "'12,5O'" in messages[1]


@pytest.mark.parametrize("case_id", CSV_ERRORS)
def test_check_data_gives_every_malformed_csv_the_same_message_from_both_engines(case_id, tmp_path, monkeypatch):
    from datastory import stages

    messages = refusals_by_engine(case_project(BY_ID[case_id], tmp_path), 3, monkeypatch, stages.check_data)
    assert messages[1] == messages[0]
