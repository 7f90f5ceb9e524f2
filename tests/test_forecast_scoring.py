"""scoring.py: rolling-origin backtest over the folds a history allows, metrics on hand examples, selection."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from datastory import config
from datastory.errors import ModelError
from datastory.forecast import history, models
from datastory.forecast import scoring as bt


def cfg(**kw) -> config.ForecastParams:
    base = {"freq": "M", "horizon": 3, "folds": 2, "engine": "local", "models": ["seasonal_naive"]}
    return config.ForecastParams(**{**base, **kw})


def monthly(values) -> pd.Series:
    return pd.Series(np.asarray(values, dtype=float), index=pd.date_range("2020-01-01", periods=len(values),
                                                                          freq="MS"), name="s")


def prep(y: pd.Series, c: config.ForecastParams, fill: str = "zero", closures=()) -> history.Prepared:
    return history.prepare(y, c.freq, c.horizon, c.folds, fill, list(closures))


def constant_model(value: float):
    def fit(train, horizon, freq, c):
        return pd.Series(value, index=models.future_index(train.index[-1], horizon, freq), name="yhat")
    return fit


def test_metrics_hand_example():
    y = np.array([10.0, 20.0, 0.0, 4.0])
    yhat = np.array([12.0, 20.0, 0.0, 2.0])
    # MAE = (2 + 0 + 0 + 2) / 4 = 1; scale 2 -> MASE 0.5
    assert bt.mase(y, yhat, 2.0) == pytest.approx(0.5)
    # sMAPE: 2*2/22, 0, 0/0 -> 0, 2*2/6 ; mean over 4
    assert bt.smape(y, yhat) == pytest.approx((4 / 22 + 0 + 0 + 4 / 6) / 4)
    assert bt.mase(y, y, 0.0) == 0.0
    assert np.isnan(bt.mase(y, yhat, 0.0)) and np.isnan(bt.mase(y, yhat, np.nan))


def test_naive_scale_uses_the_seasonal_lag_only_with_two_seasons_and_skips_gaps():
    daily = np.arange(20, dtype=float) ** 2
    assert bt.naive_scale(daily, "D") == pytest.approx(np.mean(np.abs(daily[7:] - daily[:-7])))
    short = np.array([1.0, 4.0, 2.0])  # fewer than two seasons -> lag 1
    assert bt.naive_scale(short, "M") == pytest.approx((3 + 2) / 2)
    gappy = np.array([1.0, np.nan, 2.0, 4.0])  # only the pair (2, 4) is known
    assert bt.naive_scale(gappy, "M") == pytest.approx(2.0)
    assert np.isnan(bt.naive_scale(np.array([1.0]), "M"))


def test_backtest_folds_tile_the_end():
    y = monthly(np.arange(1, 31) * 1.0)
    c = cfg()
    frame = bt.backtest(prep(y, c), c, "seasonal_naive", {"seasonal_naive": constant_model(5.0)})
    assert list(frame.columns) == bt.BACKTEST_COLUMNS
    assert list(frame["fold"]) == [0, 0, 0, 1, 1, 1] and list(frame["step"]) == [1, 2, 3, 1, 2, 3]
    assert list(frame["ds"]) == list(y.index[-6:])  # origins n-6 and n-3, horizon 3 each
    np.testing.assert_allclose(frame["y"], y.to_numpy()[-6:])


def test_a_short_history_gets_fewer_folds():
    c = cfg(horizon=3, folds=3)
    p = prep(monthly(np.arange(1, 11) * 1.0), c)  # 10 months: min training 4, so 2 folds of 3
    assert p.plan.folds == 2
    assert bt.backtest(p, c, "seasonal_naive")["fold"].nunique() == 2


def test_gaps_are_never_scored_and_closures_are_applied():
    y = monthly(np.full(24, 70.0))
    y.iloc[-2] = np.nan
    c = cfg(horizon=3, folds=1)
    frame = bt.backtest(prep(y, c, fill="interpolate"), c, "seasonal_naive")
    assert len(frame) == 2 and frame["y"].notna().all()  # the missing month is not an actual
    closed = bt.backtest(prep(monthly(np.full(24, 70.0)), c, closures=["2021-12-01..2021-12-31"]), c,
                         "seasonal_naive")
    assert closed["yhat"].iloc[-1] == 0.0  # a month the business is shut forecasts 0


def test_non_negative_series_never_get_negative_backtest_forecasts():
    y = monthly(np.r_[np.linspace(100, 10, 20), [5.0, 3.0, 2.0]])
    c = cfg(horizon=3, folds=1)
    falling = bt.backtest(prep(y, c), c, "x", {"x": constant_model(-50.0)})
    assert (falling["yhat"] == 0.0).all()


def test_fold_scores_and_score_by_hand_with_a_constant_model():
    y = monthly([1.0, 3.0, 2.0, 5.0, 4.0, 6.0, 8.0, 7.0, 9.0, 10.0])
    c = cfg(horizon=2, folds=2)
    p = prep(y, c)
    frame = bt.backtest(p, c, "c", {"c": constant_model(5.0)})
    per_fold = bt.fold_scores(frame, bt.fold_scales(p, c))
    v = y.to_numpy()
    exp = []
    for origin in (6, 8):
        test = v[origin:origin + 2]
        scale = np.mean(np.abs(np.diff(v[:origin])))
        exp.append((np.mean(np.abs(test - 5.0)) / scale, np.mean(2 * np.abs(test - 5.0) / (np.abs(test) + 5.0))))
    np.testing.assert_allclose(per_fold[["mase", "smape"]].to_numpy(), exp)
    means = bt.score(per_fold)
    assert means["mase"].iloc[0] == pytest.approx(np.mean([e[0] for e in exp]))


def test_seasonal_naive_is_perfect_on_a_periodic_series():
    y = monthly(np.tile([5.0, 9.0, 1.0, 7.0, 3.0, 8.0, 2.0, 6.0, 4.0, 10.0, 11.0, 12.0], 4))
    c = cfg(horizon=6, folds=2)
    p = prep(y, c)
    scores = bt.score(bt.fold_scores(bt.backtest(p, c, "seasonal_naive"), bt.fold_scales(p, c)))
    assert scores["mase"].iloc[0] == pytest.approx(0.0)


def test_select_lowest_mase_ties_to_simpler_nan_last():
    s = pd.DataFrame({"model": ["prophet", "ets", "seasonal_naive"], "mase": [0.5, 0.7, 0.9], "smape": 0.1})
    assert bt.select(s) == "prophet"
    s["mase"] = [0.7, 0.7, 0.9]
    assert bt.select(s) == "ets"
    s["mase"] = [np.nan, np.nan, 2.0]
    assert bt.select(s) == "seasonal_naive"


# ------------------------------------------------------------------ negative
def test_backtest_rejects_an_unknown_model_and_wrong_dates():
    c = cfg()
    p = prep(monthly(np.arange(1, 21) * 1.0), c)
    with pytest.raises(ModelError, match="unknown model"):
        bt.backtest(p, c, "arima")

    def shifted(train, horizon, freq, cc):
        idx = models.future_index(train.index[-1] + pd.offsets.MonthBegin(1), horizon, freq)
        return pd.Series(1.0, index=idx)
    with pytest.raises(ModelError, match="do not match"):
        bt.backtest(p, c, "s", {"s": shifted})


def test_fold_scores_and_select_bad_input():
    with pytest.raises(ModelError, match="missing column"):
        bt.fold_scores(pd.DataFrame({"model": []}), {})
    with pytest.raises(ModelError, match="no model produced a backtest"):
        bt.select(pd.DataFrame(columns=bt.SCORE_COLUMNS))
