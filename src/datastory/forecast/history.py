"""What one series' history allows, decided before any model runs, and said in plain words.

- **Gaps** follow a fill policy (`fill` in params/forecast.yaml, `--fill` for forecast-file):
  `zero`: a missing period is a real 0 (sales summed from transactions: no line, no sale);
  `interpolate`: a missing period is drawn straight between its neighbours for the models, and never
  scored (it is not an actual); `none`: a missing period stays missing: Prophet fits around it, the other
  models see it interpolated, and it is never scored.
- **Span**: a series starts at its first non-zero value (a product line launched later is not a line
  that sold nothing) and ends at its last known period.
- **Plan**: the backtest folds that fit (fewer than configured when the history is short; none when even
  one fold does not fit, and then the forecast is the recent level), and the seasonality the history can
  show. A seasonal pattern is only claimed with two full seasons: one year of history cannot tell a
  yearly pattern from a one-off, so a yearly season needs two years, and "last year's figures" are only
  the baseline when two years are known.
- **Notes** say each of these in a sentence a manager can read; the report and forecast-file show them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import ModelError
from . import calendar

FILLS = ("zero", "interpolate", "none")
SEASON = {"D": 7, "W": 52, "M": 12, "Q": 4}
SEASON_WORD = {"D": "weekly", "W": "yearly", "M": "yearly", "Q": "yearly"}
UNIT = {"D": "day", "W": "week", "M": "month", "Q": "quarter"}
DAYS = {"D": 1, "W": 7, "M": 30.44, "Q": 91.31}
MIN_HISTORY = 3      # periods any forecast needs
RECENT = {"D": 7, "W": 4, "M": 3, "Q": 2}  # periods averaged by the recent-level forecast
YEAR_DAYS = 365


def season_length(n: int, freq: str) -> int:
    """The seasonal lag `n` periods allow: one season when two full seasons are known, else 1."""
    m = SEASON[freq]
    return m if n >= 2 * m else 1


def min_train(horizon: int) -> int:
    """Periods a backtest fold trains on at least: half a horizon, and never fewer than MIN_HISTORY + 1."""
    return max(MIN_HISTORY + 1, horizon // 2)


def span_words(n: int, freq: str) -> str:
    """'39 weeks (about 9 months)', '9 months', '3 years': a history length as a reader says it."""
    unit = UNIT[freq]
    head = f"{n} {unit}{'s' if n != 1 else ''}"
    days = n * DAYS[freq]
    if freq in ("D", "W") and days >= 60:
        months = round(days / 30.44)
        if months >= 24:
            return f"{head} (about {round(days / 365.25)} years)"
        return f"{head} (about {months} months)"
    return head


@dataclass(frozen=True)
class Plan:
    """What a history of `n` periods allows with the configured horizon and folds."""

    n: int
    folds: int                 # backtest folds that fit (0: none)
    season: int                # seasonal lag of the full history (1: no seasonality)
    status: str                # "backtested" | "recent_level" | "too_short" | "all_zero"
    notes: tuple[str, ...]


def plan(n: int, freq: str, horizon: int, folds: int, all_zero: bool = False) -> Plan:
    """The folds, seasonality and notes for a series of `n` usable periods."""
    if freq not in SEASON:
        raise ModelError(f"unknown forecast frequency {freq!r}", column="freq")
    span = span_words(n, freq)
    if all_zero:
        return Plan(n, 0, 1, "all_zero", ("no non-zero value in the history: forecast 0",))
    if n < MIN_HISTORY:
        return Plan(n, 0, 1, "too_short", (f"only {span} of history: too little to forecast "
                                           f"(at least {MIN_HISTORY} {UNIT[freq]}s are needed)",))
    fit = max(0, min(folds, (n - min_train(horizon)) // horizon))
    notes = []
    if fit == 0:
        notes.append(f"forecast from the recent level; no backtest possible (one {horizon}-{UNIT[freq]} backtest "
                     f"needs {min_train(horizon) + horizon} {UNIT[freq]}s)")
    elif fit < folds:
        notes.append(f"backtested on {fit} fold{'s' if fit != 1 else ''} instead of {folds}")
    m = season_length(n, freq)
    if m == 1:
        notes.append(f"{SEASON_WORD[freq]} seasonality cannot be estimated "
                     f"(it needs two full {'weeks' if freq == 'D' else 'years'})")
    elif freq == "D" and n < 2 * YEAR_DAYS:
        notes.append("yearly seasonality cannot be estimated (it needs two full years)")
    if notes:  # the first note says how long the history is; the others follow from it
        notes[0] = f"{span} of history: {notes[0]}"
    return Plan(n, fit, m, "backtested" if fit else "recent_level", tuple(notes))


def summary(p: Plan, freq: str, horizon: int) -> str:
    """'56 weeks (about 13 months): weekly forecast without yearly seasonality, backtested on 3 folds'."""
    word = {"D": "daily", "W": "weekly", "M": "monthly", "Q": "quarterly"}[freq]
    head = f"{span_words(p.n, freq)} of full {UNIT[freq]}s"
    if p.status == "too_short":
        return (f"only {p.n} full {UNIT[freq]}{'s' if p.n != 1 else ''}: no {word} forecast possible "
                f"(at least {MIN_HISTORY} are needed; use a finer freq in params/forecast.yaml)")
    if p.status == "all_zero":
        return f"{head}: {p.notes[0]}"
    yearly = p.season > 1 and (freq != "D" or p.n >= 2 * YEAR_DAYS)
    season = "with yearly seasonality" if yearly else "without yearly seasonality"
    if freq == "D" and p.season > 1:
        season += ", with the weekly pattern"
    test = (f"backtested on {p.folds} fold{'s' if p.folds != 1 else ''} of {horizon} {UNIT[freq]}s"
            if p.folds else "from the recent level, not backtested")
    return f"{head}: {word} forecast {season}, {test}"


def outlook(first: pd.Timestamp, last: pd.Timestamp, freq: str, horizon: int, folds: int) -> str:
    """What a transaction log from day `first` to day `last` allows the forecast stage, in one sentence
    (`datastory check-data` prints it): its full periods, the seasonality and the backtest they allow."""
    from .series import full_periods

    return summary(plan(len(full_periods(first, last, freq)), freq, horizon, folds), freq, horizon)


def usable(y: pd.Series) -> pd.Series:
    """The span a model learns from: from the first non-zero known value to the last known one."""
    values = y.to_numpy(dtype=float)
    known = np.isfinite(values)
    start = np.flatnonzero(known & (values != 0))
    if not len(start):
        return y.iloc[0:0]
    end = int(np.flatnonzero(known)[-1])
    return y.iloc[int(start[0]):end + 1]


def check_fill(policy: str) -> str:
    """`policy` itself if it is a known fill policy, else a ModelError naming the allowed ones."""
    if policy not in FILLS:
        raise ModelError(f"unknown fill policy {policy!r}; allowed: {', '.join(FILLS)}", column="fill",
                         fix="set fill to zero, interpolate or none")
    return policy


def fill(y: pd.Series, policy: str) -> pd.Series:
    """`y` with its missing values as `policy` says: 0 (zero), interpolated (interpolate) or kept (none)."""
    if check_fill(policy) == "zero":
        return y.fillna(0.0)
    return interpolate(y) if policy == "interpolate" else y


def ship(yhat: np.ndarray, share: np.ndarray, nonneg: bool) -> np.ndarray:
    """A model's forecast as it ships: times the open share of its periods (calendar.py), and never below 0
    for a series that never went negative. The backtest scores exactly what the future gets."""
    out = np.asarray(yhat, dtype=float) * np.asarray(share, dtype=float)
    return np.maximum(out, 0.0) if nonneg else out


def interpolate(y: pd.Series) -> pd.Series:
    """Missing values drawn straight between their known neighbours; at the ends, the nearest known one."""
    if not y.isna().any():
        return y
    return y.interpolate(method="linear", limit_direction="both")


@dataclass(frozen=True)
class Prepared:
    """One series made ready for the models: what they fit, what they are scored on, and the plan."""

    actual: pd.Series     # actuals over the usable span; NaN where there is no actual (a gap not read as 0)
    model_y: pd.Series    # what models fit: actual per open share, gaps as the policy says, closed periods NaN
    share: pd.Series      # open share of each period (1.0 without closures)
    nonneg: bool          # no negative actual: forecasts and ranges are kept at or above 0
    plan: Plan


def prepare(y: pd.Series, freq: str, horizon: int, folds: int, fill_policy: str,
            closures: list[str]) -> Prepared:
    """`y` (consecutive periods, NaN = missing) trimmed to its usable span, filled and calendar-adjusted."""
    check_fill(fill_policy)
    actual = y.astype("float64")
    if fill_policy == "zero":
        actual = actual.fillna(0.0)
    span = usable(actual)
    known = span.dropna()
    share = pd.Series(calendar.open_share(span.index, freq, closures), index=span.index)
    with np.errstate(divide="ignore", invalid="ignore"):
        per_open = (span / share).where(share > 0)
    model_y = per_open if fill_policy == "zero" else fill(per_open, fill_policy)
    if fill_policy == "interpolate":
        model_y = model_y.where(share > 0)  # a closed period stays missing for the models
    p = plan(int(len(span)), freq, horizon, folds, all_zero=len(span) == 0 and len(y.dropna()) > 0)
    return Prepared(actual=span.rename(y.name), model_y=model_y.rename(y.name), share=share, nonneg=bool((known >= 0).all()), plan=p)
