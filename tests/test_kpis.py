"""KPIs: totals agree with regions, definitions hold on hand-checked rows, tiles use complete periods."""

from __future__ import annotations

import shutil
from fractions import Fraction

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from conftest import REPO

from datastory import bridge, config, ingest, io, kpis, runner, sample, schema
from datastory.errors import DataError


def tx_rows() -> pd.DataFrame:
    """Two regions over Jan-Mar 2025; C2 returns goods in February; no sales in North in February."""
    rows = [  # order, customer, day, region, line, qty, amount
        ("O1", "C1", "2025-01-03", "North", "Hardware", 2, 100.0),
        ("O1", "C1", "2025-01-03", "North", "Software", 1, 50.0),
        ("O2", "C2", "2025-01-10", "South", "Hardware", 1, 200.0),
        ("O3", "C2", "2025-02-11", "South", "Hardware", 1, 300.0),
        ("R1", "C2", "2025-02-20", "South", "Hardware", -1, -60.0),
        ("O4", "C3", "2025-03-01", "South", "Services", 1, 400.0),
        ("O5", "C1", "2025-03-31", "North", "Hardware", 1, 80.0),
    ]
    df = pd.DataFrame(rows, columns=["order_id", "customer_id", "timestamp", "region", "product_line",
                                     "quantity", "amount"])
    df["timestamp"] = pd.to_datetime(df["timestamp"])
    df["customer_name"] = df["customer_id"]
    df["discount"] = 0.0
    df["is_return"] = df["amount"] < 0
    return schema.conform(df, schema.TRANSACTIONS, "transactions")


def _row(k: pd.DataFrame, region: str, period: str) -> pd.Series:
    return k[(k["region"] == region) & (k["period"] == pd.Timestamp(period))].squeeze()


def test_monthly_definitions_on_hand_checked_rows():
    k = kpis.compute(tx_rows(), "M")
    assert list(k.columns) == list(schema.KPIS)
    assert [str(t) for t in k.dtypes] == list(schema.KPIS.values())
    assert len(k) == 3 * 3                                   # All, North, South x Jan..Mar
    feb = _row(k, "South", "2025-02-01")
    assert feb["revenue"] == 240.0 and feb["orders"] == 1 and feb["active_customers"] == 1
    assert feb["avg_order_value"] == 300.0 and feb["return_rate"] == pytest.approx(0.2)
    assert feb["new_customers"] == 0
    north_feb = _row(k, "North", "2025-02-01")               # a gap month is present, all zeros
    assert north_feb["revenue"] == 0 and north_feb["orders"] == 0 and north_feb["avg_order_value"] == 0
    jan = _row(k, schema.ALL, "2025-01-01")
    assert jan["orders"] == 2 and jan["new_customers"] == 2 and jan["avg_order_value"] == 175.0
    assert list(k[["region", "period"]].itertuples(index=False)) == \
        sorted(k[["region", "period"]].itertuples(index=False))


def test_quarterly_is_one_period():
    k = kpis.compute(tx_rows(), "Q")
    total = _row(k, schema.ALL, "2025-01-01")
    assert len(k) == 3 and total["revenue"] == 1070.0 and total["orders"] == 5
    assert total["active_customers"] == 3 and total["new_customers"] == 3


@pytest.fixture(scope="module")
def sample_tx() -> pd.DataFrame:
    raw = sample.generate(config.SampleParams(n_customers=300))
    return ingest.clean(raw, "sample")[0]


@pytest.mark.parametrize("period", ["M", "Q"])
def test_totals_equal_sum_over_regions(sample_tx, period):
    k = kpis.compute(sample_tx, period)
    regions = k[k["region"] != schema.ALL].groupby("period")[["revenue", "orders", "new_customers"]].sum()
    total = k[k["region"] == schema.ALL].set_index("period")[["revenue", "orders", "new_customers"]]
    pd.testing.assert_frame_equal(regions, total, check_names=False)
    assert total["new_customers"].sum() == sample_tx.loc[sample_tx["amount"] > 0, "customer_id"].nunique()
    assert total["revenue"].sum() == pytest.approx(sample_tx["amount"].sum())
    assert (k.groupby("region").size() == k["period"].nunique()).all()


