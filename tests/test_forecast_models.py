"""Forecast models: seasonal naive exactness, ETS/Prophet recover a known pattern, bad input."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from datastory import config
from datastory.errors import DataError, ModelError
from datastory.forecast import models

CFG = config.ForecastParams(engine="local")


def monthly(values, start="2020-01-01") -> pd.Series:
    return pd.Series(np.asarray(values, dtype=float), index=pd.date_range(start, periods=len(values), freq="MS"))


def pattern(n: int, noise: float = 1.0, seed: int = 0) -> np.ndarray:
    """Level 100, trend +1.5 per month, yearly seasonality of amplitude 20, small noise."""
    t = np.arange(n)
    return 100 + 1.5 * t + 20 * np.sin(2 * np.pi * t / 12) + np.random.default_rng(seed).normal(0, noise, n)


def test_future_index_period_starts():
    idx = models.future_index(pd.Timestamp("2025-01-06"), 3, "W")
    assert list(idx) == list(pd.to_datetime(["2025-01-13", "2025-01-20", "2025-01-27"]))
    assert list(models.future_index(pd.Timestamp("2025-01-01"), 2, "M")) == list(
        pd.to_datetime(["2025-02-01", "2025-03-01"]))


def test_seasonal_naive_repeats_last_season_exactly():
    y = monthly(np.arange(1, 27) ** 1.5)  # 26 months, non-periodic so a wrong lag would show
    out = models.seasonal_naive(y, 15, "M", CFG)
    v = y.to_numpy()
    expected = [v[26 - 12 + (h % 12)] for h in range(15)]
    np.testing.assert_allclose(out["yhat"], expected)
    assert out.index[0] == pd.Timestamp("2022-03-01")
    # half-width: 80% quantile of |y_t - y_{t-12}|, times sqrt(seasons ahead)
    half = np.quantile(np.abs(v[12:] - v[:-12]), 0.8)
    np.testing.assert_allclose((out["yhat_upper"] - out["yhat"]).iloc[:12], half)
    np.testing.assert_allclose((out["yhat"] - out["yhat_lower"]).iloc[12:], half * np.sqrt(2))


def test_seasonal_naive_falls_back_to_naive_below_one_season():
    y = monthly([10.0, 12.0, 11.0, 15.0, 14.0])
    out = models.seasonal_naive(y, 3, "M", CFG)
    np.testing.assert_allclose(out["yhat"], [14.0, 14.0, 14.0])
    half = np.quantile(np.abs(np.diff(y.to_numpy())), 0.8)
    np.testing.assert_allclose(out["yhat_upper"] - out["yhat"], half * np.sqrt([1, 2, 3]))


def test_ets_recovers_trend_and_seasonality():
    full = pattern(72)
    y = monthly(full[:60])
    out = models.ets(y, 12, "M", CFG)
    truth = 100 + 1.5 * np.arange(60, 72) + 20 * np.sin(2 * np.pi * np.arange(60, 72) / 12)
    # level ~190 with a seasonal swing of 40: a flat or non-seasonal forecast misses by ~15 on average
    assert np.mean(np.abs(out["yhat"].to_numpy() - truth)) < 6.0
    assert np.corrcoef(out["yhat"], truth)[0, 1] > 0.95  # the seasonal shape is there
    assert (out["yhat_lower"] <= out["yhat"]).all() and (out["yhat"] <= out["yhat_upper"]).all()


def test_ets_constant_history_is_constant():
    out = models.ets(monthly([5.0] * 30), 4, "M", CFG)
    assert (out["yhat"] == 5.0).all()


def test_theta_recovers_trend_and_seasonality():
    full = pattern(72)
    out = models.theta(monthly(full[:60]), 12, "M", CFG)
    truth = 100 + 1.5 * np.arange(60, 72) + 20 * np.sin(2 * np.pi * np.arange(60, 72) / 12)
    assert np.mean(np.abs(out["yhat"].to_numpy() - truth)) < 8.0
    assert np.corrcoef(out["yhat"], truth)[0, 1] > 0.95
    assert (out["yhat_lower"] <= out["yhat"]).all() and (out["yhat"] <= out["yhat_upper"]).all()


def test_theta_constant_history_and_short_history():
    out = models.theta(monthly([5.0] * 30), 4, "M", CFG)
    assert (out["yhat"] == 5.0).all()
    short = models.theta(monthly([10.0, 12.0, 11.0, 15.0, 14.0]), 3, "M", CFG)  # < 2 seasons: no adjustment
    assert np.isfinite(short.to_numpy()).all() and len(short) == 3


def test_prophet_recovers_trend_and_seasonality_deterministically(caplog, capfd):
    full = pattern(72)
    y = monthly(full[:60])
    with caplog.at_level(logging.INFO):
        out = models.prophet(y, 12, "M", CFG)
    truth = 100 + 1.5 * np.arange(60, 72) + 20 * np.sin(2 * np.pi * np.arange(60, 72) / 12)
    assert np.mean(np.abs(out["yhat"].to_numpy() - truth)) < 6.0
    assert np.corrcoef(out["yhat"], truth)[0, 1] > 0.95
    assert (out["yhat_lower"] <= out["yhat"]).all() and (out["yhat"] <= out["yhat_upper"]).all()
    again = models.prophet(y, 12, "M", CFG)
    pd.testing.assert_frame_equal(out, again)
    # quiet: no cmdstanpy / prophet INFO lines
    assert not [r for r in caplog.records if r.name.startswith(("cmdstanpy", "prophet"))
                and r.levelno < logging.WARNING]
    assert "start processing" not in capfd.readouterr().err


def test_prophet_band_ignores_other_threads_drawing_from_numpys_global_generator():
    """A Dask worker's event loop calls np.random (dask's sizeof samples object columns) while a task runs;
    the band must not move with it (it did when Prophet sampled its band from that generator)."""
    import threading

    y = monthly(pattern(60))
    quiet = models.prophet(y, 12, "M", CFG)
    stop = threading.Event()

    def draw():
        while not stop.is_set():
            np.random.choice(np.arange(100), size=100)

    worker = threading.Thread(target=draw)
    worker.start()
    try:
        busy = [models.prophet(y, 12, "M", CFG) for _ in range(3)]
    finally:
        stop.set()
        worker.join()
    for out in busy:
        pd.testing.assert_frame_equal(out, quiet)


def test_prophet_band_matches_prophets_own_simulation():
    """The closed-form band has the spread of Prophet's simulated futures (its trend changes plus noise)."""
    from prophet import Prophet

    models._quiet_prophet()
    y = monthly(pattern(60, noise=6.0))
    model = Prophet(mcmc_samples=0, uncertainty_samples=0, yearly_seasonality=5, weekly_seasonality=False,
                    daily_seasonality=False, seasonality_mode="multiplicative")
    model.fit(pd.DataFrame({"ds": y.index, "y": y.to_numpy()}), seed=0, algorithm="LBFGS")
    idx = models.future_index(y.index[-1], 24, "M")
    fc = model.predict(pd.DataFrame({"ds": idx}))
    lower, upper = models.prophet_band(model, fc, 0.8)
    sd_closed = (upper - lower) / (2 * 1.2815515655446004)

    np.random.seed(1)
    model.uncertainty_samples = 20000
    sims = model.sample_posterior_predictive(model.setup_dataframe(pd.DataFrame({"ds": idx})), True)["yhat"]
    sd_sim = sims.std(axis=1)
    np.testing.assert_allclose(sd_closed, sd_sim, rtol=0.05)
    assert sd_closed[-1] > sd_closed[0]  # the trend's uncertainty grows with the horizon


