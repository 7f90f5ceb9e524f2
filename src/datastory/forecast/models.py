"""Forecast models with one signature: fit on a history, predict `horizon` future periods.

`fit_predict(train, horizon, freq, cfg) -> DataFrame[yhat, yhat_lower, yhat_upper]` indexed by the
future period start dates. `train` is revenue indexed by period start (see series.py).
Models are listed simplest first in MODELS; selection breaks ties in that order.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd

from ..config import ForecastParams
from ..errors import ModelError
from . import outliers
from .series import OFFSET, check_freq

SEASON = {"D": 7, "W": 52, "M": 12, "Q": 4}
# Fourier order of Prophet's yearly seasonality: a monthly series has only 12 points a year, a
# quarterly one 4 (order 2 is as many terms as 4 points a year can pin down).
YEARLY_ORDER = {"D": 10, "W": 10, "M": 5, "Q": 2}
MIN_HISTORY = 3  # periods a model needs at the very least
Fitter = Callable[[pd.Series, int, str, ForecastParams], pd.DataFrame]
OUT_COLUMNS = ["yhat", "yhat_lower", "yhat_upper"]


def future_index(last: pd.Timestamp, horizon: int, freq: str) -> pd.DatetimeIndex:
    """The `horizon` period start dates after `last`."""
    check_freq(freq)
    return pd.date_range(pd.Timestamp(last), periods=horizon + 1, freq=OFFSET[freq])[1:].astype(
        "datetime64[ns]")


def check_train(train: pd.Series, horizon: int, freq: str) -> pd.Series:
    """The history as float64, or a ModelError saying why a model cannot use it."""
    check_freq(freq)
    if not isinstance(train, pd.Series):
        raise ModelError(f"history must be a pandas Series indexed by date, got {type(train).__name__}")
    if not isinstance(horizon, (int, np.integer)) or isinstance(horizon, bool) or horizon < 1:
        raise ModelError(f"horizon must be a positive integer, got {horizon!r}", column="horizon",
                         fix="set horizon >= 1 in params/forecast.yaml")
    if not isinstance(train.index, pd.DatetimeIndex):
        raise ModelError("history must be indexed by dates (a DatetimeIndex)", column="ds")
    if train.index.has_duplicates:
        dup = train.index[train.index.duplicated()][0]
        raise ModelError(f"history has duplicate date {dup:%Y-%m-%d}", column="ds",
                         row=int(np.flatnonzero(train.index == dup)[1]),
                         fix="aggregate to one value per period (forecast.build_series)")
    if not train.index.is_monotonic_increasing:
        raise ModelError("history dates are not in increasing order", column="ds", fix="sort by ds")
    expected = pd.date_range(train.index[0], periods=len(train), freq=OFFSET[freq]) if len(train) else None
    if expected is not None and not expected.equals(pd.DatetimeIndex(train.index, dtype="datetime64[ns]")):
        bad = int(np.flatnonzero(expected != train.index)[0])
        raise ModelError(f"history dates are not consecutive {freq} periods starting on "
                         f"{expected[0]:%Y-%m-%d} (row {bad} is {train.index[bad]:%Y-%m-%d}, "
                         f"expected {expected[bad]:%Y-%m-%d})", row=bad, column="ds",
                         fix="build the series with forecast.build_series (weeks are labelled by Monday, "
                             "months by their first day), filling gaps with 0")
    if not pd.api.types.is_numeric_dtype(train) or pd.api.types.is_bool_dtype(train):
        raise ModelError(f"history values must be numeric, got dtype {train.dtype}", column="y",
                         fix="y is net revenue: convert it to numbers")
    y = train.astype("float64")
    bad = ~np.isfinite(y.to_numpy())
    if bad.any():
        raise ModelError("history has a missing or infinite value", row=int(bad.argmax()), column="y",
                         fix="fill gaps with 0 (forecast.build_series does this)")
    if len(y) < MIN_HISTORY:
        raise ModelError(f"history has {len(y)} period(s); a model needs at least {MIN_HISTORY}",
                         fix="load more history or use a finer freq")
    return y


def _frame(index: pd.DatetimeIndex, yhat, lower, upper) -> pd.DataFrame:
    out = pd.DataFrame({"yhat": yhat, "yhat_lower": lower, "yhat_upper": upper}, index=index,
                       dtype="float64")
    out.index.name = "ds"
    if not np.isfinite(out.to_numpy()).all():
        raise ModelError("model produced a non-finite forecast")
    return out


def season_length(n: int, freq: str) -> int:
    """The seasonal lag to use on `n` periods: one season if more than a season is known, else 1."""
    m = SEASON[check_freq(freq)]
    return m if n > m else 1


def seasonal_naive(train: pd.Series, horizon: int, freq: str, cfg: ForecastParams) -> pd.DataFrame:
    """Each future period repeats the same period one season earlier (naive if < 1 season of history).

    Interval: yhat +- the `interval_width` quantile of the absolute historical seasonal differences
    |y_t - y_{t-m}| (symmetric, so the point forecast always lies inside its band), widened by
    sqrt(number of seasons ahead) as the errors of repeated seasonal steps add up.
    """
    y = check_train(train, horizon, freq).to_numpy()
    n = len(y)
    m = season_length(n, freq)
    h = np.arange(horizon)
    yhat = y[n - m + (h % m)]
    resid = y[m:] - y[:-m]
    half = float(np.quantile(np.abs(resid), cfg.interval_width)) * np.sqrt(h // m + 1)
    return _frame(future_index(train.index[-1], horizon, freq), yhat, yhat - half, yhat + half)


def ets(train: pd.Series, horizon: int, freq: str, cfg: ForecastParams) -> pd.DataFrame:
    """Exponential smoothing (statsmodels ETS): additive errors, damped additive trend and additive
    seasonality when two full seasons are known. Intervals are the model's analytic ones."""
    from statsmodels.tools.sm_exceptions import ConvergenceWarning
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel

    y = check_train(train, horizon, freq)
    m = SEASON[freq]
    seasonal = "add" if len(y) >= 2 * m + 2 else None
    values = y.to_numpy()
    if np.ptp(values) == 0:
        # A constant history (e.g. a segment that never sold): the forecast is that constant.
        idx = future_index(y.index[-1], horizon, freq)
        return _frame(idx, np.full(horizon, values[0]), np.full(horizon, values[0]), np.full(horizon, values[0]))
    model = ETSModel(pd.Series(values), error="add", trend="add", damped_trend=True, seasonal=seasonal,
                     seasonal_periods=m if seasonal else None, initialization_method="heuristic"
                     if seasonal else "estimated")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        fit = model.fit(disp=False, maxiter=200)
        pred = fit.get_prediction(start=len(values), end=len(values) + horizon - 1)
        frame = pred.summary_frame(alpha=1 - cfg.interval_width)
    return _frame(future_index(y.index[-1], horizon, freq), frame["mean"].to_numpy(),
                  frame["pi_lower"].to_numpy(), frame["pi_upper"].to_numpy())