def test_compute_refuses_bad_input():
    with pytest.raises(DataError, match="unknown period 'W'"):
        kpis.compute(tx_rows(), "W")
    with pytest.raises(DataError, match="no transactions"):
        kpis.compute(tx_rows().iloc[:0], "M")
    with pytest.raises(DataError, match="missing column"):
        kpis.compute(tx_rows().drop(columns="order_id"), "M")


def test_latest_change_uses_complete_periods():
    k = kpis.compute(tx_rows(), "M")
    full = kpis.latest_change(k, "South", data_end="2025-03-31")
    assert (full["period"], full["previous_period"], full["label"]) == ("2025-03-01", "2025-02-01", "2025-03")
    rev = full["kpis"]["revenue"]
    assert (rev["value"], rev["previous"]) == (400.0, 240.0)
    assert rev["change"] == pytest.approx(400 / 240 - 1)
    partial = kpis.latest_change(k, "South", data_end="2025-03-30")
    assert (partial["period"], partial["previous_period"]) == ("2025-02-01", "2025-01-01")
    assert kpis.latest_change(k, "North", data_end="2025-03-31")["kpis"]["orders"]["change"] is None
    assert kpis.latest_change(k, schema.ALL)["period"] == "2025-03-01"


def test_latest_change_quarterly_label(sample_tx):
    k = kpis.compute(sample_tx, "Q")
    out = kpis.latest_change(k, schema.ALL, data_end=sample_tx["timestamp"].max())
    assert out["label"].startswith("20") and "-Q" in out["label"]
    end = sample_tx["timestamp"].max()
    assert pd.Timestamp(out["period"]) + pd.offsets.QuarterEnd(0) <= end.normalize()


def test_latest_change_refuses_bad_input():
    k = kpis.compute(tx_rows(), "M")
    with pytest.raises(DataError, match="no KPIs for region 'Mars'"):
        kpis.latest_change(k, "Mars")
    with pytest.raises(DataError, match="no KPI rows"):
        kpis.latest_change(k.iloc[:0], schema.ALL)
    with pytest.raises(DataError, match="need two complete periods"):
        kpis.latest_change(kpis.compute(tx_rows(), "Q"), schema.ALL)


# ---------------------------------------------------------------- notebook


@pytest.mark.slow
def test_notebooks_01_and_02_run_on_a_tiny_project(project):
    (project / "params/data.yaml").write_text(
        "source: sample\ncurrency: EUR\nsample:\n  n_customers: 200\n", encoding="utf-8")
    (project / "params/kpis.yaml").write_text("period: Q\n", encoding="utf-8")
    sample.run(project)
    shutil.copytree(REPO / "notebooks", project / "notebooks")
    runner.execute("ingest", project)
    runner.execute("kpis", project)
    paths = config.paths(project)
    table = io.read_parquet(paths.kpis)
    tx = io.read_parquet(paths.transactions)
    pd.testing.assert_frame_equal(table, kpis.compute(tx, "Q"))
    assert (table["period"].dt.month % 3 == 1).all()
    end = io.read_json(paths.data_quality)["period_end"]
    steps = io.read_parquet(paths.bridge)
    pd.testing.assert_frame_equal(steps, bridge.compute(tx, "Q", end))
    pd.testing.assert_frame_equal(io.read_parquet(paths.movers), bridge.movers(tx, "Q", end, top=5))
    assert not steps.empty and set(steps["kind"]) == {"total", "step", "pvm"}


def test_latest_change_ignores_periods_after_the_data_end():
    k = kpis.compute(tx_rows(), "M")
    out = kpis.latest_change(k, schema.ALL, data_end=pd.Timestamp("2025-02-28 17:30"))
    assert (out["period"], out["previous_period"], out["freq"]) == ("2025-02-01", "2025-01-01", "M")


def test_active_counts_distinct_customers_at_each_grain():
    a = kpis.active(tx_rows()).set_index(["grain", "region", "period"])["active_customers"]
    monthly = kpis.compute(tx_rows(), "M").set_index(["region", "period"])["active_customers"]
    assert (a.loc["M"].sort_index() == monthly.sort_index()).all()           # the KPI table's own figure
    q1 = pd.Timestamp("2025-01-01")
    assert a.loc[("Q", schema.ALL, q1)] == 3 < a.loc["M"].xs(schema.ALL).sum()   # C1 in two months counts once
    assert a.loc[("Q", "North", q1)] == 1 and a.loc[("Y", "South", q1)] == 2
    assert a.loc[("Q", schema.ALL, q1)] == kpis.compute(tx_rows(), "Q").set_index("region").loc[
        schema.ALL, "active_customers"]