def test_get_known_and_unknown():
    y = pd.Series(100.0 + np.arange(40) % 4, index=pd.date_range("2020-01-01", periods=40, freq="QS"))
    pd.testing.assert_frame_equal(models.get("ets")(y, 4, "Q", CFG), models.ets(y, 4, "Q", CFG))
    with pytest.raises(ModelError, match="unknown model 'arima'"):
        models.get("arima")


def test_get_fits_on_the_history_the_outlier_setting_leaves():
    seen = []
    def spy(train, horizon, freq, cfg):
        seen.append(train.copy())
        return models.seasonal_naive(train, horizon, freq, cfg)
    y = pd.Series(100.0 + np.arange(40) % 4, index=pd.date_range("2020-01-01", periods=40, freq="QS"))
    y.iloc[20] = 1000.0
    clip = CFG.model_copy(update={"outliers": "clip"})
    models.get("spy", {"spy": spy})(y, 4, "Q", clip)
    models.get("spy", {"spy": spy})(y, 4, "Q", CFG)
    assert seen[0].iloc[20] < 200 and seen[1].iloc[20] == 1000.0


# ------------------------------------------------------------------ negative
@pytest.mark.parametrize("fit", [models.seasonal_naive, models.ets, models.theta, models.prophet])
def test_unknown_freq(fit):
    with pytest.raises(DataError, match="unknown forecast frequency"):
        fit(monthly(pattern(30)), 3, "Y", CFG)


@pytest.mark.parametrize("fit", [models.seasonal_naive, models.ets, models.theta, models.prophet])
def test_too_short(fit):
    with pytest.raises(ModelError, match="at least 3"):
        fit(monthly([1.0, 2.0]), 3, "M", CFG)


def test_non_numeric():
    y = pd.Series(["a"] * 20, index=pd.date_range("2020-01-01", periods=20, freq="MS"))
    with pytest.raises(ModelError, match="must be numeric"):
        models.seasonal_naive(y, 3, "M", CFG)


def test_duplicate_dates():
    y = monthly(pattern(20))
    y.index = y.index[:-1].append(y.index[-2:-1])
    with pytest.raises(ModelError, match="duplicate date") as exc:
        models.ets(y, 3, "M", CFG)
    assert exc.value.column == "ds"


def test_missing_value_and_irregular_dates():
    y = monthly(pattern(20))
    y.iloc[4] = np.nan
    with pytest.raises(ModelError, match="missing or infinite") as exc:
        models.seasonal_naive(y, 3, "M", CFG)
    assert exc.value.row == 4
    weekly_sundays = pd.Series(1.0, index=pd.date_range("2025-01-05", periods=10, freq="W-SUN"))
    with pytest.raises(ModelError, match="not consecutive W periods"):
        models.seasonal_naive(weekly_sundays, 3, "W", CFG)


def test_bad_horizon_and_type():
    with pytest.raises(ModelError, match="horizon must be a positive integer"):
        models.seasonal_naive(monthly(pattern(20)), 0, "M", CFG)
    with pytest.raises(ModelError, match="pandas Series"):
        models.seasonal_naive(pattern(20), 3, "M", CFG)



def test_prophet_on_just_under_two_years_logs_nothing(caplog):
    y = pd.Series(100.0 + 10 * np.sin(np.arange(726) / 58.0),
                  index=pd.date_range("2023-01-01", periods=726, freq="D"))
    with caplog.at_level(logging.WARNING):
        out = models.prophet(y, 7, "D", CFG)
    assert len(out) == 7 and not [r for r in caplog.records if "Yearly seasonality" in r.getMessage()]
