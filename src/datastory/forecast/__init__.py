"""Forecasting stage: revenue series per segment, backtested models, selection and forecasts.

series.py builds the series, models.py holds the models (one fit_predict signature),
scoring.py backtests them by rolling origin, engine.py runs every series (Dask or a local loop) and saves.
"""

from __future__ import annotations

from .engine import ForecastResult, forecast_series, run, save
from .models import MODELS, ets, prophet, seasonal_naive
from .scoring import backtest, score, select
from .series import build_series

__all__ = ["MODELS", "ForecastResult", "backtest", "build_series", "ets", "forecast_series", "prophet", "run",
           "save", "score", "seasonal_naive", "select"]