def test_active_refuses_bad_input():
    with pytest.raises(DataError, match="grain"):
        kpis.active(tx_rows(), ("W",))
    with pytest.raises(DataError, match="no transactions"):
        kpis.active(tx_rows().iloc[0:0])


def test_period_helpers_are_public():
    assert kpis.check_period("Q") == "QS" and kpis.infer_period(pd.DatetimeIndex(["2025-01-01", "2025-04-01"])) == "Q"
    assert kpis.infer_period(pd.DatetimeIndex(["2025-01-01", "2025-02-01"])) == "M"
    with pytest.raises(DataError, match="unknown period"):
        kpis.check_period("Y")


@pytest.mark.parametrize("period", ["M", "Q"])
@pytest.mark.parametrize("rows", [3, 997, 1_000_000])
def test_compute_file_gives_the_same_bytes_a_period_at_a_time(sample_tx, period, rows, tmp_path):
    """Read a few rows at a time (periods straddle the reads), the KPI table is the in-memory one, byte for byte;
    customers first seen in one read are never new again in a later one."""
    tx = sample_tx.sort_values(["timestamp", "order_id"], kind="stable").reset_index(drop=True)
    path = io.write_parquet(tx, tmp_path / "transactions.parquet")
    expected = kpis.compute(tx, period)
    got = kpis.compute_file(path, period, rows=rows)
    pd.testing.assert_frame_equal(got, expected)
    assert io.write_parquet(got, tmp_path / "a.parquet").read_bytes() == \
        io.write_parquet(expected, tmp_path / "b.parquet").read_bytes()
    assert got["new_customers"].sum() == 2 * tx.loc[tx["amount"] > 0, "customer_id"].nunique()


@pytest.mark.parametrize("aligned", [True, False])
def test_compute_file_counts_each_period_once_whatever_the_reads(sample_tx, aligned, tmp_path, monkeypatch):
    """Reads that begin exactly where a period begins, or that hold several whole periods: each period's orders
    are counted once, when it closes (its lines never held together), and the table is the in-memory one."""
    tx = sample_tx.sort_values(["timestamp", "order_id"], kind="stable").reset_index(drop=True)
    path = io.write_parquet(tx, tmp_path / "transactions.parquet")
    months = tx["timestamp"].dt.to_period("M")
    first_month = int((months == months.iloc[0]).sum())
    rows = first_month if aligned else 3 * len(tx) // months.nunique()   # aligned: the 2nd read starts a month
    assert not aligned or months.iloc[rows] != months.iloc[rows - 1]
    closed: list[object] = []
    real = kpis.Orders.close
    monkeypatch.setattr(kpis.Orders, "close", lambda self, labels: (self.ids and closed.append(self.period))
                        or real(self, labels))
    got = kpis.compute_file(path, "M", rows=rows)
    pd.testing.assert_frame_equal(got, kpis.compute(tx, "M"))
    assert len(closed) == len(set(closed)) == months[tx["amount"] > 0].nunique()


def _orders_in_batches(tx: pd.DataFrame, period: str, cuts: list[int]) -> pd.Series:
    """kpis.Orders over `tx` (in time order) read in batches ending at `cuts`."""
    labels: dict[str, int] = {}
    orders = kpis.Orders()
    for a, b in zip([0, *cuts], [*cuts, len(tx)], strict=True):
        part = tx.iloc[a:b]
        if not len(part):
            continue
        region = kpis.region_codes(part["region"], labels)
        pvals, bounds = kpis.period_bounds(part["timestamp"].to_numpy(dtype="datetime64[ns]"), period)
        orders.add(pa.array(part["order_id"], from_pandas=True), region,
                   part["amount"].to_numpy(dtype="float64") > 0, pvals, bounds, list(labels))
    return orders.table(list(labels)).sort_index()


