"""What a cleaned transaction log supports, said before any analysis runs (`datastory check-data`).

`assess(tx, forecast, churn)` is pure: the transactions ingest keeps and the forecast and churn params in,
a `Verdict` out (`judge` does the same from their `profile.Profile`, which the streaming ingest counts out of
core: every rule below reads whole days, so the profile's one row per customer and day gives the same verdict): one line per stage saying what the history allows, warnings for limits that are not fatal,
and the refusals that stop the pipeline, each with its reason and fix. The data is usable only when
ingest, KPIs, forecast and churn can all run.

The thresholds are the stages' own, taken from their code rather than restated here:
- sales: at least one line with a positive amount. KPIs count orders and customers on sales lines, the
  forecast is of revenue, and churn labels are built from purchases (non-return lines).
- forecast: `forecast.history.plan` for the company total's full periods (`forecast.series.full_periods`).
  Every series covers those periods at most, so with fewer than `history.MIN_HISTORY` no series can be
  forecast and the stage stops. Without room for one backtest fold the forecast is the recent level,
  with no accuracy figure: a warning. A region or product line named `schema.ALL` stops the stage too.
- churn: `churn.model.plan_cutoffs` places the validation and training cutoffs inside the history: it
  needs more than window_days twice plus (n_train_cutoffs - 1) x cutoff_step_days days (with the default
  cutoff this module says so itself, with the n_train_cutoffs that would fit). The labels at those cutoffs
  (`churn.labels.labels_at`) must give `churn.model.MIN_TRAIN_ROWS` customer-cutoff rows of both outcomes
  to train on, and at least one customer at the validation cutoff. Fewer rows than boosting needs
  (`HGB_MIN_ROWS`, `HGB_MIN_MINORITY`), a one-outcome validation, fewer training cutoffs than asked for,
  or nobody to score at the data end are warnings.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from . import profile as profile_mod
from . import schema
from .config import ChurnParams, ForecastParams
from .errors import DataError, ModelError

LABEL = "{:<14}"   # the label column of check-data's lines


@dataclass(frozen=True)
class Refusal:
    """A reason the pipeline cannot run on this data, and how to fix it."""

    reason: str
    fix: str


@dataclass(frozen=True)
class Outlook:
    """What one stage can do with the data."""

    line: str
    refusals: tuple[Refusal, ...] = ()
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class Verdict:
    """Every stage's outlook: usable when none of them refuses."""

    outlooks: tuple[Outlook, ...]

    @property
    def refusals(self) -> tuple[Refusal, ...]:
        return tuple(r for o in self.outlooks for r in o.refusals)

    @property
    def warnings(self) -> tuple[str, ...]:
        return tuple(w for o in self.outlooks for w in o.warnings)

    @property
    def usable(self) -> bool:
        return not self.refusals

    def lines(self) -> list[str]:
        """Each stage's line, the warnings, then `verdict       usable` or `verdict       unusable: reasons`."""
        out = [o.line for o in self.outlooks if o.line]
        out += [f"warning: {w}" for w in self.warnings]
        verdict = "usable" if self.usable else "unusable: " + "; ".join(r.reason for r in self.refusals)
        return [*out, LABEL.format("verdict") + verdict]

    def error(self, source: str) -> DataError | None:
        """The refusal as the error `datastory check-data` exits with (status 2); None when usable."""
        if self.usable:
            return None
        return DataError("the data cannot run the whole pipeline: " + "; ".join(r.reason for r in self.refusals),
                         file=source, fix="; ".join(dict.fromkeys(r.fix for r in self.refusals)))


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def sales(kept: profile_mod.Profile) -> Outlook:
    """Refused when no kept line is a sale (every line a return, or zero)."""
    if kept.sales:
        return Outlook("")
    return Outlook("", (Refusal(
        f"no sales: all {_plural(kept.lines, 'kept line')} are returns or zero ({kept.negatives:,} negative), so there is no "
        "revenue to report or forecast and no purchase to learn churn from",
        "check the sign of the amount (or quantity) column, rules.cancelled_prefix, and that the export holds "
        "the sales and not only the returns"),))


