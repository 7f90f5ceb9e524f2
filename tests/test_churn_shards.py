"""Churn features by customer shards from a Parquet file: the in-memory features_at's frame, bytes and errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from customer_logs import customer_log

from datastory import io, schema
from datastory.churn import shards
from datastory.churn.features import MIN_REPEATERS, features_at
from datastory.errors import DataError, ModelError

LOOKBACK = 365
# Awkward ids: non-ASCII (2, 3 and 4 bytes in UTF-8), case, a quote, a space; code point order != locale order.
ODD_IDS = ["Zoë", "ábc", "a b", "O'Brien", "日本-1", "😀", "B", "a", "Ä"]


def line(order: str, cust: str, ts: str, amount: float, *, ret: bool = False, region: str = "North",
         product_line: str = "Hardware", name: str | None = None) -> tuple:
    return (order, cust, name or f"Name {cust}", pd.Timestamp(ts), region, product_line, -1.0 if ret else 1.0,
            amount, 0.1 if amount > 300 else 0.0, ret)


def frame(rows: list[tuple]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=list(schema.TRANSACTIONS))
    return schema.conform(df.sort_values(["timestamp", "order_id"], kind="stable"), schema.TRANSACTIONS, "log")


def awkward_log() -> pd.DataFrame:
    """customer_log's shapes (one-time buyers, a dominant customer, several orders a day) plus returns,
    a customer gone quiet for a year, customers seen only before the lookback, and odd ids."""
    base = customer_log(n_customers=80, seed=4, one_time_share=0.4, whale_share=0.3)
    extra = []
    for k, cust in enumerate(ODD_IDS):
        days = [30 * k, 30 * k + 3 + k, 400 + 20 * k, 700 - k] if k % 3 else [40 + k]
        for j, d in enumerate(days):
            ts = str(pd.Timestamp("2024-01-05") + pd.Timedelta(days=d, hours=k))
            extra.append(line(f"X{k}-{j}", cust, ts, 50.0 + 10 * j, region=("South", "East")[k % 2],
                              product_line=("Software", "Services")[j % 2]))
    for k in range(30):                                             # gone long before any lookback
        extra.append(line(f"OLD{k}", f"OLD{k:02d}", f"2024-01-{1 + k % 28:02d} 09:00", 80.0))
    extra.append(line("GAP-1", "GAP", "2024-02-01 10:00", 120.0))    # a year's pause, then back
    extra.append(line("GAP-2", "GAP", "2025-06-01 10:00", 130.0, name="Gap Renamed"))
    extra.append(line("GAP-3", "GAP", "2025-06-01 10:00", 140.0, region="East"))
    buys = base[~base["is_return"]].iloc[::9]                      # returns of every ninth line, weeks later
    for i, row in enumerate(buys.itertuples()):
        when = row.timestamp + pd.Timedelta(days=12)
        if when <= pd.Timestamp("2025-12-31"):
            extra.append(line(f"R{i}", row.customer_id, str(when), -row.amount, ret=True, region=row.region,
                              product_line=row.product_line, name=row.customer_name))
    return frame(list(base.itertuples(index=False, name=None)) + extra)


@pytest.fixture(scope="module")
def log_file(tmp_path_factory) -> tuple[pd.DataFrame, object]:
    path = tmp_path_factory.mktemp("shards") / "transactions.parquet"
    io.write_parquet(awkward_log(), path)
    return io.read_parquet(path), path


# per_shard 1: a shard per customer; 13 and 250: several customers a shard, shards without an active customer;
# 10**9: one shard. The day after the data end (2025-12-31) is the scoring date.
CASES = [pytest.param("2025-09-15", 1, marks=pytest.mark.slow), ("2024-02-15", 13), ("2025-01-01", 13), ("2025-09-15", 13), ("2025-12-31", 13),
         ("2025-12-31", 250), ("2025-01-01", 10**9)]


@pytest.mark.parametrize(("cutoff", "per_shard"), CASES)
def test_shards_give_features_at_frame_and_bytes(log_file, tmp_path, cutoff, per_shard):
    tx, path = log_file
    expected = features_at(tx, cutoff, LOOKBACK)
    got = shards.features_from_file(path, cutoff, LOOKBACK, per_shard=per_shard)
    pd.testing.assert_frame_equal(got, expected, check_exact=True)
    rows = shards.features_file(path, cutoff, LOOKBACK, tmp_path / "shards.parquet", per_shard=per_shard)
    io.write_parquet(expected, tmp_path / "memory.parquet")
    assert rows == len(expected)
    assert (tmp_path / "shards.parquet").read_bytes() == (tmp_path / "memory.parquet").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["memory.parquet", "shards.parquet"]


def test_tiny_budget_makes_many_shards_some_empty_and_one_of_a_single_customer(log_file):
    tx, path = log_file
    cutoff = pd.Timestamp("2025-09-15")
    past = tx[tx["timestamp"] < cutoff]
    per_customer = past.groupby("customer_id").size()
    bounds = shards.shard_bounds(path, cutoff, per_shard=13)
    k = shards.shard_count(len(past), 13)
    assert 1 < len(bounds) <= k
    ids = sorted(per_customer.index)
    assert [lo for lo, _ in bounds] == sorted(lo for lo, _ in bounds) and bounds[0][0] == ids[0]
    assert bounds[-1][1] == ids[-1]
    # contiguous and covering: every customer in exactly one shard, each shard's lines within the budget
    # unless one customer alone exceeds it (the dominant one)
    owner = [sum(lo <= c <= hi for lo, hi in bounds) for c in ids]
    assert owner == [1] * len(ids)
    assert any(lo == hi for lo, hi in bounds), "no shard of a single customer"
    assert per_customer["WHALE"] > 5 * 13          # the dominant customer is not split, its shard is larger
    for lo, hi in bounds:
        inside = per_customer[[c for c in ids if lo <= c <= hi]]
        assert inside.sum() <= len(past) / k + inside.max()
    active = set(features_at(tx, cutoff, LOOKBACK)["customer_id"])
    assert any(not any(lo <= c <= hi for c in active) for lo, hi in bounds), "no shard without active customers"
    # one shard per customer: the ids' code point order (Python's) is DuckDB's order
    assert [lo for lo, _ in shards.shard_bounds(path, cutoff, per_shard=1)] == ids


def test_split_cuts_the_lines_before_the_cutoff_into_shards_in_file_order(log_file, tmp_path):
    tx, path = log_file
    cutoff = pd.Timestamp("2025-09-15")
    bounds = shards.shard_bounds(path, cutoff, per_shard=13)
    files = shards._split(path, cutoff, bounds, tmp_path / "lines", rows=7)    # a customer's lines in many reads
    past = tx[tx["timestamp"] < cutoff]
    assert len(files) == len(bounds) > 10
    for (lo, hi), file in zip(bounds, files, strict=True):
        mine = past[past["customer_id"].map(lambda c, lo=lo, hi=hi: lo <= c <= hi)].reset_index(drop=True)
        assert len(mine) > 0
        pd.testing.assert_frame_equal(shards._read_shard(file), mine, check_exact=True)
    # Python's code point order (the ids' shard) is the order DuckDB cut the bounds in, odd ids included
    ids = np.array(sorted(ODD_IDS))
    assert (shards.shard_of(pa.array(ids), ids) == np.arange(len(ids))).all()


@pytest.fixture
def reads(monkeypatch) -> list[int]:
    """One entry per batched read of a Parquet file (ParquetFile.iter_batches) from here on."""
    calls: list[int] = []
    real = pq.ParquetFile.iter_batches

    def counted(self, *args, **kwargs):
        calls.append(1)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(pq.ParquetFile, "iter_batches", counted)
    return calls


def test_the_file_is_read_once_for_the_split_whatever_the_shards(log_file, reads):
    """A time-sorted file has every customer in every row group: reading it once per shard grew with the lines
    squared. The split reads it once, in batches."""
    _, path = log_file
    for per_shard in (13, 250):
        reads.clear()
        shards.features_from_file(path, "2025-09-15", LOOKBACK, per_shard=per_shard)
        assert len(shards.shard_bounds(path, "2025-09-15", per_shard=per_shard)) > 1
        assert len(reads) == 1, per_shard


@pytest.mark.parametrize("per_shard", [13, 10**9])
def test_several_cutoffs_from_one_split_give_each_cutoffs_frame(log_file, reads, per_shard):
    """The churn stage's cutoffs (training, validation, scoring, comparison), out of order and one repeated,
    from one read of the file: each frame is features_at's at its cutoff."""
    tx, path = log_file
    cutoffs = ["2025-01-01", "2024-02-15", "2025-12-31", "2025-09-15", "2025-01-01"]
    got = shards.features_many_from_file(path, cutoffs, LOOKBACK, per_shard=per_shard)
    assert len(reads) == 1
    for cutoff, frame in zip(cutoffs, got, strict=True):
        pd.testing.assert_frame_equal(frame, features_at(tx, cutoff, LOOKBACK), check_exact=True)
    assert shards.features_many_from_file(path, [], LOOKBACK) == []


