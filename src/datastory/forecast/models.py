"""Forecast models with one signature: fit on a history, predict `horizon` future periods.

`fit_predict(train, horizon, freq, cfg) -> Series` of point forecasts indexed by the future period start
dates. `train` is revenue indexed by consecutive period starts (see series.py); a missing period is NaN
(fill policy `none`, or a closed period, see history.py and calendar.py): Prophet fits around it, every
other model sees it interpolated. Models give point forecasts only: the engine's range comes from the
backtest errors of the whole run (intervals.py), never from a model's own assumptions.

Candidates, simplest first in MODELS (selection breaks ties in that order):
- seasonal_naive: the same period one season earlier; the latest value when fewer than two seasons are
  known (history.season_length). It is the baseline every forecast is judged against.
- theta, ets, ces: statsforecast's AutoTheta, AutoETS and AutoCES, which choose their form per series by
  likelihood as R's forecast package does (additive or multiplicative error, trend and season, damping);
  Theta on seasonally adjusted data.
  ETS cannot take a 52-week season, so weekly series with two years use STL plus ETS (statsforecast's
  MSTL with an AutoETS trend).
- prophet: Prophet with the params' settings.
"""

from __future__ import annotations

import logging
import tempfile
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from ..config import ForecastParams
from ..errors import ModelError
from . import outliers
from .history import MIN_HISTORY, RECENT, SEASON, YEAR_DAYS, interpolate, season_length
from .series import OFFSET, check_freq

# Fourier order of Prophet's yearly seasonality: a monthly series has only 12 points a year, a
# quarterly one 4 (order 2 is as many terms as 4 points a year can pin down).
YEARLY_ORDER = {"D": 10, "W": 10, "M": 5, "Q": 2}
MAX_ETS_SEASON = 24  # ETS state space models take seasons up to 24 periods (R's forecast::ets limit)
Fitter = Callable[[pd.Series, int, str, ForecastParams], pd.Series]


def future_index(last: pd.Timestamp, horizon: int, freq: str) -> pd.DatetimeIndex:
    """The `horizon` period start dates after `last`."""
    check_freq(freq)
    return pd.date_range(pd.Timestamp(last), periods=horizon + 1, freq=OFFSET[freq])[1:].astype(
        "datetime64[ns]")


def check_train(train: pd.Series, horizon: int, freq: str) -> pd.Series:
    """The history as float64 (NaN = missing period), or a ModelError saying why a model cannot use it."""
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
                             "months by their first day); a missing period is a row with y NaN")
    if not pd.api.types.is_numeric_dtype(train) or pd.api.types.is_bool_dtype(train):
        raise ModelError(f"history values must be numeric, got dtype {train.dtype}", column="y",
                         fix="y is net revenue: convert it to numbers")
    y = train.astype("float64")
    values = y.to_numpy()
    if np.isinf(values).any():
        raise ModelError("history has an infinite value", row=int(np.isinf(values).argmax()), column="y",
                         fix="remove it, or leave that period empty")
    known = int(np.isfinite(values).sum())
    if known < MIN_HISTORY:
        raise ModelError(f"history has {known} known period(s); a model needs at least {MIN_HISTORY}",
                         fix="load more history or use a finer freq")
    return y


def _out(index: pd.DatetimeIndex, yhat) -> pd.Series:
    out = pd.Series(np.asarray(yhat, dtype="float64"), index=index, name="yhat")
    out.index.name = "ds"
    if not np.isfinite(out.to_numpy()).all():
        raise ModelError("model produced a non-finite forecast")
    return out


def _prepared(train: pd.Series, horizon: int, freq: str) -> tuple[np.ndarray, pd.DatetimeIndex]:
    """(complete history values with gaps interpolated, future dates)."""
    y = check_train(train, horizon, freq)
    return interpolate(y).to_numpy(), future_index(y.index[-1], horizon, freq)


def seasonal_naive(train: pd.Series, horizon: int, freq: str, cfg: ForecastParams) -> pd.Series:
    """Each future period repeats the same period one season earlier; the latest value when fewer than
    two full seasons are known (then it is the naive forecast, and the report says so)."""
    y, idx = _prepared(train, horizon, freq)
    n = len(y)
    m = season_length(n, freq)
    return _out(idx, y[n - m + (np.arange(horizon) % m)])