@pytest.mark.parametrize("ordered_ids", [True, False])
def test_orders_counted_batch_by_batch_are_the_in_memory_counts_wherever_the_batches_end(ordered_ids):
    """Distinct orders with a sale per (region, period), ALL included, as `_sums` counts them: an order's lines
    around a return line, in two regions, back after other orders (hashed then), a missing order id, a period of
    returns only; split into batches at every place, and at random places."""
    rng = np.random.default_rng(5)
    n = 400
    order = np.sort(rng.integers(0, 120, n)) if ordered_ids else rng.integers(0, 60, n)
    ids = pd.Series([f"O{k}" for k in order], dtype="string[pyarrow]")
    ids[rng.random(n) < 0.03] = None
    tx = pd.DataFrame({
        "order_id": ids,
        "timestamp": pd.Timestamp("2025-01-01") + pd.to_timedelta(np.sort(rng.integers(0, 150 * 86400, n)), "s"),
        "region": pd.Series(rng.choice(["North", "South", None], n, p=[0.5, 0.4, 0.1]), dtype="string[pyarrow]"),
        "amount": np.where(rng.random(n) < 0.15, -1.0, 1.0) * rng.integers(1, 50, n),
    })
    march = tx["timestamp"].dt.month == 3
    tx.loc[march, "amount"] = -tx.loc[march, "amount"].abs()          # March: returns only
    for period in ("M", "Q"):
        memory = kpis._sums(tx.assign(customer_id="C1"), period)["orders"]
        want = memory[memory > 0].astype("int64").sort_index()
        for cuts in ([], *([k] for k in range(1, n)), sorted(rng.choice(np.arange(1, n), 40, replace=False).tolist()),
                     list(range(1, n))):
            got = _orders_in_batches(tx, period, cuts)
            assert got.to_dict() == want.to_dict(), (period, cuts[:5])


def test_compute_file_on_hand_checked_rows_and_refusals(tmp_path):
    path = io.write_parquet(tx_rows(), tmp_path / "tx.parquet")
    pd.testing.assert_frame_equal(kpis.compute_file(path, "M", rows=2), kpis.compute(tx_rows(), "M"))
    shuffled = io.write_parquet(tx_rows().iloc[::-1], tmp_path / "shuffled.parquet")
    with pytest.raises(DataError, match="not in time order"):
        kpis.compute_file(shuffled, "M", rows=2)
    with pytest.raises(DataError, match="unknown period"):
        kpis.compute_file(path, "W")


def test_compute_file_places_a_first_sale_in_two_regions_at_one_time_as_compute_does(tmp_path):
    """A customer's first sale is two lines at the very same time in two regions: the order_id decides where
    they are new (the lower one, O1 in South, though the North line comes first in the file); lines without a
    region count for the company only; a customer back in a later read of the file is not new again."""
    rows = [  # order, customer, time, region, amount
        ("O2", "C1", "2025-01-03 10:00", "North", 100.0),
        ("O1", "C1", "2025-01-03 10:00", "South", 50.0),
        ("O3", "C2", "2025-01-04 09:00", None, 70.0),
        ("O4", "C2", "2025-01-04 09:00", "North", 10.0),
        ("O5", "C3", "2025-01-05 09:00", "North", -5.0),
        ("O6", "C3", "2025-02-05 09:00", "South", 30.0),
        ("O7", "C1", "2025-02-06 09:00", "North", 20.0),
        ("O8", "C2", "2025-02-07 09:00", "South", 20.0),
    ]
    df = pd.DataFrame(rows, columns=["order_id", "customer_id", "timestamp", "region", "amount"])
    df["timestamp"] = pd.to_datetime(df["timestamp"])
    df = df.assign(customer_name=df["customer_id"], product_line="Hardware", quantity=1.0, discount=0.0,
                   is_return=df["amount"] < 0)
    tx = schema.conform(df, schema.TRANSACTIONS, "transactions")
    path = io.write_parquet(tx, tmp_path / "tx.parquet")
    expected = kpis.compute(tx, "M")
    new = expected.set_index(["region", "period"])["new_customers"]
    assert new[("South", pd.Timestamp("2025-01-01"))] == 1 and new[("North", pd.Timestamp("2025-01-01"))] == 0
    assert new[(schema.ALL, pd.Timestamp("2025-01-01"))] == 2 and new[(schema.ALL, pd.Timestamp("2025-02-01"))] == 1
    for rows_ in (1, 3, 100):
        pd.testing.assert_frame_equal(kpis.compute_file(path, "M", rows=rows_), expected)