def test_several_cutoffs_check_each_cutoff_with_features_at_message(log_file, tmp_path):
    tx, path = log_file
    with pytest.raises(ModelError) as expected:
        features_at(tx, "2019-01-01", LOOKBACK)
    with pytest.raises(ModelError) as got:
        shards.features_many_from_file(path, ["2025-01-01", "2019-01-01"], LOOKBACK)
    assert str(got.value) == str(expected.value) and "2019-01-01" in str(got.value)


def test_fixed_one_hot_lists_are_used_for_every_shard(log_file):
    tx, path = log_file
    lines, regions = ["Zebra", "Hardware", "Software"], ["West", "North"]
    expected = features_at(tx, "2025-09-15", 90, product_lines=lines, regions=regions)
    got = shards.features_from_file(path, "2025-09-15", 90, product_lines=lines, regions=regions, per_shard=20)
    pd.testing.assert_frame_equal(got, expected, check_exact=True)
    assert [c for c in got.columns if c.startswith(("pl_", "region_"))] == [
        "pl_Zebra", "pl_Hardware", "pl_Software", "region_West", "region_North"]


def repeaters_log(n_repeat: int, n_once: int) -> pd.DataFrame:
    rows = []
    for i in range(n_repeat):
        rows.append(line(f"A{i}", f"R{i:03d}", "2025-03-01 10:00", 100.0))
        rows.append(line(f"B{i}", f"R{i:03d}", str(pd.Timestamp("2025-03-01 10:00") + pd.Timedelta(days=5 + i)),
                         90.0))
    for i in range(n_once):
        rows.append(line(f"C{i}", f"S{i:03d}", "2025-04-01 10:00", 70.0))
    return frame(rows)


