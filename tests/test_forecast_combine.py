"""forecast.combine: inverse-MASE weights, the combination's backtest and future, and the selection margin
chosen on the run's own backtests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from datastory.errors import ModelError
from datastory.forecast import combine, engine
from datastory.forecast import file as ff


def scores(**mase: float) -> pd.DataFrame:
    return pd.DataFrame({"model": list(mase), "mase": list(mase.values()), "smape": 0.1})


def test_weights_inverse_mase_over_the_top_k():
    w = combine.weights(scores(seasonal_naive=2.0, ets=1.0, prophet=4.0), top_k=2)
    assert list(w) == ["ets", "seasonal_naive"]
    assert w["ets"] == pytest.approx(2 / 3) and w["seasonal_naive"] == pytest.approx(1 / 3)
    w3 = combine.weights(scores(seasonal_naive=2.0, ets=1.0, prophet=4.0))
    assert sum(w3.values()) == pytest.approx(1.0) and w3["prophet"] < w3["seasonal_naive"] < w3["ets"]


def test_weights_skip_nan_and_need_two_models():
    assert combine.weights(scores(seasonal_naive=1.0, ets=float("nan"))) == {}
    w = combine.weights(scores(seasonal_naive=0.0, ets=1.0))  # a perfect backtest dominates, no inf
    assert w["seasonal_naive"] > 0.999 and np.isfinite(list(w.values())).all()
    with pytest.raises(ModelError, match="missing column"):
        combine.weights(pd.DataFrame({"model": ["a"]}))
    with pytest.raises(ModelError, match="top_k >= 2"):
        combine.weights(scores(a=1.0, b=2.0), top_k=1)


def backtest_frame(**yhat: list[float]) -> pd.DataFrame:
    """Two folds of two steps per model; actuals 10, 20 | 30, 40."""
    ds = pd.to_datetime(["2024-01-01", "2024-02-01", "2024-03-01", "2024-04-01"])
    return pd.concat([pd.DataFrame({"model": name, "fold": [0, 0, 1, 1], "step": [1, 2, 1, 2], "ds": ds,
                                    "y": [10.0, 20.0, 30.0, 40.0], "yhat": values})
                      for name, values in yhat.items()], ignore_index=True)


def test_combine_backtest_and_future():
    bt = backtest_frame(a=[10.0, 20.0, 30.0, 40.0], b=[20.0, 40.0, 60.0, 80.0])
    out = combine.combine_backtest(bt, {"a": 0.75, "b": 0.25})
    np.testing.assert_allclose(out["yhat"], [12.5, 25.0, 37.5, 50.0])
    assert set(out["model"]) == {combine.NAME} and list(out["fold"]) == [0, 0, 1, 1]
    idx = pd.DatetimeIndex(["2024-05-01", "2024-06-01"])
    fut = combine.combine_future({"a": pd.Series([1.0, 2.0], index=idx), "b": pd.Series([3.0, 6.0], index=idx)},
                                 {"a": 0.5, "b": 0.5})
    np.testing.assert_allclose(fut, [2.0, 4.0])
    assert fut.index.equals(idx)


def test_combine_rejects_mismatched_or_missing_members():
    bt = backtest_frame(a=[1.0] * 4, b=[1.0] * 4)
    bt.loc[bt["model"] == "b", "ds"] += pd.Timedelta(days=1)
    with pytest.raises(ModelError, match="other periods"):
        combine.combine_backtest(bt, {"a": 0.5, "b": 0.5})
    with pytest.raises(ModelError, match="at least 2"):
        combine.combine_backtest(bt, {})
    with pytest.raises(ModelError, match="without a forecast: b"):
        combine.combine_future({"a": pd.Series([1.0])}, {"a": 0.5, "b": 0.5})


def test_candidates_are_the_listed_single_models():
    assert combine.candidates(["seasonal_naive", "combination", "ets"]) == ["seasonal_naive", "ets"]
    with pytest.raises(ModelError, match="list of model names"):
        combine.candidates("ets")


def test_select_keeps_the_combination_unless_a_model_is_clearly_better():
    close = scores(seasonal_naive=1.2, ets=0.95, combination=1.0)
    assert combine.select(close, 0.10) == "combination"  # ets is only 5% better
    assert combine.select(scores(seasonal_naive=1.2, ets=0.85, combination=1.0), 0.10) == "ets"
    assert combine.select(close, 0.0) == "ets"
    assert combine.select(scores(seasonal_naive=1.2, ets=0.9), 0.1) == "ets"  # no combination: plain selection
    assert combine.select(scores(seasonal_naive=1.0, combination=float("nan")), 0.1) == "seasonal_naive"
    with pytest.raises(ModelError, match="margin"):
        combine.select(close, 1.5)
    with pytest.raises(ModelError, match="nothing to select"):
        combine.select(close.iloc[:0], 0.1)


def test_holdout_outcome_scores_the_choice_of_the_earlier_folds_on_the_latest():
    # fold 0: a is right, b is off; fold 1: b is right, a is off. Chosen on fold 0 (a, or the combination
    # when the margin is wide), scored on fold 1.
    bt = backtest_frame(a=[10.0, 20.0, 40.0, 50.0], b=[14.0, 24.0, 30.0, 40.0])
    scales = {0: 1.0, 1: 1.0}
    out = combine.holdout_outcomes(bt, scales, with_combination=True, margins=(0.0, 0.99))
    assert out[0.0] == pytest.approx(10.0)  # a's error on fold 1
    w = combine.weights(scores(a=0.0, b=4.0))
    comb = w["a"] * np.array([40.0, 50.0]) + w["b"] * np.array([30.0, 40.0])
    assert out[0.99] == pytest.approx(np.mean(np.abs(comb - [30.0, 40.0])))
    assert combine.holdout_outcomes(bt[bt["fold"] == 0], scales, True) is None  # one fold: nothing to hold out


def test_choose_margin_takes_the_lowest_mean_outcome_ties_to_the_smaller():
    best, mean = combine.choose_margin([{0.0: 1.0, 0.1: 0.8}, {0.0: 1.0, 0.1: 0.9}], margins=(0.0, 0.1))
    assert best == 0.1 and mean == {0.0: 1.0, 0.1: pytest.approx(0.85)}
    assert combine.choose_margin([{0.0: 1.0, 0.1: 1.0}], margins=(0.0, 0.1))[0] == 0.0
    assert combine.choose_margin([None, None]) == (0.0, {})


def monthly(n: int = 48, seed: int = 5) -> pd.Series:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    y = 100 + 0.8 * t + 15 * np.sin(2 * np.pi * t / 12) + rng.normal(0, 4, n)
    return pd.Series(y, index=pd.date_range("2019-01-01", periods=n, freq="MS"), name="s")


def test_engine_combination_is_the_weighted_average_of_the_best_three():
    cfg = ff.file_params("M", 6, 3, ["seasonal_naive", "theta", "ets", "ces", "combination"], "local", 0)
    raw = engine.forecast_series("s", monthly(), cfg)
    assert set(raw["futures"]) == {"seasonal_naive", "theta", "ets", "ces"}
    done, info = engine.finish([raw], cfg)
    r = done[0]
    _, means, w = combine.scored(raw["backtest"], raw["scales"], [0, 1, 2], True)
    assert len(w) == min(combine.TOP_K, 4) and set(w) == set(raw["futures"])  # every candidate takes part
    assert r["model"] == combine.select(means, info["margin"])
    if r["model"] == combine.NAME:
        expect = sum(wt * raw["futures"][name].to_numpy() for name, wt in w.items())
        np.testing.assert_allclose(r["frame"]["yhat"], expect)
    assert len(r["frame"]) == 6


def test_engine_without_combination_in_models_has_no_such_candidate():
    cfg = ff.file_params("M", 6, 2, ["seasonal_naive", "ets"], "local", 0)
    done, _ = engine.finish([engine.forecast_series("s", monthly(), cfg)], cfg)
    assert done[0]["model"] in {"seasonal_naive", "ets"}
    assert combine.NAME not in set(done[0]["means"]["model"])


def test_a_model_that_fails_to_refit_is_not_a_candidate():
    real = engine.m.MODELS["ets"]

    def ets_fails_on_full_history(train, horizon, freq, c):
        if len(train) == 48:
            raise ModelError("refit failed")
        return real(train, horizon, freq, c)

    cfg = ff.file_params("M", 6, 2, ["seasonal_naive", "ets", "combination"], "local", 0)
    raw = engine.forecast_series("s", monthly(), cfg, {"ets": ets_fails_on_full_history})
    assert set(raw["futures"]) == {"seasonal_naive"} and "refit failed" in raw["errors"]["ets"]
    done, _ = engine.finish([raw], cfg)
    assert done[0]["model"] == "seasonal_naive" and len(done[0]["frame"]) == 6