@pytest.mark.parametrize("period", ["M", "Q"])
def test_starts_are_the_periods_first_days(period):
    ts = pd.Series(pd.to_datetime(["1969-11-30 23:59", "2024-02-29 12:00", "2025-12-31 23:59:59", None,
                                   "2025-07-01"], format="ISO8601"))
    expected = ts.dt.to_period(period).dt.start_time.to_numpy()
    got = kpis.starts(ts, period)
    assert got.dtype == "datetime64[ns]"
    assert (pd.isna(got) == pd.isna(expected)).all() and (got[~pd.isna(got)] == expected[~pd.isna(expected)]).all()
    # in time order (cut where each period begins): the same days, a nanosecond either side of a period's start
    edge = pd.Timestamp("2025-04-01")
    near = pd.Series(pd.to_datetime(["2024-12-31 23:59:59.999999999", "2025-01-01", edge - pd.Timedelta(1, "ns"),
                                     edge, edge, edge + pd.Timedelta(1, "ns"), "2025-06-30 23:59:59.999999999",
                                     "2027-01-15"], format="ISO8601"))
    for times in (near, pd.concat([ts.dropna().sort_values(), near], ignore_index=True).sort_values()):
        assert times.is_monotonic_increasing
        assert kpis.starts(times, period).tolist() == times.dt.to_period(period).dt.start_time.to_numpy().tolist()


def test_new_customers_are_counted_at_each_customers_first_sale_to_the_nanosecond(tmp_path):
    """Lines that are not sales (a return, a missing amount) make nobody new; times keep their nanoseconds (a
    first sale late on a period's last day stays in it, new and active); each customer once, in their first
    sale's region."""
    extra = tx_rows().iloc[[0, 0, 0]].assign(
        order_id=["X1", "X2", "X3"], customer_id=["C4", "C5", "C5"], amount=[-10.0, float("nan"), 5.0],
        timestamp=pd.to_datetime(["2024-12-01", "2024-12-02", "2025-01-31 23:59:59.999999999"], format="ISO8601"))
    tx = pd.concat([extra.iloc[:2], tx_rows(), extra.iloc[2:]]).sort_values("timestamp", kind="stable")
    history = kpis.file_history(io.write_parquet(schema.conform(tx, schema.TRANSACTIONS, "transactions"),
                                                 tmp_path / "tx.parquet"))
    new, jan, mar = history.new, pd.Timestamp("2025-01-01"), pd.Timestamp("2025-03-01")
    assert history.active["M"][("North", jan)] == 2      # C5 active in January too (not rounded into February)
    assert new["M"].to_dict() == {("North", jan): 2, ("South", jan): 1, ("South", mar): 1,
                                  (schema.ALL, jan): 3, (schema.ALL, mar): 1}     # C1, C5 North; C2; C3
    assert new["Q"].to_dict() == {("North", jan): 2, ("South", jan): 2, (schema.ALL, jan): 4}
    assert new["Y"].to_dict() == {("North", jan): 2, ("South", jan): 2, (schema.ALL, jan): 4}


def test_a_sale_without_a_customer_id_makes_nobody_new_or_active_either_way(tmp_path):
    """Lines without a customer id (not from ingest, which names every customer): their money and orders
    count, and they make no customer active or new, in memory as from the file."""
    extra = tx_rows().iloc[[0, 2]].assign(order_id=["X1", "X2"], customer_id=pd.array([None, None], dtype="string"),
                                          amount=[7.0, 9.0])
    tx = schema.conform(pd.concat([tx_rows(), extra]).sort_values("timestamp", kind="stable").reset_index(drop=True),
                        schema.TRANSACTIONS, "transactions")
    memory = kpis.compute(tx, "M")
    jan = memory[memory["period"] == pd.Timestamp("2025-01-01")].set_index("region")
    assert jan.loc[schema.ALL, ["orders", "active_customers", "new_customers"]].tolist() == [4, 2, 2]
    path = io.write_parquet(tx, tmp_path / "tx.parquet")
    pd.testing.assert_frame_equal(kpis.compute_file(path, "M", rows=3), memory)


