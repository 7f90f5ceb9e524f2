"""forecast.history: what a history allows (folds, seasonality), its notes, gap policies and the usable span."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from datastory.errors import ModelError
from datastory.forecast import history as hs


def weekly(values, start="2025-01-06") -> pd.Series:
    return pd.Series(np.asarray(values, dtype=float), index=pd.date_range(start, periods=len(values), freq="W-MON"))


def test_two_full_seasons_before_any_seasonality():
    assert hs.season_length(103, "W") == 1 and hs.season_length(104, "W") == 52
    assert hs.season_length(23, "M") == 1 and hs.season_length(24, "M") == 12
    assert hs.season_length(13, "D") == 1 and hs.season_length(14, "D") == 7


def test_plan_full_history():
    p = hs.plan(156, "W", 13, 3)
    assert (p.folds, p.season, p.status, p.notes) == (3, 52, "backtested", ())


def test_plan_nine_months_gets_fewer_folds_and_says_no_yearly_season():
    p = hs.plan(39, "W", 13, 3)
    assert p.status == "backtested" and p.folds == 2 and p.season == 1
    assert p.notes == ("39 weeks (about 9 months) of history: backtested on 2 folds instead of 3",
                       "yearly seasonality cannot be estimated (it needs two full years)")


def test_plan_too_short_for_one_fold_uses_the_recent_level():
    p = hs.plan(9, "M", 6, 3)
    assert (p.status, p.folds) == ("recent_level", 0)
    assert p.notes[0] == ("9 months of history: forecast from the recent level; no backtest possible "
                          "(one 6-month backtest needs 10 months)")


def test_plan_too_short_for_anything_and_all_zero():
    assert hs.plan(2, "W", 13, 3).status == "too_short"
    assert "too little to forecast" in hs.plan(2, "W", 13, 3).notes[0]
    z = hs.plan(0, "W", 13, 3, all_zero=True)
    assert z.status == "all_zero" and "forecast 0" in z.notes[0]


def test_daily_history_under_two_years_says_no_yearly_season():
    p = hs.plan(365, "D", 28, 3)
    assert p.season == 7 and p.notes == ("365 days (about 12 months) of history: yearly seasonality cannot be "
                                         "estimated (it needs two full years)",)
    assert hs.plan(800, "D", 28, 3).notes == ()


def test_outlook_sentences():
    first, last = pd.Timestamp("2025-01-01"), pd.Timestamp("2026-01-31")
    assert hs.outlook(first, last, "W", 13, 3) == ("55 weeks (about 13 months) of full weeks: weekly forecast "
                                                   "without yearly seasonality, backtested on 3 folds of 13 weeks")
    assert hs.outlook(pd.Timestamp("2023-01-01"), last, "M", 3, 3).startswith(
        "37 months of full months: monthly forecast with yearly seasonality")
    assert hs.outlook(pd.Timestamp("2026-01-05"), pd.Timestamp("2026-01-15"), "W", 13, 3).startswith(
        "only 1 full week: no weekly forecast possible")


def test_usable_span_starts_at_the_first_non_zero_value():
    y = weekly([np.nan, 0, 0, 5, 0, 7, np.nan])
    u = hs.usable(y)
    assert list(u.to_numpy()) == [5, 0, 7] and u.index[0] == y.index[3]
    assert hs.usable(weekly([0, 0, np.nan])).empty


def test_fill_policies():
    y = weekly([10, np.nan, 30, np.nan])
    assert list(hs.fill(y, "zero")) == [10, 0, 30, 0]
    assert list(hs.fill(y, "interpolate")) == [10, 20, 30, 30]
    assert hs.fill(y, "none").isna().sum() == 2
    with pytest.raises(ModelError, match="unknown fill policy 'drop'"):
        hs.fill(y, "drop")


def test_prepare_keeps_gaps_unscored_and_applies_closures():
    y = weekly([0, 70, np.nan, 70, 70, 70], start="2025-12-01")  # week of 22 Dec: closed 25 and 26 Dec
    prep = hs.prepare(y, "W", 2, 3, "interpolate", ["12-25", "12-26"])
    assert prep.actual.index[0] == pd.Timestamp("2025-12-08")  # the leading 0 is not history
    assert np.isnan(prep.actual.iloc[1])                       # a gap is never an actual
    np.testing.assert_allclose(prep.share.to_numpy(), [1, 1, 5 / 7, 1, 1])
    # 70 in 5/7 of a week is 98 a full week; the gap is drawn between its neighbours per full week
    np.testing.assert_allclose(prep.model_y.to_numpy(), [70, 84, 98, 70, 70])
    assert prep.nonneg
    zero = hs.prepare(y, "W", 2, 3, "zero", [])
    assert zero.actual.iloc[1] == 0.0 and zero.plan.n == 5


def test_prepare_negative_history_is_not_floored():
    prep = hs.prepare(weekly([5, -3, 4, 6]), "W", 1, 1, "zero", [])
    assert not prep.nonneg
