"""Forecast models: seasonal naive exactness, the statistical models and Prophet recover a known pattern,
missing periods, bad input."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

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


def test_seasonal_naive_repeats_last_season_exactly_with_two_seasons():
    y = monthly(np.arange(1, 27) ** 1.5)  # 26 months, non-periodic so a wrong lag would show
    out = models.seasonal_naive(y, 15, "M", CFG)
    v = y.to_numpy()
    np.testing.assert_allclose(out, [v[26 - 12 + (h % 12)] for h in range(15)])
    assert out.index[0] == pd.Timestamp("2022-03-01") and out.name == "yhat"


def test_seasonal_naive_is_naive_below_two_seasons():
    """18 months hold one year and a half: not enough to call a repeat of last year seasonal."""
    y = monthly(np.arange(18, dtype=float))
    np.testing.assert_allclose(models.seasonal_naive(y, 3, "M", CFG), [17.0, 17.0, 17.0])


def test_models_fill_a_missing_period_and_prophet_skips_it():
    y = monthly(pattern(40))
    y.iloc[[10, 25]] = np.nan
    for fit in (models.seasonal_naive, models.ets, models.theta, models.ces, models.prophet):
        out = fit(y, 6, "M", CFG)
        assert len(out) == 6 and np.isfinite(out.to_numpy()).all()


def test_recent_level_is_the_mean_of_the_last_known_periods():
    y = monthly([5.0, 50.0, 10.0, np.nan, 20.0, 30.0])
    np.testing.assert_allclose(models.recent_level(y, 2, "M", CFG), [20.0, 20.0])  # last 3 known: 10, 20, 30


@pytest.mark.parametrize("fit, tolerance", [(models.ets, 6.0), (models.theta, 8.0), (models.ces, 8.0)])
def test_statistical_models_recover_trend_and_seasonality(fit, tolerance):
    y = monthly(pattern(72)[:60])
    out = fit(y, 12, "M", CFG)
    truth = 100 + 1.5 * np.arange(60, 72) + 20 * np.sin(2 * np.pi * np.arange(60, 72) / 12)
    # level ~190 with a seasonal swing of 40: a flat or non-seasonal forecast misses by ~15 on average
    assert np.mean(np.abs(out.to_numpy() - truth)) < tolerance
    assert np.corrcoef(out, truth)[0, 1] > 0.95  # the seasonal shape is there


def test_weekly_ets_takes_the_yearly_season_out_with_stl():
    t = np.arange(156)
    y = pd.Series(1000 + 300 * np.sin(2 * np.pi * t / 52) + np.random.default_rng(0).normal(0, 20, 156),
                  index=pd.date_range("2023-01-02", periods=156, freq="W-MON"))
    out = models.ets(y.iloc[:130], 26, "W", CFG)
    assert np.corrcoef(out, y.iloc[130:])[0, 1] > 0.9


@pytest.mark.parametrize("fit", [models.ets, models.theta, models.ces, models.prophet])
def test_constant_history_is_constant(fit):
    assert (fit(monthly([5.0] * 30), 4, "M", CFG) == 5.0).all()


def test_prophet_recovers_trend_and_seasonality_deterministically_and_quietly(caplog, capfd):
    y = monthly(pattern(72)[:60])
    with caplog.at_level(logging.INFO):
        out = models.prophet(y, 12, "M", CFG)
    truth = 100 + 1.5 * np.arange(60, 72) + 20 * np.sin(2 * np.pi * np.arange(60, 72) / 12)
    assert np.mean(np.abs(out.to_numpy() - truth)) < 6.0
    assert np.corrcoef(out, truth)[0, 1] > 0.95
    pd.testing.assert_series_equal(out, models.prophet(y, 12, "M", CFG))
    assert not [r for r in caplog.records if r.name.startswith(("cmdstanpy", "prophet"))
                and r.levelno < logging.WARNING]
    assert "start processing" not in capfd.readouterr().err


def test_get_known_and_unknown():
    y = pd.Series(100.0 + np.arange(40) % 4, index=pd.date_range("2020-01-01", periods=40, freq="QS"))
    pd.testing.assert_series_equal(models.get("ets")(y, 4, "Q", CFG), models.ets(y, 4, "Q", CFG))
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
@pytest.mark.parametrize("fit", [models.seasonal_naive, models.ets, models.theta, models.ces, models.prophet])
def test_unknown_freq(fit):
    with pytest.raises(DataError, match="unknown forecast frequency"):
        fit(monthly(pattern(30)), 3, "Y", CFG)


@pytest.mark.parametrize("fit", [models.seasonal_naive, models.ets, models.theta, models.ces, models.prophet,
                                 models.recent_level])
def test_too_short(fit):
    with pytest.raises(ModelError, match="at least 3"):
        fit(monthly([1.0, np.nan, 2.0]), 3, "M", CFG)


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


def test_infinite_value_and_irregular_dates():
    y = monthly(pattern(20))
    y.iloc[4] = np.inf
    with pytest.raises(ModelError, match="infinite value") as exc:
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


def test_prophet_leaves_no_files_behind(tmp_path, monkeypatch):
    """cmdstan's output files go to a folder removed after the fit, not to cmdstanpy's own temporary folder,
    which only a normal process exit removes (a Dask worker is stopped instead)."""
    import cmdstanpy

    before = set(Path(cmdstanpy._TMPDIR).iterdir())
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where the fit's own folder goes
    out = models.prophet(monthly(pattern(36)), 6, "M", CFG)
    assert len(out) == 6 and np.isfinite(out.to_numpy()).all()
    assert set(Path(cmdstanpy._TMPDIR).iterdir()) == before
    assert not list(tmp_path.iterdir())