def test_compute_file_with_a_period_of_returns_only(tmp_path):
    tx = tx_rows()
    tx = tx[~((tx["timestamp"].dt.month == 2) & (tx["amount"] > 0))].reset_index(drop=True)   # February: a return
    path = io.write_parquet(tx, tmp_path / "tx.parquet")
    expected = kpis.compute(tx, "M")
    assert expected.loc[expected["period"] == pd.Timestamp("2025-02-01"), "active_customers"].sum() == 0
    for rows in (1, 2, 100):
        pd.testing.assert_frame_equal(kpis.compute_file(path, "M", rows=rows), expected)


@pytest.mark.parametrize("dtype", ["string[pyarrow]", object])
def test_run_codes_are_pd_factorize(dtype):
    """Codes and distinct values as pd.factorize gives them (a missing id is -1, and two missing ids in a row are
    still missing), hashing only the runs' first lines."""
    values = pd.Series(["b", "b", "a", None, None, "b", "a", "a", "c", "c"], dtype=dtype)
    codes, uniques = kpis.run_codes(values)
    want_codes, want_uniques = pd.factorize(values)
    assert codes.tolist() == want_codes.tolist() == [0, 0, 1, -1, -1, 0, 1, 1, 2, 2]
    assert list(uniques) == list(want_uniques) == ["b", "a", "c"]
    assert kpis.run_codes(values.iloc[:0])[0].tolist() == []
    assert kpis.run_codes(values.iloc[:1])[0].tolist() == [0]


def test_spread_gives_each_run_its_value_as_a_running_count_would():
    rng = np.random.default_rng(3)
    for n in (1, 2, 7, 1000):
        starts = rng.random(n) < 0.3
        starts[0] = True
        values = rng.integers(-5, 5, int(starts.sum()))
        assert kpis.spread(values, starts).tolist() == values[np.cumsum(starts) - 1].tolist()
    assert kpis.spread(np.array([True, False]), np.array([True, False, False, True])).tolist() == \
        [True, True, True, False]
    assert kpis.spread(np.array([], dtype="int64"), np.array([], dtype=bool)).tolist() == []


def test_ordered_ids_are_numbered_as_they_come_and_others_hashed(monkeypatch):
    """Runs whose values never decrease (by length, then bytes) are each a new value unless they repeat the run
    before: the codes are pd.factorize's without hashing; a value back later, a missing one or text out of that
    order falls back to hashing."""
    assert kpis.ordered(pa.array(["O8", "O9", "O10", "O11", "P11", "O100"]))
    assert kpis.ordered(pa.array(["O2", "O2", "O10"]))         # a run back again straight away
    for bad in (["O9", "O10", "O9"], ["O1", None, "O2"], ["O10", "O9"], ["b", "a"]):
        assert not kpis.ordered(pa.array(bad))
    assert kpis.ordered(pa.array([], type=pa.string())) and kpis.ordered(pa.array(["x"]))
    assert not kpis.ordered(pa.array([1, 2]))
    factorize = pd.factorize
    for ids, hashed in ((["536365", "536365", "536366", "536367", "536367", "536370"], False),   # increasing
                        (["536365", "536366", "536366", "536366", "536366", "536370"], False),   # an order's lines in a row
                        (["536365", "536366", "536365", "536367", None, "536367"], True)):      # not: hashed
        values = pd.Series(ids, dtype="string[pyarrow]")
        want_codes, want_uniques = factorize(values)
        calls = []
        monkeypatch.setattr(pd, "factorize", lambda *a, c=calls, **k: c.append(1) or factorize(*a, **k))
        codes, uniques = kpis.run_codes(values)
        monkeypatch.setattr(pd, "factorize", factorize)
        assert codes.tolist() == want_codes.tolist() and list(uniques) == list(want_uniques)
        assert bool(calls) == hashed