def forecast(kept: profile_mod.Profile, cfg: ForecastParams) -> Outlook:
    """The forecast line (`forecast.history.outlook`'s sentence, from the plan of the company total's full periods),
    refused when no series can be forecast."""
    from .forecast.history import MIN_HISTORY, UNIT, min_train, outlook, plan
    from .forecast.series import full_periods

    first, last = kept.days["timestamp"].min(), kept.days["timestamp"].max()   # whole days: all the plan reads
    p = plan(len(full_periods(first, last, cfg.freq)), cfg.freq, cfg.horizon, cfg.folds)   # what outlook says
    line = LABEL.format("forecast") + outlook(first, last, cfg.freq, cfg.horizon, cfg.folds)
    unit = UNIT[cfg.freq]
    refusals, warnings = [], []
    if p.status == "too_short":
        refusals.append(Refusal(
            f"forecast: {_plural(p.n, f'full {unit}')} of history, and the forecast needs at least {MIN_HISTORY}",
            f"load a longer history, or use a finer freq in params/forecast.yaml (now {cfg.freq})"))
    elif p.folds == 0:
        warnings.append(f"the forecast cannot be backtested: one {cfg.horizon}-{unit} backtest needs "
                        f"{_plural(min_train(cfg.horizon) + cfg.horizon, unit)} of history, and there are {p.n:,}; "
                        "it will be the recent level, with no accuracy figure (a shorter horizon in "
                        "params/forecast.yaml allows one)")
    if kept.named_all:
        refusals.append(Refusal(f"forecast: a region or product line is named {schema.ALL!r}, the label of totals",
                                "rename it at the source (or in rules.country_regions)"))
    return Outlook(line, tuple(refusals), tuple(warnings))


