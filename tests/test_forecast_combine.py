"""forecast.combine: inverse-MASE weights, weighted averages, and the engine's combination candidate."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from datastory.errors import ModelError
from datastory.forecast import combine, engine
from datastory.forecast import file as ff


def scores(**mase: float) -> pd.DataFrame:
    return pd.DataFrame({"model": list(mase), "mase": list(mase.values()), "smape": 0.1, "coverage": 0.8})


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


def test_combine_future_frames():
    idx = pd.DatetimeIndex(["2024-01-01", "2024-02-01"], name="ds")
    a = pd.DataFrame({"yhat": [10.0, 20.0], "yhat_lower": [8.0, 18.0], "yhat_upper": [12.0, 22.0]}, index=idx)
    b = a * 2
    out = combine.combine({"a": a, "b": b}, {"a": 0.75, "b": 0.25})
    np.testing.assert_allclose(out["yhat"], [12.5, 25.0])
    np.testing.assert_allclose(out["yhat_upper"], [15.0, 27.5])
    assert out.index.equals(idx)


def test_combine_rejects_mismatched_or_missing_members():
    a = pd.DataFrame({"yhat": [1.0], "yhat_lower": [0.0], "yhat_upper": [2.0]},
                     index=pd.DatetimeIndex(["2024-01-01"]))
    b = a.set_axis(pd.DatetimeIndex(["2024-02-01"]))
    with pytest.raises(ModelError, match="other periods"):
        combine.combine({"a": a, "b": b}, {"a": 0.5, "b": 0.5})
    with pytest.raises(ModelError, match="without a forecast: b"):
        combine.combine({"a": a}, {"a": 0.5, "b": 0.5})
    with pytest.raises(ModelError, match="at least 2"):
        combine.combine({"a": a}, {})
    with pytest.raises(ModelError, match="missing column"):
        combine.weights(pd.DataFrame({"model": ["a"]}))
    with pytest.raises(ModelError, match="top_k >= 2"):
        combine.weights(scores(a=1.0, b=2.0), top_k=1)


def monthly(n: int = 48, seed: int = 5) -> pd.Series:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    y = 100 + 0.8 * t + 15 * np.sin(2 * np.pi * t / 12) + rng.normal(0, 4, n)
    return pd.Series(y, index=pd.date_range("2019-01-01", periods=n, freq="MS"), name="s")


def test_engine_combination_candidate_is_scored_and_consistent():
    cfg = ff.file_params("M", 6, 2, ["seasonal_naive", "ets", "combination"], "local", 0)
    y = monthly()
    r = engine.forecast_series("s", y, cfg)
    sc = r["scores"].set_index("model")
    assert set(sc.index) == {"seasonal_naive", "ets", "theta", "combination"}  # Theta comes with it
    bt = r["backtest"]
    parts = {name: g.reset_index(drop=True) for name, g in bt.groupby("model")}
    w = combine.weights(r["scores"][r["scores"]["model"] != "combination"])
    assert len(w) == combine.TOP_K
    expect = sum(wt * parts[name]["yhat"].to_numpy() for name, wt in w.items())
    np.testing.assert_allclose(parts["combination"]["yhat"], expect)
    singles = sc.drop(index="combination")["mase"]
    if r["model"] == "combination":
        assert singles.min() >= (1 - combine.MARGIN) * sc.loc["combination", "mase"]
    else:
        assert sc.loc[r["model"], "mase"] == singles.min()
        assert singles.min() < (1 - combine.MARGIN) * sc.loc["combination", "mase"]
    assert len(r["future"]) == 6


def test_candidates_add_theta_only_with_the_combination():
    assert combine.candidates(["seasonal_naive", "ets"]) == ["seasonal_naive", "ets"]
    assert combine.candidates(["seasonal_naive", "combination", "ets"]) == ["seasonal_naive", "ets", "theta"]
    with pytest.raises(ModelError, match="list of model names"):
        combine.candidates("ets")


def test_select_keeps_the_combination_unless_a_model_is_clearly_better():
    close = scores(seasonal_naive=1.2, ets=0.95, combination=1.0)
    assert combine.select(close) == "combination"  # ets is only 5% better: not enough evidence
    clear = scores(seasonal_naive=1.2, ets=0.85, combination=1.0)
    assert combine.select(clear) == "ets"  # 15% better
    assert combine.select(close, margin=0.0) == "ets"
    assert combine.select(scores(seasonal_naive=1.2, ets=0.9)) == "ets"  # no combination: plain selection
    assert combine.select(scores(seasonal_naive=1.0, combination=float("nan"))) == "seasonal_naive"
    with pytest.raises(ModelError, match="margin"):
        combine.select(close, margin=1.5)
    with pytest.raises(ModelError, match="nothing to select"):
        combine.select(close.iloc[:0])


def test_engine_without_combination_in_models_has_no_such_candidate():
    r = engine.forecast_series("s", monthly(), ff.file_params("M", 6, 2, ["seasonal_naive", "ets"], "local", 0))
    assert "combination" not in set(r["scores"]["model"])


def test_engine_combination_refit_failure_falls_back(monkeypatch):
    real = engine.m.MODELS["ets"]

    def ets_fails_on_full_history(train, horizon, freq, c):
        if len(train) == 48:
            raise ModelError("refit failed")
        return real(train, horizon, freq, c)

    cfg = ff.file_params("M", 6, 2, ["seasonal_naive", "ets", "combination"], "local", 0)
    r = engine.forecast_series("s", monthly(), cfg, {"ets": ets_fails_on_full_history})
    assert r["scores"].set_index("model")["mase"].idxmin() != "seasonal_naive"  # ETS or the combination won
    assert r["model"] == "seasonal_naive" and len(r["future"]) == 6  # ... but could not refit: the fallback
    assert "refit failed" in next(iter(r["errors"].values()))
