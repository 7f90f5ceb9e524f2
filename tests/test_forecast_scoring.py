"""scoring.py: rolling-origin backtest, metrics on hand examples, selection rules."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from datastory import config
from datastory.errors import ModelError
from datastory.forecast import models
from datastory.forecast import scoring as bt


def cfg(**kw) -> config.ForecastParams:
    base = {"freq": "M", "horizon": 3, "folds": 2, "engine": "local", "models": ["seasonal_naive"]}
    return config.ForecastParams(**{**base, **kw})


def monthly(values) -> pd.Series:
    return pd.Series(np.asarray(values, dtype=float), index=pd.date_range("2020-01-01", periods=len(values),
                                                                          freq="MS"), name="s")


def constant_model(value: float):
    def fit(train, horizon, freq, c):
        idx = models.future_index(train.index[-1], horizon, freq)
        return pd.DataFrame({"yhat": value, "yhat_lower": value - 1.0, "yhat_upper": value + 1.0}, index=idx)
    return fit


def test_metrics_hand_example():
    y = np.array([10.0, 20.0, 0.0, 4.0])
    yhat = np.array([12.0, 20.0, 0.0, 2.0])
    # MAE = (2 + 0 + 0 + 2) / 4 = 1; scale 2 -> MASE 0.5
    assert bt.mase(y, yhat, 2.0) == pytest.approx(0.5)
    # sMAPE: 2*2/22, 0, 0/0 -> 0, 2*2/6 ; mean over 4
    assert bt.smape(y, yhat) == pytest.approx((4 / 22 + 0 + 0 + 4 / 6) / 4)
    assert bt.coverage(y, [9, 21, 0, 5], [11, 22, 1, 6]) == pytest.approx(0.5)  # 10 in, 20 out, 0 in, 4 out
    assert bt.mase(y, y, 0.0) == 0.0
    assert np.isnan(bt.mase(y, yhat, 0.0))


def test_naive_scale_uses_seasonal_lag():
    daily = np.arange(20, dtype=float) ** 2
    m = 7  # D season, 20 > 7
    assert bt.naive_scale(daily, "D") == pytest.approx(np.mean(np.abs(daily[m:] - daily[:-m])))
    short = np.array([1.0, 4.0, 2.0])  # shorter than a season -> lag 1
    assert bt.naive_scale(short, "M") == pytest.approx((3 + 2) / 2)


def test_backtest_folds_tile_the_end():
    y = monthly(np.arange(30) * 1.0)
    frame = bt.backtest(y, cfg(), fitters={"seasonal_naive": constant_model(5.0)})
    assert list(frame.columns) == bt.BACKTEST_COLUMNS
    assert list(frame["fold"]) == [0, 0, 0, 1, 1, 1]
    assert list(frame["ds"]) == list(y.index[-6:])  # origins n-6 and n-3, horizon 3 each
    np.testing.assert_allclose(frame["y"], y.to_numpy()[-6:])


def test_score_by_hand_with_constant_model():
    y = monthly([1.0, 3.0, 2.0, 5.0, 4.0, 6.0, 8.0, 7.0])  # 8 months (< 1 season -> lag-1 scale)
    c = cfg(horizon=2, folds=2)
    frame = bt.backtest(y, c, fitters={"seasonal_naive": constant_model(5.0)})
    scores = bt.score(frame, y, c)
    v = y.to_numpy()
    exp_mase, exp_smape, exp_cov = [], [], []
    for origin in (4, 6):
        test = v[origin:origin + 2]
        scale = np.mean(np.abs(np.diff(v[:origin])))
        exp_mase.append(np.mean(np.abs(test - 5.0)) / scale)
        exp_smape.append(np.mean(2 * np.abs(test - 5.0) / (np.abs(test) + 5.0)))
        exp_cov.append(np.mean((test >= 4.0) & (test <= 6.0)))
    row = scores.iloc[0]
    assert row["model"] == "seasonal_naive"
    assert row["mase"] == pytest.approx(np.mean(exp_mase))
    assert row["smape"] == pytest.approx(np.mean(exp_smape))
    assert row["coverage"] == pytest.approx(np.mean(exp_cov))


def test_seasonal_naive_is_perfect_on_a_periodic_series():
    y = monthly(np.tile([5.0, 9.0, 1.0, 7.0, 3.0, 8.0, 2.0, 6.0, 4.0, 10.0, 11.0, 12.0], 4))
    c = cfg(horizon=6, folds=3)
    scores = bt.score(bt.backtest(y, c), y, c)
    assert scores["mase"].iloc[0] == pytest.approx(0.0)
    assert scores["coverage"].iloc[0] == pytest.approx(1.0)


def test_select_lowest_mase_ties_to_simpler_nan_last():
    s = pd.DataFrame({"model": ["prophet", "ets", "seasonal_naive"], "mase": [0.5, 0.7, 0.9],
                      "smape": 0.1, "coverage": 0.8})
    assert bt.select(s) == "prophet"
    s["mase"] = [0.7, 0.7, 0.9]
    assert bt.select(s) == "ets"
    s["mase"] = [np.nan, np.nan, 2.0]
    assert bt.select(s) == "seasonal_naive"


# ------------------------------------------------------------------ negative
def test_too_short_for_folds():
    y = monthly(np.arange(8) * 1.0)
    with pytest.raises(ModelError, match=r"has 8 M periods; a backtest of 2 fold\(s\) x horizon 3 needs at least 9"):
        bt.backtest(y, cfg())


def test_backtest_rejects_non_numeric_and_unknown_model():
    y = pd.Series(list("abcdefghijkl"), index=pd.date_range("2020-01-01", periods=12, freq="MS"))
    with pytest.raises(ModelError, match="numeric"):
        bt.backtest(y, cfg())
    with pytest.raises(ModelError, match="unknown model"):
        bt.backtest(monthly(np.arange(20) * 1.0), cfg(), models=["arima"])


def test_backtest_rejects_wrong_dates_from_a_model():
    def shifted(train, horizon, freq, c):
        idx = models.future_index(train.index[-1] + pd.offsets.MonthBegin(1), horizon, freq)
        return pd.DataFrame({"yhat": 1.0, "yhat_lower": 0.0, "yhat_upper": 2.0}, index=idx)
    with pytest.raises(ModelError, match="do not match"):
        bt.backtest(monthly(np.arange(20) * 1.0), cfg(), fitters={"seasonal_naive": shifted})


def test_score_and_select_bad_input():
    with pytest.raises(ModelError, match="missing column"):
        bt.score(pd.DataFrame({"model": []}), monthly(np.arange(20) * 1.0), cfg())
    with pytest.raises(ModelError, match="no model produced a backtest"):
        bt.select(pd.DataFrame(columns=bt.SCORE_COLUMNS))
