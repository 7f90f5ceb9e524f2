"""dashboard.totals: the forecast summed to the chosen period, over complete periods only, never its range."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from datastory.dashboard import totals


def weeks(first: str, n: int, ahead: int, value: float = 70.0) -> pd.DataFrame:
    """`n` Monday-labelled weeks worth `value` each (10 a day); the last `ahead` are forecast."""
    ds = pd.date_range(first, periods=n, freq="W-MON")
    fc = np.arange(n) >= n - ahead
    return pd.DataFrame({"ds": ds, "y": np.where(fc, np.nan, value), "yhat": np.where(fc, value, np.nan),
                         "is_forecast": fc})


def test_weeks_are_split_by_their_days_into_months():
    # Mon 30 Dec 2024 .. Sun 29 Jun 2025: history to Sun 30 Mar, forecast from Mon 31 Mar
    got = {d: (a, f) for d, a, f in totals.to_grain(weeks("2024-12-30", 26, 13), "W", "M")}
    assert got["2025-01-01"] == (310.0, None)             # 31 days x 10; the week of 30 Dec gives 5 of its 7 days
    assert got["2025-02-01"] == (280.0, None)
    assert got["2025-05-01"] == (None, 310.0)             # wholly ahead: the forecast's total
    assert got["2025-04-01"] == (None, 300.0)
    assert "2025-03-01" not in got                        # its 31st is the forecast's first day
    assert "2025-06-01" not in got                        # the horizon ends Sunday 29 June
    assert "2024-12-01" not in got                        # only 2 of its days are covered
    assert list(got) == ["2025-01-01", "2025-02-01", "2025-04-01", "2025-05-01"]


def test_a_period_partly_history_and_partly_ahead_is_left_out():
    got = {d: (a, f) for d, a, f in totals.to_grain(weeks("2025-01-06", 20, 8), "W", "M")}
    # history ends Sunday 16 March: March is neither all history nor all forecast
    assert "2025-03-01" not in got and got["2025-02-01"] == (280.0, None) and got["2025-04-01"] == (None, 300.0)
    assert "2025-05-01" not in got                        # the horizon ends Sunday 25 May
    assert {d: a for d, a, _ in totals.to_grain(weeks("2025-01-06", 20, 8), "W", "Q")} == {}


def test_months_sum_exactly_to_quarters_and_a_gap_is_not_a_zero():
    m = pd.DataFrame({"ds": pd.date_range("2025-01-01", periods=6, freq="MS"),
                      "y": [1.0, 2.0, 3.0, 4.0, np.nan, 6.0], "yhat": np.nan, "is_forecast": False})
    assert totals.to_grain(m, "M", "Q") == [["2025-01-01", 6.0, None]]   # Q2 has a missing month


def test_only_coarser_periods_are_totalled():
    assert totals.can_sum("W", "M") and totals.can_sum("M", "Y") and not totals.can_sum("M", "M")
    assert not totals.can_sum("Q", "M") and not totals.can_sum("X", "Y")
    with pytest.raises(ValueError, match="cannot total"):
        totals.to_grain(weeks("2025-01-06", 4, 1), "Q", "M")
    assert totals.to_grain(weeks("2025-01-06", 4, 1).iloc[0:0], "W", "M") == []


def test_notes_say_what_is_summed_and_where_the_range_is():
    assert "range shaded" in totals.note("W", None)
    month = totals.note("W", "M")
    assert month.startswith("Monthly totals of the weekly forecast") and "split between them by its days" in month
    assert "No range is drawn" in month and "Weeks, with range" in month
    assert "split" not in totals.note("D", "Q")
    assert totals.note("Q", "M").startswith("The forecast is made per quarter")