@pytest.mark.parametrize("n_repeat", [MIN_REPEATERS - 1, MIN_REPEATERS + 3])
def test_repeat_delay_is_one_median_over_all_shards(tmp_path, n_repeat):
    tx = repeaters_log(n_repeat, 5)
    io.write_parquet(tx, tmp_path / "tx.parquet")
    expected = features_at(io.read_parquet(tmp_path / "tx.parquet"), "2025-04-02", LOOKBACK)
    bounds = shards.shard_bounds(tmp_path / "tx.parquet", "2025-04-02", per_shard=4)
    assert len(bounds) >= 5        # every shard has fewer than MIN_REPEATERS repeaters
    got = shards.features_from_file(tmp_path / "tx.parquet", "2025-04-02", LOOKBACK, per_shard=4)
    pd.testing.assert_frame_equal(got, expected, check_exact=True)
    delay = got["repeat_delay_days"].unique()
    assert len(delay) == 1
    if n_repeat < MIN_REPEATERS:
        assert np.isnan(delay[0])
    else:
        assert delay[0] == np.median(5 + np.arange(n_repeat))


def same_error(tx: pd.DataFrame, path, cutoff, lookback: int, tmp_path) -> None:
    with pytest.raises((DataError, ModelError)) as memory:
        features_at(tx, cutoff, lookback)
    with pytest.raises(type(memory.value)) as by_shards:
        shards.features_file(path, cutoff, lookback, tmp_path / "out.parquet", per_shard=5)
    assert str(by_shards.value) == str(memory.value)
    assert not (tmp_path / "out.parquet").exists()
    assert list(tmp_path.glob(".out.*")) == []


