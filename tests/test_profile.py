"""profile: what check-data reads from the kept transactions, small whatever their number, and read the same way
by the churn and forecast rules as the lines themselves."""

from __future__ import annotations

import pandas as pd
import pytest
import shapes

from datastory import config, ingest, profile, schema
from datastory.churn.labels import labels_at
from datastory.churn.model import plan_cutoffs
from datastory.forecast.series import full_periods


def invoice_tx() -> pd.DataFrame:
    cfg = config.DataParams(source="csv", columns=config.ColumnsParams(**shapes.INVOICE_MAPPING),
                            rules=config.RulesParams(**shapes.INVOICE_RULES))
    return ingest.prepare(shapes.as_raw(shapes.invoice_log(), shapes.INVOICE_MAPPING), cfg).tx


def test_the_customer_days_give_the_churn_and_forecast_plans_of_every_line():
    tx = invoice_tx()
    assert (tx["timestamp"] != tx["timestamp"].dt.normalize()).mean() > 0.9   # lines during the day, not at midnight
    p = profile.of(tx)
    days = p.days
    assert list(days.columns) == list(schema.TRANSACTIONS) and len(days) < len(tx)
    assert not days.duplicated(profile.DAY_COLUMNS).any() and (days["timestamp"].dt.normalize() == days["timestamp"]).all()
    for churn in (config.ChurnParams(), config.ChurnParams(window_days=30, lookback_days=60, cutoff_step_days=7)):
        cut = plan_cutoffs(tx, churn)
        assert plan_cutoffs(days, churn) == cut
        for c in (*cut.train, cut.valid):
            pd.testing.assert_frame_equal(labels_at(days, c, churn.window_days, churn.lookback_days),
                                          labels_at(tx, c, churn.window_days, churn.lookback_days))
    for freq in ("W", "M"):
        assert full_periods(days["timestamp"].min(), days["timestamp"].max(), freq).equals(
            full_periods(tx["timestamp"].min(), tx["timestamp"].max(), freq))
    assert (p.lines, p.sales, p.negatives) == (len(tx), (tx["amount"] > 0).sum(), (tx["amount"] < 0).sum())
    assert p.product_lines == tx["product_line"].nunique() and not p.named_all
    assert p.segments["size"].sum() == len(tx) and p.segments.index.is_monotonic_increasing
    assert p.segments["sum"].sum() == pytest.approx(tx["amount"].sum())
    assert profile.of(tx.assign(product_line=schema.ALL)).named_all


def test_make_gives_one_form_whatever_the_order():
    days = pd.DataFrame({"customer_id": ["b", "a", "a"],
                         "timestamp": pd.to_datetime(["2025-01-02", "2025-01-03", "2025-01-01"]).astype("datetime64[us]"),
                         "is_return": [False, True, False]})
    seg = pd.DataFrame({"size": [2, 1], "sum": [5, 7.5]}, index=pd.Index(["West", "East"], name="region"))
    args = dict(lines=3, sales=2, negatives=1, product_lines=1, named_all=False)
    one = profile.make(**args, segments=seg, days=days)
    two = profile.make(**args, segments=seg.iloc[::-1], days=days.iloc[[2, 0, 1]])
    pd.testing.assert_frame_equal(one.days, two.days)
    pd.testing.assert_frame_equal(one.segments, two.segments)
    assert list(one.days["customer_id"]) == ["a", "a", "b"] and list(one.segments.index) == ["East", "West"]
    assert str(one.days["timestamp"].dtype) == "datetime64[ns]"


def test_a_frame_that_is_not_transactions_is_refused():
    with pytest.raises(KeyError):
        profile.of(pd.DataFrame({"amount": [1.0]}))
    with pytest.raises(KeyError):
        profile.make(lines=1, sales=1, negatives=0, product_lines=1, named_all=False,
                     segments=pd.DataFrame({"size": [1]}), days=pd.DataFrame({"customer_id": ["a"]}))
