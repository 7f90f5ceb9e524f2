"""forecast.calendar: closures parsed, open shares per period, and bad closures refused."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from datastory import config
from datastory.errors import ParamsError
from datastory.forecast import calendar


def test_yearly_dates_and_ranges_expand_to_days():
    days = calendar.closed_days(["12-25", "2025-08-04..2025-08-06", "2026-01-01"],
                                pd.Timestamp("2024-12-01"), pd.Timestamp("2026-12-31"))
    assert [d.strftime("%Y-%m-%d") for d in days] == [
        "2024-12-25", "2025-08-04", "2025-08-05", "2025-08-06", "2025-12-25", "2026-01-01", "2026-12-25"]


def test_leap_day_closure_only_in_leap_years():
    days = calendar.closed_days(["02-29"], pd.Timestamp("2023-01-01"), pd.Timestamp("2025-12-31"))
    assert [d.strftime("%Y-%m-%d") for d in days] == ["2024-02-29"]


def test_open_share_per_week_month_and_day():
    weeks = pd.date_range("2025-12-15", periods=3, freq="W-MON")  # the week of 22 Dec holds 25 and 26 Dec
    np.testing.assert_allclose(calendar.open_share(weeks, "W", ["12-25", "12-26"]), [1.0, 5 / 7, 1.0])
    months = pd.date_range("2025-11-01", periods=2, freq="MS")
    np.testing.assert_allclose(calendar.open_share(months, "M", ["2025-12-24..2025-12-26"]), [1.0, 28 / 31])
    days = pd.date_range("2025-12-24", periods=3, freq="D")
    np.testing.assert_allclose(calendar.open_share(days, "D", ["12-25"]), [1.0, 0.0, 1.0])
    np.testing.assert_allclose(calendar.open_share(days, "D", []), [1.0, 1.0, 1.0])


def test_future_share_follows_the_last_period():
    share = calendar.future_share(pd.Timestamp("2025-12-15"), 2, "W", ["12-25"])
    np.testing.assert_allclose(share, [6 / 7, 1.0])


@pytest.mark.parametrize("bad, word", [("13-01", "not a day of the year"), ("02-30", "not a day of the year"),
                                       ("2025-02-30", "not a calendar date"), ("christmas", "not a date"),
                                       ("2025-12-26..2025-12-24", "ends before it starts")])
def test_bad_closures_are_refused_with_the_entry(bad, word):
    with pytest.raises(ParamsError, match=word) as err:
        calendar.check(["12-25", bad])
    assert bad in str(err.value) and "fix:" in str(err.value)


def test_params_refuse_a_bad_closure_before_any_run():
    with pytest.raises(Exception, match="not a date"):
        config.ForecastParams(closures=["Christmas"])
    assert config.ForecastParams(closures=["12-25"]).closures == ["12-25"]
