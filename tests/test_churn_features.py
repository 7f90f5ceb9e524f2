"""Point-in-time features: hand-checked values, no leakage from rows at or after the cutoff."""

from __future__ import annotations

import pandas as pd
import pytest

from datastory import schema
from datastory.churn.features import BASE_FEATURES, features_at, model_columns
from datastory.errors import DataError, ModelError

CUTOFF = pd.Timestamp("2025-03-01")


def tx_frame(rows: list[tuple]) -> pd.DataFrame:
    """rows: (customer, timestamp, product_line, amount, discount, is_return)."""
    recs = [{"order_id": f"O{i}", "customer_id": c, "customer_name": f"Name {c}", "timestamp": pd.Timestamp(ts),
             "region": "North" if c in ("A", "B") else "South", "product_line": pl, "quantity": 1.0,
             "amount": amt, "discount": disc, "is_return": ret} for i, (c, ts, pl, amt, disc, ret) in enumerate(rows)]
    return schema.conform(pd.DataFrame(recs), schema.TRANSACTIONS, "test")


BASE_ROWS = [
    ("B", "2024-01-01 10:00", "Hardware", 500.0, 0.0, False),   # only active long before: not scored
    ("C", "2024-06-01 10:00", "Hardware", 200.0, 0.0, False),
    ("A", "2025-01-01 10:00", "Hardware", 100.0, 0.0, False),
    ("A", "2025-01-11 10:00", "Hardware", 50.0, 0.2, False),
    ("A", "2025-01-31 10:00", "Software", 80.0, 0.0, False),
    ("A", "2025-02-05 10:00", "Software", -20.0, 0.0, True),
    ("C", "2025-02-20 10:00", "Services", 300.0, 0.1, False),
    ("C", "2025-04-20 10:00", "Services", 300.0, 0.1, False),   # after the cutoff
]


def test_hand_example_values():
    f = features_at(tx_frame(BASE_ROWS), CUTOFF, 365).set_index("customer_id")
    assert list(f.index) == ["A", "C"]
    a = f.loc["A"]
    assert (a["recency_days"], a["frequency"], a["tenure_days"]) == (28, 3, 58)
    assert a["monetary"] == pytest.approx(210.0) and a["annual_value"] == pytest.approx(210.0)
    assert a["avg_gap_days"] == pytest.approx(15.0) and a["last_gap_days"] == pytest.approx(20.0)
    assert a["gap_trend"] == pytest.approx(20 / 15) and a["overdue_ratio"] == pytest.approx(28 / 15)
    # gaps 10 and 20 days: median 15; 2 purchase days after the first in the 59 days up to the cutoff
    assert a["median_gap_days"] == pytest.approx(15.0) and a["overdue_median"] == pytest.approx(28 / 15)
    assert a["purchase_rate"] == pytest.approx(2 / 59) and a["missed_purchases"] == pytest.approx(28 * 2 / 59)
    assert a["spend_last_90"] == pytest.approx(210.0) and a["spend_prev_90"] == 0.0
    assert pd.isna(a["spend_change"])
    assert a["return_share"] == pytest.approx(20 / 230)
    assert a["discount_share"] == pytest.approx(1 / 3) and a["discount_avg"] == pytest.approx(0.2 / 3)
    assert (a["n_lines"], a["lines_recent"], a["lines_before"]) == (2, 2, 0)
    assert a["pl_Hardware"] == pytest.approx(150 / 230) and a["pl_Services"] == 0.0
    assert (a["region_North"], a["region_South"]) == (1.0, 0.0)
    assert a["last_order"] == pd.Timestamp("2025-01-31 10:00")
    c = f.loc["C"]
    assert (c["frequency"], c["recency_days"], c["tenure_days"]) == (2, 8, 272)
    assert c["spend_last_90"] == pytest.approx(300.0) and c["lines_before"] == 1
    assert c["median_gap_days"] == pytest.approx(264.0) and c["purchase_rate"] == pytest.approx(1 / 273)
    assert set(BASE_FEATURES) <= set(model_columns(f.reset_index()))
    assert not set(model_columns(f.reset_index())) & {"customer_id", "customer_name", "region", "last_order"}


def test_spend_trend_compares_last_quarter_with_the_one_before():
    rows = [("A", "2024-10-15", "Hardware", 400.0, 0.0, False), ("A", "2025-02-15", "Hardware", 100.0, 0.0, False),
            ("B", "2025-03-15", "Hardware", 100.0, 0.0, False)]
    a = features_at(tx_frame(rows), CUTOFF, 365).iloc[0]
    assert a["spend_change"] == pytest.approx(-0.75)