def churn(kept: profile_mod.Profile, cfg: ChurnParams) -> Outlook:
    """The churn line: cutoffs, customer-cutoff rows to train on, customers to validate and score (the churn
    stage's own functions, on the profile's customer days)."""
    from .churn import sampling
    from .churn.features import data_span
    from .churn.labels import labels_at
    from .churn.model import HGB_MIN_MINORITY, HGB_MIN_ROWS, MIN_TRAIN_ROWS, plan_cutoffs

    label = LABEL.format("churn")
    tx = kept.days
    start, end = data_span(tx)
    have = (end - start).days
    w, step, k = cfg.window_days, cfg.cutoff_step_days, cfg.n_train_cutoffs
    need = 2 * w + (k - 1) * step   # plan_cutoffs: the last training cutoff must fall after the first day
    if not cfg.cutoff and have <= need:
        fits = (have - 1 - 2 * w) // step + 1 if have > 2 * w else 0
        fix = (f"set n_train_cutoffs: {fits} (or lower window_days or cutoff_step_days) in params/churn.yaml"
               if fits else f"load a longer history (more than {need} days), or lower window_days in "
                            "params/churn.yaml")
        steps = f" plus {k - 1} x cutoff_step_days={step} between the {k} training cutoffs" if k > 1 else ""
        return Outlook(label + "no cutoff fits the history", (Refusal(
            f"churn: {_plural(have, 'day')} of history, and churn needs more than {need}: window_days={w} twice "
            f"(validation and training labels){steps}", fix),))
    try:
        cut = plan_cutoffs(tx, cfg)
    except ModelError as exc:   # an explicit cutoff outside the data
        return Outlook(label + "no cutoff fits the history", (Refusal(f"churn: {exc.problem}", exc.fix or ""),))
    train = [labels_at(tx, c, cfg.window_days, cfg.lookback_days) for c in cut.train]
    n = sum(len(t) for t in train)
    churned = sum(int(t["churned"].sum()) for t in train)
    valid = labels_at(tx, cut.valid, cfg.window_days, cfg.lookback_days)
    buys = tx.loc[~tx["is_return"].astype(bool), ["customer_id", "timestamp"]]
    scored = int(buys.loc[buys["timestamp"] >= cut.score - pd.Timedelta(days=cfg.lookback_days),
                          "customer_id"].nunique())
    trained = f" ({churned / n:.0%} churned)" if n else ""
    learning = buys["timestamp"].between(cut.train[-1] - pd.Timedelta(days=cfg.lookback_days), cut.train[0],
                                         inclusive="left")
    learners = int(buys.loc[learning, "customer_id"].nunique())
    if sampling.share(learners, cfg.max_train_customers) < 1:
        trained += (f", of which the model learns from a seeded sample of {cfg.max_train_customers:,} of the "
                    f"{learners:,} customers (max_train_customers)")
    line = (f"{label}validation cutoff {cut.valid.date()}, {_plural(len(cut.train), 'training cutoff')} back to "
            f"{cut.train[-1].date()}: {_plural(n, 'customer-cutoff row')} to train on{trained}, "
            f"{_plural(len(valid), 'customer')} to validate, {scored:,} to score")
    refusals, warnings = [], []
    who = f"customers who bought in the {cfg.lookback_days} days before each training cutoff"
    if n < MIN_TRAIN_ROWS:
        refusals.append(Refusal(
            f"churn: {_plural(n, 'customer-cutoff row')} to train on ({who}), and the model needs at least "
            f"{MIN_TRAIN_ROWS}", "load more customers or a longer history, or raise lookback_days or "
                                 "n_train_cutoffs in params/churn.yaml"))
    elif churned in (0, n):
        refusals.append(Refusal(
            f"churn: all {_plural(n, 'customer-cutoff row')} to train on "
            f"{'churned' if churned == n else 'bought again'} within window_days={cfg.window_days}, and the model "
            "needs both outcomes",
            "use a longer window_days in params/churn.yaml" if churned == n else
            "use a shorter window_days in params/churn.yaml"))
    elif n < HGB_MIN_ROWS or min(churned, n - churned) < HGB_MIN_MINORITY:
        warnings.append(f"churn trains a logistic regression, not gradient boosting, which needs "
                        f"{HGB_MIN_ROWS:,} customer-cutoff rows with {HGB_MIN_MINORITY} of each outcome "
                        f"(there are {n:,}, {churned:,} churned)")
    if valid.empty:
        refusals.append(Refusal(
            f"churn: no customer bought in the {cfg.lookback_days} days before the validation cutoff "
            f"{cut.valid.date()}, so the model cannot be judged",
            "use a longer lookback_days in params/churn.yaml, or data that reaches closer to today"))
    elif valid["churned"].all() or not valid["churned"].any():
        warnings.append(f"all {_plural(len(valid), 'customer')} at the validation cutoff {cut.valid.date()} "
                        f"{'churned' if valid['churned'].all() else 'bought again'}: the churn model's ROC AUC is "
                        "undefined")
    if len(cut.train) < cfg.n_train_cutoffs:
        warnings.append(f"churn trains on {_plural(len(cut.train), 'cutoff')} instead of n_train_cutoffs="
                        f"{cfg.n_train_cutoffs}: the history is too short for more")
    if not scored:
        warnings.append(f"nobody bought in the {cfg.lookback_days} days before the data end: the churn risk list "
                        "will be empty")
    return Outlook(line, tuple(refusals), tuple(warnings))


def judge(kept: profile_mod.Profile, forecast_cfg: ForecastParams, churn_cfg: ChurnParams) -> Verdict:
    """Sales, forecast and churn outlooks of the kept transactions' profile."""
    return Verdict((sales(kept), forecast(kept, forecast_cfg), churn(kept, churn_cfg)))


def assess(tx: pd.DataFrame, forecast_cfg: ForecastParams, churn_cfg: ChurnParams) -> Verdict:
    """Sales, forecast and churn outlooks of the cleaned transactions (schema.TRANSACTIONS)."""
    from .churn.features import check_transactions

    check_transactions(tx)
    return judge(profile_mod.of(tx), forecast_cfg, churn_cfg)
