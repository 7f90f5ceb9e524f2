"""The red rule (threshold OR top-k per region), reason texts, ordering and changes between runs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from datastory import config, schema
from datastory.churn.redlist import changes, reasons, reasons_for, red_list
from datastory.errors import DataError


def features(n: int = 6) -> pd.DataFrame:
    return pd.DataFrame({
        "customer_id": pd.array([f"C{i}" for i in range(n)], dtype="string"),
        "customer_name": [f"Name {i}" for i in range(n)],
        "region": ["North", "North", "North", "South", "South", "South"][:n],
        "annual_value": [1000.0, 100.0, 3000.0, 500.0, -50.0, 200.0][:n],
        "recency_days": [10, 80, 5, 40, 100, 3][:n],
        "frequency": [5, 2, 20, 4, 1, 9][:n],
        "last_order": pd.to_datetime(["2025-05-01"] * n),
        "avg_gap_days": [30.0, 20.0, 10.0, np.nan, np.nan, 5.0][:n],
    })


PROB = np.array([0.2, 0.9, 0.1, 0.3, 0.6, 0.05])


def test_red_rule_threshold_or_top_k_per_region():
    out = red_list(features(), PROB, config.ChurnParams(threshold=0.5, top_k_per_region=1))
    by_id = out.set_index("customer_id")
    # revenue at risk: C0 200, C1 90, C2 300 | C3 150, C4 0 (negative value counts as 0), C5 10
    assert by_id["revenue_at_risk"].to_dict() == pytest.approx(
        {"C0": 200.0, "C1": 90.0, "C2": 300.0, "C3": 150.0, "C4": 0.0, "C5": 10.0})
    assert out["customer_id"].tolist() == ["C2", "C0", "C3", "C1", "C5", "C4"]
    assert by_id["rank_in_region"].to_dict() == {"C2": 1, "C0": 2, "C3": 1, "C1": 3, "C5": 2, "C4": 3}
    # red: top 1 per region (C2, C3) or probability >= 0.5 (C1, C4)
    assert sorted(out.loc[out["red"], "customer_id"]) == ["C1", "C2", "C3", "C4"]
    assert list(out.columns) == list(schema.CHURN_SCORES)
    assert {c: str(t) for c, t in out.dtypes.items()} == schema.CHURN_SCORES


def test_top_k_zero_leaves_only_the_threshold_and_ties_sort_by_id():
    prob = np.array([0.5, 0.5, 0.5, 0.5, 0.5, 0.5])
    feats = features().assign(annual_value=100.0)
    out = red_list(feats, prob, config.ChurnParams(threshold=0.6, top_k_per_region=0))
    assert not out["red"].any()
    assert out["customer_id"].tolist() == [f"C{i}" for i in range(6)]


def test_reason_texts_strongest_first_at_most_three():
    row = pd.Series({"recency_days": 74, "avg_gap_days": 21.0, "spend_change": -0.6, "return_share": 0.25,
                     "discount_avg": 0.3, "lines_recent": 1, "lines_before": 2})
    # strengths: spend 0.6/0.3=2.0, lines 2/1=2.0, overdue 74/42=1.76, returns 1.67, discounts 1.5
    assert reasons_for(row) == ("spend down 60% vs previous quarter; orders fewer product lines (1 now, 2 before); "
                                "no order for 74 days (usually every 21)")
    assert reasons_for(pd.Series({"return_share": 0.25, "discount_avg": 0.3})) == (
        "returns were 25% of purchases; heavy discounts (avg 30%)")


def test_reason_texts_edge_cases():
    assert reasons_for(pd.Series({"recency_days": 30, "avg_gap_days": 21.0, "spend_change": -0.1,
                                  "return_share": 0.0, "discount_avg": 0.0})) == ""
    assert reasons_for(pd.Series({"recency_days": 90, "avg_gap_days": np.nan})) == \
        "only one order so far, 90 days ago"
    # nothing bought for a quarter: recency says it, the 100% spend drop is not repeated
    assert reasons_for(pd.Series({"recency_days": 120, "avg_gap_days": 20.0, "spend_change": -1.0})) == \
        "no order for 120 days (usually every 20)"
    assert reasons_for(pd.Series({"recency_days": 20, "avg_gap_days": 20.0, "spend_change": -1.2})) == \
        "no net spend in the last quarter"


def random_features(n: int, seed: int) -> pd.DataFrame:
    """Rows built to hit every rule, its trigger level exactly, equal strengths and missing values."""
    rng = np.random.default_rng(seed)

    def pick(values: list, p_nan: float = 0.15) -> np.ndarray:
        out = rng.choice(np.array(values, dtype="float64"), n)
        return np.where(rng.random(n) < p_nan, np.nan, out)

    return pd.DataFrame({
        "recency_days": pick([0, 20, 40, 59, 60, 61, 89, 90, 120, 400], p_nan=0.05),
        "avg_gap_days": pick([0.0, 10.0, 20.0, 20.5, 30.0, 45.0, 60.0], p_nan=0.3),
        "spend_change": pick([-1.5, -1.0, -0.6, -0.3, -0.29, 0.0, 0.8]),
        "return_share": pick([0.0, 0.149, 0.15, 0.3, 0.6]),
        "discount_avg": pick([0.0, 0.2, 0.4, 0.123, 0.5]),
        "lines_recent": pick([0, 1, 2, 3], p_nan=0.05),
        "lines_before": pick([0, 1, 2, 3], p_nan=0.05),
    }, index=pd.RangeIndex(100, 100 + n))


def test_vectorised_reasons_equal_the_row_by_row_rules():
    feats = random_features(600, seed=1)
    expected = [reasons_for(row) for _, row in feats.iterrows()]
    got = reasons(feats)
    assert got.index.equals(feats.index) and str(got.dtype) == "string"
    assert got.tolist() == expected
    # the sample covers every rule, full lists of three and rows with no reason (so the check can fail)
    joined = " | ".join(expected)
    for text in ("no order for", "only one order", "spend down", "no net spend", "returns were",
                 "heavy discounts", "fewer product lines"):
        assert text in joined, text
    assert any(e.count("; ") == 2 for e in expected) and "" in expected


def test_vectorised_reasons_edge_cases():
    assert reasons(random_features(0, seed=2)).tolist() == []
    only_returns = pd.DataFrame({"return_share": [0.3, np.nan, 0.1]})   # other feature columns absent
    assert reasons(only_returns).tolist() == [reasons_for(r) for _, r in only_returns.iterrows()] == [
        "returns were 30% of purchases", "", ""]
    nullable = pd.DataFrame({"recency_days": pd.array([90, None], dtype="Int64"),
                             "avg_gap_days": [np.nan, 10.0]})
    assert reasons(nullable).tolist() == ["only one order so far, 90 days ago", ""]
    with pytest.raises(DataError, match="'return_share' is not numeric"):
        reasons(pd.DataFrame({"return_share": ["lots"]}))


def test_red_list_reasons_come_from_the_features():
    out = red_list(features(), PROB, config.ChurnParams()).set_index("customer_id")
    assert out.loc["C1", "reasons"] == "no order for 80 days (usually every 20)"
    assert out.loc["C4", "reasons"] == "only one order so far, 100 days ago"
    assert out.loc["C0", "reasons"] == ""


def test_bad_probabilities_are_refused():
    with pytest.raises(DataError, match="5 probabilities for 6 customers"):
        red_list(features(), PROB[:5], config.ChurnParams())
    with pytest.raises(DataError, match="0..1"):
        red_list(features(), PROB + 0.5, config.ChurnParams())


def test_changes_newly_red_and_cleared():
    prev = pd.DataFrame({"customer_id": ["A", "B", "C", "D"], "red": [True, True, False, False]})
    now = pd.DataFrame({"customer_id": ["B", "C", "D", "E"], "red": [False, True, False, True]})
    assert changes(prev, now) == {"newly_red": ["C", "E"], "cleared": ["A", "B"]}
    assert changes(now, now) == {"newly_red": [], "cleared": []}
    with pytest.raises(DataError, match="previous churn scores: missing column"):
        changes(prev.drop(columns=["red"]), now)