def recent_level(train: pd.Series, horizon: int, freq: str, cfg: ForecastParams) -> pd.Series:
    """The mean of the last few known periods (a week of days, a month of weeks, a quarter of months,
    half a year of quarters), flat: the forecast of a history too short to backtest anything."""
    y = check_train(train, horizon, freq)
    known = y.dropna().to_numpy()
    return _out(future_index(y.index[-1], horizon, freq),
                np.full(horizon, float(np.mean(known[-RECENT[freq]:]))))


def _constant(y: np.ndarray) -> bool:
    return float(np.ptp(y)) == 0.0


def _statsforecast(model: Any, y: np.ndarray, horizon: int) -> np.ndarray:
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        return np.asarray(model.forecast(y=y, h=horizon)["mean"], dtype=float)


def ets(train: pd.Series, horizon: int, freq: str, cfg: ForecastParams) -> pd.Series:
    """statsforecast AutoETS: error, trend (damped or not) and season chosen per series by AICc.
    A season longer than 24 periods (weeks in a year) is taken out by STL first (MSTL + AutoETS)."""
    from statsforecast.models import MSTL, AutoETS

    y, idx = _prepared(train, horizon, freq)
    if _constant(y):
        return _out(idx, np.full(horizon, y[0]))
    m = season_length(len(y), freq)
    if freq == "D" and len(y) >= 2 * YEAR_DAYS:
        model = MSTL(season_length=[m, YEAR_DAYS], trend_forecaster=AutoETS(model="ZZN"))
    elif m > MAX_ETS_SEASON:
        model = MSTL(season_length=m, trend_forecaster=AutoETS(model="ZZN"))
    else:
        model = AutoETS(season_length=m)
    return _out(idx, _statsforecast(model, y, horizon))


def theta(train: pd.Series, horizon: int, freq: str, cfg: ForecastParams) -> pd.Series:
    """statsforecast AutoTheta (the M3 winner's family: standard, optimised and dynamic Theta) on data
    seasonally adjusted by a classical decomposition whenever two full seasons are known (multiplicative for
    positive data, else additive). The decomposition is not left to AutoTheta's own seasonality test: that
    reads the autocorrelation of the raw series, where a trend hides even a strong season (on Tourism the
    two agree to the third decimal; on a growing business the test drops the season)."""
    from statsforecast.models import AutoTheta
    from statsmodels.tsa.seasonal import seasonal_decompose

    y, idx = _prepared(train, horizon, freq)
    if _constant(y):
        return _out(idx, np.full(horizon, y[0]))
    n, m = len(y), season_length(len(y), freq)
    if m == 1:
        return _out(idx, _statsforecast(AutoTheta(season_length=1), y, horizon))
    multiplicative = bool((y > 0).all())
    dec = seasonal_decompose(y, model="mul" if multiplicative else "add", period=m)
    factors = dec.seasonal
    if multiplicative and factors.min() <= 0:
        multiplicative = False
        factors = seasonal_decompose(y, model="add", period=m).seasonal
    future = factors[(n + np.arange(horizon)) % m]
    adjusted = y / factors if multiplicative else y - factors
    mean = _statsforecast(AutoTheta(season_length=1), adjusted, horizon)
    return _out(idx, mean * future if multiplicative else mean + future)


def ces(train: pd.Series, horizon: int, freq: str, cfg: ForecastParams) -> pd.Series:
    """statsforecast AutoCES: complex exponential smoothing (Svetunkov & Kourentzes), which needs no
    choice between a level and a trend; seasonal when two full seasons are known."""
    from statsforecast.models import AutoCES

    y, idx = _prepared(train, horizon, freq)
    if _constant(y):
        return _out(idx, np.full(horizon, y[0]))
    m = season_length(len(y), freq)
    return _out(idx, _statsforecast(AutoCES(season_length=m), y, horizon))


# Prophet's warning about yearly seasonality on 723-729 days of history: `prophet` below turns it on from two
# years less a week on purpose (a fold's history often ends a few days short of two years).
SHORT_YEAR_NOTICE = "Yearly seasonality is enabled with less than 730 days"


NEWTON_FALLBACK = "Optimization terminated abnormally. Falling back to Newton."