def test_money_is_added_exactly_in_millionths_whatever_the_parts():
    """to_units: whole millionths (a price of 0.001 kept, a missing amount nothing); exact_sums: the exact sums of
    the parts add up to the exact sum of the whole, also where float64 alone would round (values near 2**60);
    money_of: the float nearest to each sum."""
    assert kpis.to_units(np.array([0.001, 0.87, -12.34, np.nan, 3 * 0.29])).tolist() == \
        [1000.0, 870000.0, -12340000.0, 0.0, 870000.0]
    rng = np.random.default_rng(7)
    codes = rng.integers(0, 5, 10_000)
    units = kpis.to_units(np.array([round(x, int(d)) for x, d in zip(rng.normal(0, 500, 10_000),
                                                                    rng.integers(0, 7, 10_000), strict=True)]))
    units[:3] = [2.0 ** 60, 2.0 ** 60 + 2 ** 10, -(2.0 ** 59)]           # whole floats beyond 2**53
    want = [sum(int(u) for u in units[codes == k]) for k in range(5)]
    assert kpis.exact_sums(codes, units, 5).tolist() == want
    cut = 3_333
    parts = kpis.exact_sums(codes[:cut], units[:cut], 5) + kpis.exact_sums(codes[cut:], units[cut:], 5)
    assert parts.tolist() == want
    assert kpis.exact_sums(np.array([], dtype="int64"), np.array([]), 2).tolist() == [0, 0]
    sums = [1, -999_999, 10 ** 6, 3 * 10 ** 22 + 1]
    assert kpis.money_of(sums).tolist() == [float(Fraction(v, 10 ** 6)) for v in sums]


def test_revenue_is_the_float_nearest_the_exact_sum_in_memory_and_from_the_file(tmp_path):
    """Ten lines of 0.1 and lines of a thousandth: the KPI revenue is the exact sum, rounded once, both ways."""
    tx = tx_rows()
    extra = tx.iloc[[0] * 12].assign(amount=[0.1] * 10 + [0.001, 0.001], order_id=[f"X{i}" for i in range(12)])
    tx = schema.conform(pd.concat([tx, extra]).sort_values(["timestamp", "order_id"], kind="stable")
                        .reset_index(drop=True), schema.TRANSACTIONS, "transactions")
    memory = kpis.compute(tx, "M")
    path = io.write_parquet(tx, tmp_path / "tx.parquet")
    pd.testing.assert_frame_equal(kpis.compute_file(path, "M", rows=5), memory)
    jan = memory[(memory["region"] == "North") & (memory["period"] == pd.Timestamp("2025-01-01"))]
    assert jan["revenue"].iloc[0] == float(Fraction(150) + 10 * Fraction(1, 10) + 2 * Fraction(1, 1000))


def test_region_codes_and_period_bounds_of_a_batch():
    labels: dict[str, int] = {}
    text = pd.Series(["South", None, "North", "South"], dtype="string[pyarrow]")
    assert kpis.region_codes(text, labels).tolist() == [0, -1, 1, 0] and labels == {"South": 0, "North": 1}
    coded = pd.Series(pd.Categorical(["East", "North", None], categories=["North", "East", "West"]))
    assert kpis.region_codes(coded, labels).tolist() == [2, 1, -1]
    assert list(labels) == ["South", "North", "East", "West"]      # a categorical's categories, in their order
    assert kpis.region_codes(pd.Series([None, None], dtype="string[pyarrow]"), labels).tolist() == [-1, -1]
    ts = pd.to_datetime(["2025-03-31 23:59:59.999999999", "2025-04-01", "2025-04-30", "2025-07-02"],
                        format="ISO8601").to_numpy()
    for period, starts in (("M", ["2025-03-01", "2025-04-01", "2025-07-01"]), ("Q", ["2025-01-01", "2025-04-01",
                                                                                   "2025-07-01"])):
        pvals, bounds = kpis.period_bounds(ts, period)
        assert list(pvals) == list(pd.to_datetime(starts).to_numpy()) and bounds.tolist() == [0, 1, 3, 4]
        assert list(np.repeat(pvals, np.diff(bounds))) == list(kpis.starts(pd.Series(ts), period))


def test_take_from_chunks_is_arrows_take():
    text = pa.chunked_array([pa.array(["a", "b", None]), pa.array([], type=pa.string()), pa.array(["d", "é"])])
    for at in ([0, 2, 3, 4], [4], [], [0, 1, 2, 3, 4], [2, 3]):
        got = kpis.take(text, np.array(at, dtype="int64"))
        assert isinstance(got, pa.Array) and got.to_pylist() == text.take(pa.array(at, type=pa.int64())).to_pylist()
    assert kpis.take(pa.array(["x", "y"]), np.array([1])).to_pylist() == ["y"]
