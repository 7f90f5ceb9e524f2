"""forecast.intervals: conformal rescaling of a model's band from its backtest errors."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from datastory.errors import ModelError
from datastory.forecast import intervals as iv


def bt(y, yhat=10.0, half=1.0, folds=2) -> pd.DataFrame:
    """Backtest rows: forecasts yhat with a band +-half, actuals y, split evenly over `folds` folds."""
    y = np.asarray(y, dtype=float)
    return pd.DataFrame({"model": "m", "fold": np.arange(len(y)) * folds // len(y), "y": y, "yhat": yhat,
                         "yhat_lower": yhat - half, "yhat_upper": yhat + half})


def test_conformal_quantile_is_the_corrected_order_statistic():
    s = np.arange(1.0, 11.0)  # 1..10
    assert iv.conformal_quantile(s, 0.8) == 9.0    # ceil(11 * 0.8) = 9th smallest
    assert iv.conformal_quantile(s, 0.95) == 10.0  # beyond n: the largest
    assert iv.conformal_quantile(np.array([np.nan, 2.0]), 0.5) == 2.0
    assert math.isinf(iv.conformal_quantile(np.array([]), 0.8))


def test_fit_widens_a_band_that_is_too_narrow():
    errors = np.linspace(-4, 4, 40)  # the band +-1 holds only a few of these
    factor, absolute = iv.fit(bt(10 + errors), 0.8)
    assert factor > 3
    band = iv.apply(bt(10 + errors), factor, absolute)
    inside = (band["yhat_lower"] <= 10 + errors) & (10 + errors <= band["yhat_upper"])
    assert inside.mean() >= 0.8
    np.testing.assert_allclose(band["yhat"], 10.0)


def test_fit_narrows_a_band_that_is_too_wide_and_keeps_asymmetry():
    rows = bt(10 + np.linspace(-0.5, 0.5, 30), half=5.0)
    rows["yhat_upper"] = 20.0  # upper side twice as wide as the lower (+10 / -5)
    factor, _ = iv.fit(rows, 0.8)
    assert factor < 0.2
    out = iv.apply(rows, factor, 0.0)
    up, down = out["yhat_upper"] - out["yhat"], out["yhat"] - out["yhat_lower"]
    np.testing.assert_allclose(up, 2 * down)


def test_zero_width_band_uses_absolute_errors():
    rows = bt(10 + np.array([1.0, -2.0, 3.0, -4.0]), half=0.0)
    factor, absolute = iv.fit(rows, 0.5)
    assert factor == 1.0 and absolute == 3.0  # ceil(5 * 0.5) = 3rd smallest of |e| = 1, 2, 3, 4
    out = iv.apply(rows, factor, absolute)
    np.testing.assert_allclose(out["yhat_upper"] - out["yhat"], 3.0)
    np.testing.assert_allclose(out["yhat"] - out["yhat_lower"], 3.0)


def test_the_backtest_factor_applies_to_the_future():
    future = pd.DataFrame({"yhat": [5.0, 6.0], "yhat_lower": [4.0, 4.0], "yhat_upper": [6.0, 8.0]})
    out = iv.apply(future, *iv.fit(bt(10 + np.linspace(-2, 2, 20)), 0.8))
    factor, _ = iv.fit(bt(10 + np.linspace(-2, 2, 20)), 0.8)
    np.testing.assert_allclose(out["yhat_upper"] - out["yhat"], factor * np.array([1.0, 2.0]))


def test_cv_coverage_is_leave_one_fold_out():
    # Fold 0 errors are small, fold 1 errors large: each fold's band is fitted on the other one only.
    y = np.r_[10 + np.linspace(-0.1, 0.1, 10), 10 + np.linspace(-5, 5, 10)]
    cov = iv.cv_coverage(bt(y), 0.8)
    assert 0.4 <= cov <= 0.6  # fold 0 fully inside (wide band from fold 1), fold 1 mostly outside
    assert math.isnan(iv.cv_coverage(bt(y, folds=1), 0.8))


def test_bad_input_is_a_model_error():
    with pytest.raises(ModelError, match="missing column"):
        iv.fit(bt([1.0, 2.0]).drop(columns="yhat_upper"), 0.8)
    with pytest.raises(ModelError, match="between 0 and 1"):
        iv.fit(bt([1.0, 2.0]), 1.5)
    with pytest.raises(ModelError, match="no backtest points"):
        iv.fit(bt([1.0, 2.0]).iloc[:0], 0.8)
    two = pd.concat([bt([1.0]), bt([2.0]).assign(model="other")])
    with pytest.raises(ModelError, match="one model at a time"):
        iv.cv_coverage(two, 0.8)
    with pytest.raises(ModelError, match="finite"):
        iv.apply(bt([1.0]), math.inf, 0.0)