class _ChainError(logging.Filter):
    """cmdstanpy's "Chain [1] error: code '1' Operation not permitted": the optimizer's exit status 1 read as an
    errno. Prophet answers it by refitting with Newton (or raising), so the line itself says nothing."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        return not (msg.startswith("Chain [") and " error: code " in msg)


_CHAIN_ERROR = _ChainError()


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
    # LBFGS stopping early is not a failure: Prophet refits with Newton. When that fails too, it raises, and the
    # engine names the series (one line) and forecasts it with the other models.
    drop_messages("prophet.models", NEWTON_FALLBACK)
    from cmdstanpy.utils import get_logger

    get_logger().setLevel(logging.WARNING)
    if _CHAIN_ERROR not in get_logger().filters:
        get_logger().addFilter(_CHAIN_ERROR)


def prophet(train: pd.Series, horizon: int, freq: str, cfg: ForecastParams) -> pd.Series:
    """Prophet with the params' growth, seasonality mode, changepoint prior and country holidays
    (holidays only matter for daily series: a weekly or monthly ds rarely falls on a holiday).

    Weekly seasonality only for daily data, yearly seasonality only with >= 2 years of history
    (Fourier order 10, 5 for monthly data); missing periods are left out of the fit; MAP fit
    (mcmc_samples=0, optimizer seeded by cfg.seed) without interval sampling, so every run gives the
    same numbers.
    """
    y = check_train(train, horizon, freq)
    _quiet_prophet()
    from prophet import Prophet

    known = y.dropna()
    if _constant(known.to_numpy()):
        return _out(future_index(y.index[-1], horizon, freq), np.full(horizon, known.iloc[0]))
    span_days = (known.index[-1] - known.index[0]).days
    model = Prophet(growth=cfg.prophet.growth, seasonality_mode=cfg.prophet.seasonality_mode,
                    changepoint_prior_scale=cfg.prophet.changepoint_prior_scale,
                    yearly_seasonality=(YEARLY_ORDER[freq] if span_days >= 2 * 365 - 7 else False),
                    weekly_seasonality=freq == "D" and len(known) >= 2 * SEASON["D"],
                    daily_seasonality=False, mcmc_samples=0, uncertainty_samples=0)
    if cfg.prophet.country_holidays:
        model.add_country_holidays(country_name=cfg.prophet.country_holidays)
    # LBFGS always: Prophet picks Newton below 100 rows, which can crawl for 10+ s on short monthly
    # series; Prophet still falls back to Newton itself if LBFGS fails.
    # cmdstan writes its output files to a folder removed after the fit. By default they go to cmdstanpy's own
    # temporary folder, removed only when the process exits normally: a Dask worker is stopped, not exited, so each
    # run left about a megabyte of them per worker in the system's temporary folder.
    with tempfile.TemporaryDirectory(prefix="datastory-prophet-") as out:
        model.fit(pd.DataFrame({"ds": known.index, "y": known.to_numpy()}), seed=cfg.seed, algorithm="LBFGS",
                  output_dir=out)
    idx = future_index(y.index[-1], horizon, freq)
    return _out(idx, model.predict(pd.DataFrame({"ds": idx}))["yhat"].to_numpy())


# Simplest first: selection prefers the earlier one on a tie.
MODELS: dict[str, Fitter] = {"seasonal_naive": seasonal_naive, "theta": theta, "ets": ets, "ces": ces,
                             "prophet": prophet}
COMPLEXITY = {name: i for i, name in enumerate(MODELS)}
BASELINE = "seasonal_naive"


def get(name: str, fitters: dict[str, Fitter] | None = None) -> Fitter:
    """The fit_predict function of model `name` (from `fitters` first, then MODELS)."""
    table = {**MODELS, "recent_level": recent_level, **(fitters or {})}
    if name not in table:
        raise ModelError(f"unknown model {name!r}; allowed: {', '.join(sorted(table))}", column="models",
                         fix="list only known models in params/forecast.yaml")
    fit = table[name]

    def fit_cleaned(train: pd.Series, horizon: int, freq: str, cfg: ForecastParams) -> pd.Series:
        """`fit` on the history as params/forecast.yaml's `outliers` leaves it (see outliers.py)."""
        return fit(outliers.clean(train, freq, cfg.outliers, cfg.outlier_threshold), horizon, freq, cfg)

    return fit_cleaned