@pytest.mark.parametrize(("cutoff", "lookback"), [
    ("2024-01-01", LOOKBACK),      # no history before it (the span of the whole file, not of a shard)
    ("2026-01-02", LOOKBACK),      # after the data end
    ("2030-05-05", LOOKBACK),
    ("not a date", LOOKBACK),
    (None, LOOKBACK),
    ("2025-06-01", 0),
])
def test_bad_cutoff_or_lookback_gives_features_at_error(log_file, tmp_path, cutoff, lookback):
    tx, path = log_file
    same_error(tx, path, cutoff, lookback, tmp_path)


def test_span_is_the_whole_file_not_a_shard(log_file):
    tx, path = log_file
    # The day after the data end is a valid cutoff although most shards' lines end long before it.
    end = tx["timestamp"].max().normalize() + pd.Timedelta(days=1)
    got = shards.features_from_file(path, end, 30, per_shard=3)
    pd.testing.assert_frame_equal(got, features_at(tx, end, 30), check_exact=True)


def test_bad_files_give_features_at_error(tmp_path):
    tx = repeaters_log(3, 2)
    cases = {
        "missing": tx.drop(columns=["region"]),
        "empty": tx.iloc[:0],
        "text_time": tx.assign(timestamp=tx["timestamp"].astype(str)),
    }
    for name, bad in cases.items():
        folder = tmp_path / name
        folder.mkdir()
        io.write_parquet(bad, folder / "tx.parquet")
        same_error(io.read_parquet(folder / "tx.parquet"), folder / "tx.parquet", "2025-04-01", LOOKBACK, folder)


def test_unreadable_file_is_a_data_error(tmp_path):
    (tmp_path / "tx.parquet").write_text("not parquet")
    for path in (tmp_path / "tx.parquet", tmp_path / "none.parquet"):
        with pytest.raises(DataError, match="cannot read the Parquet file"):
            shards.features_from_file(path, "2025-04-01", LOOKBACK)


def test_existing_output_is_kept_when_the_run_fails(log_file, tmp_path):
    _, path = log_file
    (tmp_path / "out.parquet").write_bytes(b"previous")
    with pytest.raises(ModelError):
        shards.features_file(path, "2019-01-01", LOOKBACK, tmp_path / "out.parquet")
    assert (tmp_path / "out.parquet").read_bytes() == b"previous"


def test_shard_count():
    assert [shards.shard_count(n, 10) for n in (0, 1, 10, 11, 95)] == [1, 1, 1, 2, 10]
    with pytest.raises(ValueError, match="rows per shard"):
        shards.shard_count(10, 0)


def test_shard_budget_comes_from_the_module_constant_or_the_environment(log_file, monkeypatch):
    tx, path = log_file
    lines = int((tx["timestamp"] < pd.Timestamp("2025-01-01")).sum())
    assert len(shards.shard_bounds(path, "2025-01-01")) == shards.shard_count(lines, shards.ROWS_PER_SHARD) == 1
    monkeypatch.setenv("DATASTORY_CHURN_SHARD_ROWS", "40")
    assert shards.rows_per_shard() == 40
    assert 1 < len(shards.shard_bounds(path, "2025-01-01")) <= shards.shard_count(lines, 40)