def theta(train: pd.Series, horizon: int, freq: str, cfg: ForecastParams) -> pd.DataFrame:
    """The Theta method (Assimakopoulos & Nikolopoulos 2000; winner of the M3 competition), statsmodels'
    ThetaModel: simple exponential smoothing plus half the linear trend, on data seasonally adjusted by
    a classical decomposition whenever two full seasons are known (multiplicative for positive data,
    else additive). statsmodels' seasonality test is off: it reads the ACF of the raw series, where a
    trend hides even a strong season.

    Interval: the SES band on the adjusted data, +- z sigma sqrt(1 + (h - 1) alpha^2) with sigma from
    the one-step SES errors, re-seasonalized. (statsmodels' own interval fits an ARIMA by maximum
    likelihood per call, ~50x the cost of the forecast; the engine rescales bands on the backtest anyway.)
    """
    from statsmodels.tsa.forecasting.theta import ThetaModel
    from statsmodels.tsa.seasonal import seasonal_decompose

    y = check_train(train, horizon, freq)
    values = y.to_numpy()
    idx = future_index(y.index[-1], horizon, freq)
    if np.ptp(values) == 0:
        return _frame(idx, np.full(horizon, values[0]), np.full(horizon, values[0]), np.full(horizon, values[0]))
    m, n = SEASON[freq], len(values)
    seasonal = n >= 2 * m and m > 1
    factors, future_factors, multiplicative = np.ones(n), np.ones(horizon), False
    if seasonal:  # the same classical decomposition ThetaModel applies internally (method "auto")
        multiplicative = bool((values > 0).all())
        dec = seasonal_decompose(values, model="mul" if multiplicative else "add", period=m)
        if multiplicative and dec.seasonal.min() <= 0:
            multiplicative = False
            dec = seasonal_decompose(values, model="add", period=m)
        factors = dec.seasonal
        future_factors = factors[(n + np.arange(horizon)) % m]
    model = ThetaModel(pd.Series(values), period=m if seasonal else 1, deseasonalize=seasonal, use_test=False,
                       method=("mul" if multiplicative else "add") if seasonal else "additive")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = model.fit()
        mean = fit.forecast(horizon).to_numpy()
    alpha = float(fit.params["alpha"])
    adjusted = values / factors if multiplicative else values - (factors if seasonal else 0.0)
    level, errors = adjusted[0], []
    for x in adjusted[1:]:
        errors.append(x - level)
        level = alpha * x + (1 - alpha) * level
    sigma = float(np.sqrt(np.mean(np.square(errors))))
    z = NormalDist().inv_cdf(0.5 + cfg.interval_width / 2)
    half = z * sigma * np.sqrt(1 + np.arange(horizon) * alpha ** 2)
    if multiplicative:
        half = half * future_factors
    return _frame(idx, mean, mean - half, mean + half)


