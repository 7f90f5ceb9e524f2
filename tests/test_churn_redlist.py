"""The call lists (win back, second purchase) within each region's capacity, their floors, reason texts,
ordering and changes between runs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from datastory import config, schema
from datastory.churn.redlist import (
    CALL,
    SECOND,
    WATCH,
    WIN_BACK,
    changes,
    floors_from,
    reasons,
    reasons_for,
    red_list,
)
from datastory.errors import DataError

FLOORS = {WIN_BACK: 0.2, SECOND: 0.5}


def features(n: int = 8) -> pd.DataFrame:
    """C0-C3 North, C4-C7 South. C2 and C6 bought on one day only (C6 three orders that day)."""
    return pd.DataFrame({
        "customer_id": pd.array([f"C{i}" for i in range(n)], dtype="string"),
        "customer_name": [f"Name {i}" for i in range(n)],
        "region": ["North"] * 4 + ["South"] * 4,
        "annual_value": [1000.0, 100.0, 3000.0, 500.0, -50.0, 200.0, 900.0, 5000.0],
        "recency_days": [90, 80, 60, 40, 100, 3, 45, 20],
        "frequency": [5, 2, 1, 4, 6, 9, 3, 12],
        "last_order": pd.to_datetime(["2025-05-01"] * n),
        "purchase_days": [5, 2, 1, 4, 6, 9, 1, 12],
        "orders_total": [5, 2, 1, 4, 6, 9, 3, 12],
        "median_gap_days": [30.0, 20.0, np.nan, 50.0, 10.0, 1.0, np.nan, 30.0],
        "repeat_delay_days": 30.0,
    })


PROB = np.array([0.6, 0.9, 0.7, 0.3, 0.4, 0.8, 0.55, 0.1])


def test_lists_capacity_floors_and_ranking():
    out = red_list(features(), PROB, config.ChurnParams(capacity=1, second_purchase_capacity=1), FLOORS)
    by_id = out.set_index("customer_id")
    assert list(out.columns) == list(schema.CHURN_SCORES)
    assert {c: str(t) for c, t in out.dtypes.items()} == schema.CHURN_SCORES
    # revenue at risk = probability x max(value, 0); the frame is sorted by it, then by id
    assert by_id["revenue_at_risk"].to_dict() == pytest.approx(
        {"C0": 600.0, "C1": 90.0, "C2": 2100.0, "C3": 150.0, "C4": 0.0, "C5": 160.0, "C6": 495.0, "C7": 500.0})
    assert out["customer_id"].tolist() == ["C2", "C0", "C7", "C6", "C5", "C3", "C1", "C4"]
    assert by_id["list"].to_dict() == {"C0": WIN_BACK, "C1": WIN_BACK, "C2": SECOND, "C3": WIN_BACK,
                                       "C4": WIN_BACK, "C5": WIN_BACK, "C6": SECOND, "C7": WIN_BACK}
    # quiet and at risk: C0 (90 > 30), C1 (80 > 20), C2 (60 > 30, one day), C4 (100 > 10), C6 (45 > 30);
    # not C3 (40 < its usual 50), C5 (bought 3 days ago), C7 (20 < 30, and 0.1 under the floor)
    # C4 is at risk but worth nothing over the year (net returns): watch, not a call
    assert by_id["status"].to_dict() == {"C0": CALL, "C1": WATCH, "C2": CALL, "C3": "", "C4": WATCH,
                                         "C5": "", "C6": CALL, "C7": ""}
    assert by_id["red"].to_dict() == {k: v == CALL for k, v in by_id["status"].to_dict().items()}


def test_a_confident_stayer_is_never_called_and_capacity_zero_leaves_only_watch():
    prob = PROB.copy()
    prob[0] = 0.19  # quiet, but less likely to leave than a typical established customer
    out = red_list(features(), prob, config.ChurnParams(capacity=0, second_purchase_capacity=0), FLOORS)
    by_id = out.set_index("customer_id")
    assert by_id.loc["C0", "status"] == "" and not out["red"].any()
    assert set(out.loc[out["status"] == WATCH, "customer_id"]) == {"C1", "C2", "C4", "C6"}


def test_every_listed_customer_has_its_quiet_reason_first():
    out = red_list(features(), PROB, config.ChurnParams(), FLOORS).set_index("customer_id")
    assert out.loc["C0", "reasons"] == "no order for 90 days (usually every 30)"
    assert out.loc["C2", "reasons"] == "one purchase so far, 60 days ago (repeat buyers come back within 30 days)"
    assert out.loc["C6", "reasons"] == ("one purchase day so far (3 orders that day), 45 days ago (repeat buyers "
                                        "come back within 30 days)")
    listed = out[out["status"] != ""]
    assert (listed["reasons"].str.len() > 0).all()
    assert out.loc["C5", "reasons"] == ""  # bought 3 days ago: nothing to say


def test_floors_are_each_kinds_churn_rate_in_training():
    train = pd.DataFrame({"purchase_days": [1, 1, 1, 3, 5, 2], "churned": [True, True, False, False, True, False]})
    assert floors_from(train) == pytest.approx({SECOND: 2 / 3, WIN_BACK: 1 / 3})
    only_established = train[train["purchase_days"] > 1]
    assert floors_from(only_established)[SECOND] == pytest.approx(1 / 3)  # the overall rate
    with pytest.raises(DataError, match="churned"):
        floors_from(train.drop(columns="churned"))


def test_reason_texts_strongest_first_at_most_three():
    row = pd.Series({"recency_days": 74, "median_gap_days": 37.0, "purchase_days": 4, "spend_change": -0.6,
                     "return_share": 0.25, "discount_avg": 0.3, "lines_recent": 1, "lines_before": 2})
    # strengths: spend 0.6/0.3=2.0, lines 2/1=2.0, quiet 74/37=2.0, returns 1.67, discounts 1.5
    assert reasons_for(row) == ("no order for 74 days (usually every 37); spend down 60% vs previous quarter; "
                                "orders fewer product lines (1 now, 2 before)")
    assert reasons_for(pd.Series({"return_share": 0.25, "discount_avg": 0.3})) == (
        "returns were 25% of purchases; heavy discounts (avg 30%)")


def test_reason_texts_edge_cases():
    assert reasons_for(pd.Series({"recency_days": 30, "median_gap_days": 31.0, "purchase_days": 3,
                                  "spend_change": -0.1, "return_share": 0.0, "discount_avg": 0.0})) == ""
    # several orders on one day are one purchase day, not "only one order"
    assert reasons_for(pd.Series({"recency_days": 90, "purchase_days": 1, "orders_total": 2,
                                  "repeat_delay_days": 40.0})) == (
        "one purchase day so far (2 orders that day), 90 days ago (repeat buyers come back within 40 days)")
    # nothing bought for a quarter: the quiet rule says it, the 100% spend drop is not repeated
    assert reasons_for(pd.Series({"recency_days": 120, "median_gap_days": 20.0, "purchase_days": 5,
                                  "spend_change": -1.0})) == "no order for 120 days (usually every 20)"
    assert reasons_for(pd.Series({"recency_days": 20, "median_gap_days": 20.0, "purchase_days": 5,
                                  "spend_change": -1.2})) == "no net spend in the last quarter"
    # a recent buyer is never quiet, however short their usual gap
    assert reasons_for(pd.Series({"recency_days": 5, "median_gap_days": 1.0, "purchase_days": 30})) == ""


def random_features(n: int, seed: int) -> pd.DataFrame:
    """Rows built to hit every rule, its trigger level exactly, equal strengths and missing values."""
    rng = np.random.default_rng(seed)

    def pick(values: list, p_nan: float = 0.15) -> np.ndarray:
        out = rng.choice(np.array(values, dtype="float64"), n)
        return np.where(rng.random(n) < p_nan, np.nan, out)

    return pd.DataFrame({
        "recency_days": pick([0, 6, 7, 20, 40, 59, 60, 61, 89, 90, 120, 400], p_nan=0.05),
        "median_gap_days": pick([0.0, 10.0, 20.0, 20.5, 30.0, 45.0, 60.0], p_nan=0.3),
        "purchase_days": pick([1, 1, 2, 3, 8], p_nan=0.05),
        "orders_total": pick([1, 2, 3, 5], p_nan=0.1),
        "repeat_delay_days": pick([15.0, 30.0, 45.0], p_nan=0.1),
        "spend_change": pick([-1.5, -1.0, -0.6, -0.3, -0.29, 0.0, 0.8]),
        "return_share": pick([0.0, 0.149, 0.15, 0.3, 0.6]),
        "discount_avg": pick([0.0, 0.2, 0.4, 0.123, 0.5]),
        "lines_recent": pick([0, 1, 2, 3], p_nan=0.05),
        "lines_before": pick([0, 1, 2, 3], p_nan=0.05),
    }, index=pd.RangeIndex(100, 100 + n))


def test_vectorised_reasons_equal_the_row_by_row_rules():
    feats = random_features(800, seed=1)
    expected = [reasons_for(row) for _, row in feats.iterrows()]
    got = reasons(feats)
    assert got.index.equals(feats.index) and str(got.dtype) == "string"
    assert got.tolist() == expected
    # the sample covers every rule, full lists of three and rows with no reason (so the check can fail)
    joined = " | ".join(expected)
    for text in ("no order for", "one purchase so far", "orders that day", "spend down", "no net spend",
                 "returns were", "heavy discounts", "fewer product lines"):
        assert text in joined, text
    assert any(e.count("; ") == 2 for e in expected) and "" in expected


def test_vectorised_reasons_edge_cases():
    assert reasons(random_features(0, seed=2)).tolist() == []
    only_returns = pd.DataFrame({"return_share": [0.3, np.nan, 0.1]})   # other feature columns absent
    assert reasons(only_returns).tolist() == [reasons_for(r) for _, r in only_returns.iterrows()] == [
        "returns were 30% of purchases", "", ""]
    nullable = pd.DataFrame({"recency_days": pd.array([90, None], dtype="Int64"),
                             "purchase_days": pd.array([1, 1], dtype="Int64"), "repeat_delay_days": [30.0, 30.0]})
    assert reasons(nullable).tolist() == [
        "one purchase so far, 90 days ago (repeat buyers come back within 30 days)", ""]
    with pytest.raises(DataError, match="'return_share' is not numeric"):
        reasons(pd.DataFrame({"return_share": ["lots"]}))


def test_bad_probabilities_and_missing_floors_are_refused():
    cfg = config.ChurnParams()
    with pytest.raises(DataError, match="7 probabilities for 8 customers"):
        red_list(features(), PROB[:7], cfg, FLOORS)
    with pytest.raises(DataError, match="0..1"):
        red_list(features(), PROB + 0.5, cfg, FLOORS)
    with pytest.raises(DataError, match="no probability floor"):
        red_list(features(), PROB, cfg, {WIN_BACK: 0.2})


def test_changes_newly_red_and_cleared():
    prev = pd.DataFrame({"customer_id": ["A", "B", "C", "D"], "red": [True, True, False, False]})
    now = pd.DataFrame({"customer_id": ["B", "C", "D", "E"], "red": [False, True, False, True]})
    assert changes(prev, now) == {"newly_red": ["C", "E"], "cleared": ["A", "B"]}
    assert changes(now, now) == {"newly_red": [], "cleared": []}
    with pytest.raises(DataError, match="previous churn scores: missing column"):
        changes(prev.drop(columns=["red"]), now)