def test_median_gap_resists_one_long_pause_and_one_purchase_has_no_rhythm():
    rows = [("A", d, "Hardware", 10.0, 0.0, False)
            for d in ("2024-06-01", "2024-06-11", "2024-06-21", "2024-12-18", "2024-12-28")]
    rows += [("C", "2025-02-01 10:00", "Hardware", 10.0, 0.0, False), ("C", "2025-03-10", "Hardware", 10.0, 0.0, False)]
    f = features_at(tx_frame(rows), CUTOFF, 365).set_index("customer_id")
    a, c = f.loc["A"], f.loc["C"]
    assert a["avg_gap_days"] == pytest.approx(210 / 4) and a["median_gap_days"] == pytest.approx(10.0)
    assert a["overdue_median"] == pytest.approx(63 / 10) and a["missed_purchases"] == pytest.approx(63 * 4 / 273)
    assert pd.isna(c["median_gap_days"]) and pd.isna(c["overdue_median"])
    assert c["purchase_rate"] == 0.0 and c["missed_purchases"] == 0.0


def test_no_leakage_rows_at_or_after_the_cutoff_change_nothing():
    tx = tx_frame(BASE_ROWS)
    before = features_at(tx, CUTOFF, 365)
    mutated = tx.copy()
    later = mutated["timestamp"] >= CUTOFF
    assert later.any()
    mutated.loc[later, "amount"] *= 10
    mutated.loc[later, "discount"] = 0.9
    mutated.loc[later, "is_return"] = True
    extra = tx_frame([("A", "2025-03-01 00:00", "Consulting", 999.0, 0.5, False),   # exactly at the cutoff
                      ("Z", "2025-03-02 09:00", "Hardware", 50.0, 0.0, False),      # a new customer later
                      ("C", "2025-06-01 09:00", "NewLine", 70.0, 0.0, False)])
    extra["region"] = extra["region"].where(extra["customer_id"] != "Z", "Mars")
    after = features_at(pd.concat([mutated, extra], ignore_index=True), CUTOFF, 365)
    pd.testing.assert_frame_equal(before, after)
    # ... while a change before the cutoff does show (so the check above can fail).
    earlier = tx.copy()
    earlier.loc[earlier["timestamp"] < CUTOFF, "amount"] += 1.0
    assert not features_at(earlier, CUTOFF, 365).equals(before)


def test_fixed_one_hot_columns_stack_across_cutoffs():
    f = features_at(tx_frame(BASE_ROWS), CUTOFF, 365, product_lines=["Hardware", "Software", "Services", "X"],
                    regions=["East", "North", "South"])
    assert {"pl_X", "region_East"} <= set(f.columns) and (f["pl_X"] == 0).all()


@pytest.mark.parametrize("cutoff", ["2023-12-31", "2024-01-01", "2025-05-01"])
def test_cutoff_outside_the_data_is_refused(cutoff):
    with pytest.raises(ModelError, match="outside the data"):
        features_at(tx_frame(BASE_ROWS), cutoff, 365)


def test_bad_inputs_are_refused():
    tx = tx_frame(BASE_ROWS)
    with pytest.raises(DataError, match="missing column"):
        features_at(tx.drop(columns=["discount"]), CUTOFF, 365)
    with pytest.raises(DataError, match="no rows"):
        features_at(tx.iloc[:0], CUTOFF, 365)
    with pytest.raises(ModelError, match="not a date"):
        features_at(tx, "soon", 365)
    with pytest.raises(ModelError, match="lookback_days"):
        features_at(tx, CUTOFF, 0)


@pytest.mark.parametrize("cutoff", ["2024-06-01", "2025-01-01", "2025-09-15"])
def test_repeat_delays_are_the_delays_features_of_past_gives(cutoff):
    """A sample's features take the median delay over every customer: repeat_delays gives it without them."""
    from test_churn_shards import awkward_log

    from datastory.churn.features import features_of_past, repeat_delays

    tx = awkward_log()
    cut = pd.Timestamp(cutoff)
    past = tx[tx["timestamp"] < cut].reset_index(drop=True)
    lines, regions = sorted(tx["product_line"].unique()), sorted(tx["region"].unique())
    _, want = features_of_past(past, cut, 365, lines, regions)
    got = repeat_delays(past, cut, 365)
    assert len(want) > 5
    pd.testing.assert_series_equal(pd.Series(got), pd.Series(want))
    assert repeat_delays(past, cut, 30).size < want.size     # fewer customers active in a shorter lookback