# Prophet's warning about yearly seasonality on 723-729 days of history: `prophet` below turns it on from two
# years less a week on purpose (a fold's history often ends a few days short of two years).
SHORT_YEAR_NOTICE = "Yearly seasonality is enabled with less than 730 days"


class _DropPrefix(logging.Filter):
    """Drops the records whose message starts with `prefix`."""

    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self.prefix)


def drop_messages(logger: str, prefix: str) -> None:
    """Drop the messages of `logger` that start with `prefix` (one filter, however often this is called)."""
    log = logging.getLogger(logger)
    if not any(isinstance(f, _DropPrefix) and f.prefix == prefix for f in log.filters):
        log.addFilter(_DropPrefix(prefix))


def _quiet_prophet() -> None:
    """Silence Prophet's and cmdstanpy's INFO chatter (and the plotly notice) for this process.

    cmdstanpy sets its logger to DEBUG when it first builds it, and importing prophet sets the "prophet"
    logger to INFO, so both are imported here first, then lowered.
    """
    logging.getLogger("prophet.plot").setLevel(logging.CRITICAL)  # "Importing plotly failed"
    import prophet  # noqa: F401  (its import sets the "prophet" logger to INFO)

    logging.getLogger("prophet").setLevel(logging.WARNING)
    drop_messages("prophet", SHORT_YEAR_NOTICE)
    from cmdstanpy.utils import get_logger

    get_logger().setLevel(logging.WARNING)


def prophet_band(model: Any, fc: pd.DataFrame, level: float) -> tuple[np.ndarray, np.ndarray]:
    """(lower, upper) of a fitted Prophet's predictive band on the future rows `fc` of model.predict, in closed form.

    Prophet simulates its band: each future step a slope change with probability p = changepoints x step
    (step = one period in Prophet's time units), of Laplace(0, b) size, b = mean |historical change|; the
    trend's deviation is step x the double cumulative sum of the (two-step averaged) changes; plus
    Normal(0, sigma_obs) noise. Here the variance of that very process is summed exactly,
    Var(trend dev at step j) = step^2 p 2b^2 sum_l c_jl^2 with c_jl = j - l + 1/2 (l < j), 1/2 (l = j),
    scaled by (1 + multiplicative terms), and the band is yhat +- z sd.

    No random draws: Prophet draws from NumPy's global generator, which other threads of a Dask worker also
    use (dask's sizeof samples object columns with it), so a sampled band was not reproducible there.
    The engine rescales the band on the backtest anyway (intervals.py); only its shape matters.
    """
    ds = pd.to_datetime(fc["ds"])
    t = ((ds - model.start) / model.t_scale).to_numpy(float)
    n = len(t)
    step = float(np.diff(t).mean()) if n > 1 else float(np.diff(model.history["t"].to_numpy(float)).mean())
    var_trend = np.zeros(n)
    if model.growth == "linear":
        p = min(len(model.changepoints_t) * step, 1.0)
        b = float(np.mean(np.abs(model.params["delta"][0]))) + 1e-8
        j, k = np.arange(1, n + 1)[:, None], np.arange(1, n + 1)[None, :]
        c = np.where(k < j, j - k + 0.5, np.where(k == j, 0.5, 0.0))
        var_trend = step ** 2 * p * 2 * b ** 2 * (c ** 2).sum(axis=1)
    sigma = float(np.ravel(model.params["sigma_obs"])[0])
    scale = 1.0 + fc["multiplicative_terms"].to_numpy(float)
    sd = float(model.y_scale) * np.sqrt(var_trend * scale ** 2 + sigma ** 2)
    half = NormalDist().inv_cdf(0.5 + level / 2) * sd
    yhat = fc["yhat"].to_numpy(float)
    return yhat - half, yhat + half


