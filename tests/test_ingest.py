"""Ingest: clear errors for unusable rows, counted repairs, schema-exact output."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from datastory import config, ingest, io, runner, sample, schema
from datastory.errors import DataError

REPO = Path(__file__).resolve().parents[1]


def raw_rows() -> pd.DataFrame:
    """Six raw lines: one exact duplicate, one missing region, one return, one missing name."""
    return pd.DataFrame({
        "order_id": ["O2", "O1", "O1", "O3", "O3", "O4", "O5"],
        "customer_id": ["C1", "C1", "C1", "C2", "C2", "C3", "C2"],
        "customer_name": ["Müller KG", "Müller KG", "Müller KG", None, None, "Zeta AB", None],
        "timestamp": ["2025-01-05 10:00", "2025-01-02 09:30", "2025-01-02 09:30", "2025-02-01 12:00",
                      "2025-02-01 12:00", "2025-02-03 08:00", "2025-02-10 15:00"],
        "region": ["North", "North", "North", "South", None, None, "South"],
        "product_line": ["Hardware", "Software", "Software", "Hardware", "Services", "Hardware", "Hardware"],
        "quantity": [2, 1, 1, 3, 1, 1, -1],
        "unit_price": [10.0, 50.0, 50.0, 10.0, 100.0, 20.0, 10.0],
        "discount": [0.0, 0.1, 0.1, 0.0, 0.0, 0.5, 0.0],
        "amount": [20.0, 45.0, 45.0, 30.0, 100.0, 10.0, -10.0],
    })


def test_clean_repairs_and_counts():
    tx, q = ingest.clean(raw_rows(), "orders.csv", currency="SEK")
    assert list(tx.columns) == list(schema.TRANSACTIONS)
    assert [str(t) for t in tx.dtypes] == list(schema.TRANSACTIONS.values())
    assert set(q) == set(ingest.QUALITY_KEYS)
    assert q["rows_read"] == 7 and q["rows_kept"] == 6 and q["duplicates_removed"] == 1
    assert q["rows_read"] == q["rows_kept"] + q["duplicates_removed"] + sum(q["rejected"].values())
    assert q["missing_region_filled"] == 2
    assert q["return_lines"] == 1 and tx["is_return"].sum() == 1
    assert (q["period_start"], q["period_end"]) == ("2025-01-02", "2025-02-10")
    assert (q["n_customers"], q["n_orders"], q["currency"]) == (3, 5, "SEK")
    # C2's missing region comes from its other lines; C3 has none known
    assert tx.loc[tx["customer_id"] == "C2", "region"].eq("South").all()
    assert tx.loc[tx["customer_id"] == "C3", "region"].eq(ingest.UNKNOWN).all()
    assert tx.loc[tx["customer_id"] == "C2", "customer_name"].eq("C2").all()
    assert tx["timestamp"].is_monotonic_increasing
    assert tx["order_id"].iloc[0] == "O1"


def test_clean_is_order_independent():
    raw = raw_rows()
    a, qa = ingest.clean(raw, "x")
    b, qb = ingest.clean(raw.iloc[::-1], "x")
    pd.testing.assert_frame_equal(a, b)
    assert qa == qb


def test_region_tie_goes_to_alphabetical_first():
    raw = raw_rows()
    raw.loc[6, "region"] = "East"    # C2 now has East once and South once, plus a missing one
    tx, _ = ingest.clean(raw, "x")
    assert tx.loc[(tx["order_id"] == "O3") & (tx["product_line"] == "Services"), "region"].item() == "East"


def test_missing_column_names_file_column_and_fix():
    with pytest.raises(DataError) as err:
        ingest.clean(raw_rows().drop(columns="amount"), "orders.csv")
    assert err.value.file == "orders.csv" and err.value.column == "amount"
    assert "add a column 'amount'" in str(err.value)


def test_empty_frame_is_refused():
    with pytest.raises(DataError, match="no rows"):
        ingest.clean(raw_rows().iloc[:0], "orders.csv")


def test_bad_timestamp_gives_row_and_column():
    raw = raw_rows()
    raw.loc[3, "timestamp"] = "not a date"
    with pytest.raises(DataError) as err:
        ingest.clean(raw, "orders.csv")
    assert (err.value.row, err.value.column) == (4, "timestamp")


@pytest.mark.parametrize("bad", [np.nan, np.inf, "12,50 EUR"])
def test_non_finite_amount_gives_first_row_and_count(bad):
    raw = raw_rows().astype({"amount": object})
    raw.loc[2, "amount"] = bad
    raw.loc[5, "amount"] = bad
    with pytest.raises(DataError, match="2 row") as err:
        ingest.clean(raw, "orders.csv")
    assert (err.value.row, err.value.column, err.value.file) == (3, "amount", "orders.csv")


def test_missing_customer_id_and_bad_discount_are_refused():
    raw = raw_rows()
    raw.loc[1, "customer_id"] = "  "
    with pytest.raises(DataError) as err:
        ingest.clean(raw, "x")
    assert (err.value.row, err.value.column) == (2, "customer_id")
    raw = raw_rows()
    raw.loc[0, "discount"] = 15.0
    with pytest.raises(DataError, match="outside 0..1"):
        ingest.clean(raw, "x")


def test_duplicates_are_counted_not_silently_dropped():
    raw = pd.concat([raw_rows()] * 3, ignore_index=True)
    tx, q = ingest.clean(raw, "x")
    assert q["duplicates_removed"] == len(raw) - 6
    assert q["rows_kept"] == len(tx) == 6


def test_sample_round_trip_through_read_source_and_save(project):
    (project / "params/data.yaml").write_text(
        "source: sample\ncurrency: EUR\nsample:\n  n_customers: 100\n", encoding="utf-8")
    paths = config.paths(project)
    cfg = config.load("data", project)
    with pytest.raises(DataError, match="datastory sample"):
        ingest.read_source(cfg, paths, project)
    generated = sample.generate(cfg.sample)
    sample.run(project)
    raw = ingest.read_source(cfg, paths, project)
    assert raw.name == "data/raw/sample/transactions.parquet" and raw.first_row == 1
    result = ingest.prepare(raw, cfg)
    tx, q = result.tx, result.quality
    assert q["duplicates_removed"] == generated.duplicated().sum() > 0
    assert q["missing_region_filled"] > 0 and not tx["region"].isna().any()
    ingest.save(result, paths)
    back = io.read_parquet(paths.transactions)   # text comes back Python-backed; prepare keeps Arrow's
    pd.testing.assert_frame_equal(back, tx, check_dtype=False)
    assert [str(t) for t in back.dtypes] == [str(t) for t in tx.dtypes] == list(schema.TRANSACTIONS.values())
    assert io.read_json(paths.data_quality) == q
    rejected = io.read_parquet(paths.rejected)
    assert len(rejected) == q["duplicates_removed"] and set(rejected["disposition"]) == {"duplicate"}
    assert ingest.run(project) == q


def test_save_refuses_an_incomplete_quality_dict(project):
    raw = ingest.Raw(frame=raw_rows().drop(columns="unit_price"), name="x")
    result = ingest.prepare(raw, config.DataParams())
    bad = ingest.Ingested(result.tx, result.rejected, {k: v for k, v in result.quality.items() if k != "rows_read"})
    with pytest.raises(DataError, match="rows_read"):
        ingest.save(bad, config.paths(project))
    assert not config.paths(project).transactions.exists()



def test_missing_months_are_the_gaps_between_the_first_and_last_month():
    months = pd.Series(pd.to_datetime(["2025-05-03", "2025-01-31", "2025-01-02", "2024-11-30"])).dt.to_period("M")
    assert ingest.missing_months(months) == ["2024-12", "2025-02", "2025-03", "2025-04"]
    # text months (as DuckDB gives them), in any order and repeated: the same rule, the same answer
    assert ingest.missing_months(["2025-05", "2024-11", "2025-01", "2025-01"]) == ingest.missing_months(months)
    assert ingest.missing_months(["2025-03"]) == [] and ingest.missing_months([]) == []
    with pytest.raises(ValueError):
        ingest.missing_months(["2025-13"])


def test_quality_record_orders_its_keys_and_counts():
    cfg = config.DataParams(currency="CHF", columns=config.ColumnsParams(order_id=""))
    q = ingest.quality_record(
        cfg, rows_read=np.int64(10), rows_kept=6, duplicates=1, excluded={"z rule": 1, "a rule": 1},
        rejected={"timestamp is empty": 1}, filled=2, cancelled=1, returns=2, empty=["2025-02"],
        start=pd.Timestamp("2025-01-02 09:30"), end=np.datetime64("2025-03-01T23:59"), customers=3, orders=4,
        unmapped={"Spain": 1, "EIRE": 3, "Chile": 1})
    assert tuple(q) == ("source", "on_bad_rows", "rows_read", "rows_kept", "duplicates_removed", "excluded",
                        "rejected", "missing_region_filled", "cancelled_lines", "return_lines", "empty_periods",
                        "period_start", "period_end", "n_customers", "n_orders", "order_ids",
                        "unmapped_countries", "currency")
    assert set(q) == set(ingest.QUALITY_KEYS) and type(q["rows_read"]) is int
    assert list(q["excluded"]) == ["a rule", "z rule"]
    assert list(q["unmapped_countries"].items()) == [("EIRE", 3), ("Chile", 1), ("Spain", 1)]
    assert (q["period_start"], q["period_end"]) == ("2025-01-02", "2025-03-01")
    assert q["order_ids"] == ingest.ORDER_PER_CUSTOMER_TIME and q["currency"] == "CHF"


def test_prepare_builds_its_record_with_quality_record():
    raw = ingest.Raw(frame=raw_rows().drop(columns="unit_price"), name="x")
    q = ingest.prepare(raw, config.DataParams()).quality
    assert tuple(q) == tuple(ingest.quality_record(
        config.DataParams(), rows_read=0, rows_kept=0, duplicates=0, excluded={}, rejected={}, filled=0,
        cancelled=0, returns=0, empty=[], start="2025-01-01", end="2025-01-01", customers=0, orders=0,
        unmapped={}))
    assert q["empty_periods"] == [] and q["period_start"] == "2025-01-02"

# ---------------------------------------------------------------- notebook


@pytest.mark.slow
def test_notebook_runs_on_a_tiny_project(project):
    (project / "params/data.yaml").write_text(
        "source: sample\ncurrency: CHF\nsample:\n  seed: 1\n  n_customers: 200\n", encoding="utf-8")
    sample.run(project)
    shutil.copytree(REPO / "notebooks", project / "notebooks")
    runner.execute("ingest", project)
    paths = config.paths(project)
    quality = io.read_json(paths.data_quality)
    assert quality["currency"] == "CHF" and quality["rows_kept"] == len(io.read_parquet(paths.transactions))


def test_timezone_aware_timestamps_become_utc_and_numeric_ids_text():
    raw = raw_rows()
    raw["timestamp"] = pd.to_datetime(raw["timestamp"]).dt.tz_localize("Europe/Berlin")
    raw["customer_id"] = [1, 1, 1, 2, 2, 3, 2]
    tx, _ = ingest.clean(raw, "x")
    assert str(tx["timestamp"].dtype) == "datetime64[ns]"
    assert tx["timestamp"].min() == pd.Timestamp("2025-01-02 08:30")
    assert set(tx["customer_id"]) == {"1", "2", "3"}
