"""Forecasting stage: revenue series per segment, backtested models, selection and forecasts.

series.py builds the series (series_file.py from the transactions file in bounded memory, and loads them for
the stage), models.py holds the models (one fit_predict signature), scoring.py backtests them by rolling origin, combine.py adds an optional "combination" candidate (an
inverse-MASE weighted average of the best backtested models, Theta included), intervals.py rescales the
chosen model's band on its backtest errors (conformal), reconcile.py makes the hierarchy's forecasts add up
(product lines to their region, regions to the company), engine.py runs every series (Dask or a local loop)
and saves; views.py holds the notebook's tables and the `dvc plots` table; file.py forecasts any long CSV
(unique_id, ds, y) for `datastory forecast-file`.
"""

from __future__ import annotations

from .engine import ForecastResult, forecast_series, run, save
from .models import MODELS, ets, prophet, seasonal_naive, theta
from .scoring import backtest, score, select
from .series import build_series
from .series_file import build_series_file, load_series

__all__ = ["MODELS", "ForecastResult", "backtest", "build_series", "build_series_file", "ets", "forecast_series",
           "load_series", "prophet", "run", "save", "score", "seasonal_naive", "select", "theta"]