def prophet(train: pd.Series, horizon: int, freq: str, cfg: ForecastParams) -> pd.DataFrame:
    """Prophet with the params' growth, seasonality mode, changepoint prior and country holidays
    (holidays only matter for daily series: a weekly or monthly ds rarely falls on a holiday).

    Weekly seasonality only for daily data, yearly seasonality only with >= 2 years of history
    (Fourier order 10, 5 for monthly data); MAP fit (mcmc_samples=0, optimizer seeded by cfg.seed) and
    the band of Prophet's own uncertainty model computed without sampling (prophet_band), so every run
    gives the same numbers.
    """
    y = check_train(train, horizon, freq)
    _quiet_prophet()
    from prophet import Prophet

    span_days = (y.index[-1] - y.index[0]).days
    model = Prophet(growth=cfg.prophet.growth, seasonality_mode=cfg.prophet.seasonality_mode,
                    changepoint_prior_scale=cfg.prophet.changepoint_prior_scale,
                    yearly_seasonality=(YEARLY_ORDER[freq] if span_days >= 2 * 365 - 7 else False),
                    weekly_seasonality=freq == "D",
                    daily_seasonality=False, interval_width=cfg.interval_width,
                    mcmc_samples=0, uncertainty_samples=0)
    if cfg.prophet.country_holidays:
        model.add_country_holidays(country_name=cfg.prophet.country_holidays)
    df = pd.DataFrame({"ds": y.index, "y": y.to_numpy()})
    if np.ptp(df["y"].to_numpy()) == 0:
        raise ModelError("Prophet cannot fit a constant history", fix="seasonal naive covers this series")
    # LBFGS always: Prophet picks Newton below 100 rows, which can crawl for 10+ s on short monthly
    # series; Prophet still falls back to Newton itself if LBFGS fails.
    model.fit(df, seed=cfg.seed, algorithm="LBFGS")
    idx = future_index(y.index[-1], horizon, freq)
    fc = model.predict(pd.DataFrame({"ds": idx}))
    lower, upper = prophet_band(model, fc, cfg.interval_width)
    return _frame(idx, fc["yhat"].to_numpy(), lower, upper)


# Simplest first: selection prefers the earlier one on a tie.
MODELS: dict[str, Fitter] = {"seasonal_naive": seasonal_naive, "theta": theta, "ets": ets, "prophet": prophet}
COMPLEXITY = {name: i for i, name in enumerate(MODELS)}


def get(name: str, fitters: dict[str, Fitter] | None = None) -> Fitter:
    """The fit_predict function of model `name` (from `fitters` first, then MODELS)."""
    table = {**MODELS, **(fitters or {})}
    if name not in table:
        raise ModelError(f"unknown model {name!r}; allowed: {', '.join(sorted(table))}", column="models",
                         fix="list only known models in params/forecast.yaml")
    fit = table[name]

    def fit_cleaned(train: pd.Series, horizon: int, freq: str, cfg: ForecastParams) -> pd.DataFrame:
        """`fit` on the history as params/forecast.yaml's `outliers` leaves it (see outliers.py)."""
        return fit(outliers.clean(train, freq, cfg.outliers, cfg.outlier_threshold), horizon, freq, cfg)

    return fit_cleaned

