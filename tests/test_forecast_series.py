"""build_series: totals, gap filling, period labels, partial periods and bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from datastory import schema
from datastory.errors import DataError
from datastory.forecast import series as fs


def make_tx(start: str = "2025-01-06", days: int = 56, seed: int = 1, gap: tuple[str, str, str] | None = None):
    """A few order lines per day for 2 regions x 2 lines; `gap` = (region, line, week start) left empty."""
    rng = np.random.default_rng(seed)
    rows = []
    for d in pd.date_range(start, periods=days, freq="D"):
        for reg in ("North", "South"):
            for line in ("Hardware", "Software"):
                if gap and reg == gap[0] and line == gap[1] and pd.Timestamp(gap[2]) <= d < pd.Timestamp(
                        gap[2]) + pd.Timedelta(days=7):
                    continue
                amt = float(rng.integers(-20, 200))
                rows.append({"timestamp": d + pd.Timedelta(hours=10), "region": reg, "product_line": line,
                             "amount": amt})
    return pd.DataFrame(rows)


def test_totals_are_consistent_and_ids_named():
    tx = make_tx()
    out = fs.build_series(tx, "W")
    assert list(out.columns) == ["series_id", "region", "product_line", "ds", "y"]
    assert set(out["series_id"]) == {"All", "North", "South", "North / Hardware", "North / Software",
                                     "South / Hardware", "South / Software"}
    wide = out.pivot(index="ds", columns="series_id", values="y")
    for reg in ("North", "South"):
        np.testing.assert_allclose(wide[reg], wide[f"{reg} / Hardware"] + wide[f"{reg} / Software"])
    np.testing.assert_allclose(wide["All"], wide["North"] + wide["South"])
    # the grand total over all periods equals the sum of the transactions (all weeks are full here)
    assert wide["All"].sum() == pytest.approx(tx["amount"].sum())
    north = out[out["series_id"] == "North"]
    assert set(north["region"]) == {"North"} and set(north["product_line"]) == {schema.ALL}


def test_weeks_labelled_by_monday_and_partial_edges_dropped():
    # Sunday 2025-01-05 .. Wednesday 2025-03-05: first week has 1 day, last week 3 days -> both dropped
    tx = make_tx(start="2025-01-05", days=60)
    out = fs.build_series(tx, "W")
    ds = pd.DatetimeIndex(sorted(out["ds"].unique()))
    assert (ds.dayofweek == 0).all()
    assert ds[0] == pd.Timestamp("2025-01-06")
    assert ds[-1] == pd.Timestamp("2025-02-24")  # week Feb 24..Mar 2 is the last full one
    kept = tx[(tx["timestamp"] >= "2025-01-06") & (tx["timestamp"] < "2025-03-03")]["amount"].sum()
    assert out[out["series_id"] == "All"]["y"].sum() == pytest.approx(kept)


def test_months_and_days():
    tx = make_tx(start="2025-01-01", days=100)  # Jan 1 .. Apr 10 -> Jan, Feb, Mar full
    months = fs.build_series(tx, "M")
    assert sorted(months["ds"].unique()) == list(pd.to_datetime(["2025-01-01", "2025-02-01", "2025-03-01"]))
    days = fs.build_series(tx, "D")
    assert days["ds"].nunique() == 100


def test_gap_filled_with_zero():
    tx = make_tx(gap=("North", "Software", "2025-01-20"))
    out = fs.build_series(tx, "W")
    counts = out.groupby("series_id").size()
    assert counts.nunique() == 1  # every series has every week
    cell = out[(out["series_id"] == "North / Software") & (out["ds"] == "2025-01-20")]
    assert len(cell) == 1 and cell["y"].iloc[0] == 0.0


def test_full_periods_helper():
    idx = fs.full_periods(pd.Timestamp("2025-01-01"), pd.Timestamp("2025-01-31"), "M")
    assert list(idx) == [pd.Timestamp("2025-01-01")]
    assert len(fs.full_periods(pd.Timestamp("2025-01-02"), pd.Timestamp("2025-01-31"), "M")) == 0


def test_split_returns_series_by_id():
    out = fs.build_series(make_tx(), "W")
    parts = fs.split(out)
    assert list(parts) == sorted(parts)
    assert isinstance(parts["All"].index, pd.DatetimeIndex) and len(parts["All"]) == 8


# ------------------------------------------------------------------ negative
def test_unknown_freq():
    with pytest.raises(DataError, match="unknown forecast frequency 'Y'"):
        fs.build_series(make_tx(), "Y")


def test_missing_column():
    with pytest.raises(DataError, match="missing column.*amount"):
        fs.build_series(make_tx().drop(columns="amount"), "W")


def test_non_numeric_amount():
    tx = make_tx()
    tx["amount"] = tx["amount"].astype(str)
    with pytest.raises(DataError, match="amount must be numeric") as exc:
        fs.build_series(tx, "W")
    assert exc.value.column == "amount"


def test_missing_amount_names_row():
    tx = make_tx()
    tx.loc[5, "amount"] = np.nan
    with pytest.raises(DataError, match="amount is missing") as exc:
        fs.build_series(tx, "W")
    assert exc.value.row == 5


def test_too_short_for_one_period():
    tx = make_tx(start="2025-01-07", days=5)  # Tue..Sat: no full week
    with pytest.raises(DataError, match="not one full period"):
        fs.build_series(tx, "W")


def test_reserved_label():
    tx = make_tx()
    tx.loc[0, "region"] = schema.ALL
    with pytest.raises(DataError, match="reserved for totals"):
        fs.build_series(tx, "W")


def test_split_rejects_duplicate_dates():
    out = fs.build_series(make_tx(), "W")
    dup = pd.concat([out, out.iloc[[0]]], ignore_index=True)
    with pytest.raises(DataError, match="duplicate date"):
        fs.split(dup)
