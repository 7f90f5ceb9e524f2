"""Plain-words numbers: formatting helpers and the executive summary written from a Pack.

Everything here is pure (a Pack or numbers in, strings out) and locale-independent: the
formatting uses Python's own format mini-language, never the process locale, so the same
numbers give the same words on every machine. Strings are plain text; callers escape them.
"""

from __future__ import annotations

import math
from numbers import Real
from typing import Any

import pandas as pd

from .. import kpis
from ..errors import DataError
from ..pack import Pack
from ..schema import ALL

KPI_LABELS = {
    "revenue": "Revenue", "orders": "Orders", "active_customers": "Active customers",
    "new_customers": "New customers", "avg_order_value": "Average order value", "return_rate": "Return rate",
}
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December")
FREQ_WORDS = {"D": "day", "W": "week", "M": "month", "Q": "quarter"}
# What the summary and the KPI tiles say when kpis.latest_change finds fewer than two complete periods.
NO_EARLIER_PERIOD = "No earlier period to compare: the data holds fewer than two complete periods."


def require_pack(p: object) -> Pack:
    """Report functions take a Pack; anything else is a caller's bug, said plainly."""
    if not isinstance(p, Pack):
        raise DataError(f"expected a datastory Pack, got {type(p).__name__}",
                        fix="pass pack.load(audience) (or pack.select(...))")
    return p


# ---------------------------------------------------------------- formatting
def _number(x: Any, what: str) -> float:
    if isinstance(x, bool) or not isinstance(x, Real):
        raise DataError(f"{what}: expected a number, got {x!r}", fix="pass a numeric value")
    return float(x)


def fmt_money(x: Any) -> str:
    """Compact amount: 950, 9.5 k, 210 k, 1.2 M, 3.4 bn (NaN -> 'n/a')."""
    v = _number(x, "fmt_money")
    if math.isnan(v):
        return "n/a"
    if math.isinf(v):
        raise DataError(f"fmt_money: amount is infinite ({v})", fix="check the upstream computation")
    sign = "-" if v < 0 else ""
    a = abs(v)
    for scale, unit in ((1e9, " bn"), (1e6, " M"), (1e3, " k")):
        if round(a / scale, 1) >= 1 or a >= scale:
            s = a / scale
            text = f"{s:.1f}" if round(s, 1) < 10 else f"{s:.0f}"
            return f"{sign}{text}{unit}"
    return f"{sign}{a:.0f}"


def fmt_pct(frac: Any, signed: bool = False) -> str:
    """A fraction as a percentage: 0.08 -> '8%', 0.004 -> '0.4%'; `signed` adds '+'."""
    v = _number(frac, "fmt_pct")
    if math.isnan(v):
        return "n/a"
    if math.isinf(v):
        raise DataError(f"fmt_pct: fraction is infinite ({v})", fix="check for a division by zero upstream")
    pct = v * 100
    text = f"{pct:.1f}" if 0 < abs(pct) < 9.95 and round(pct, 1) != round(pct) else f"{pct:.0f}"
    if text in ("-0", "-0.0"):
        text = "0"
    return f"+{text}%" if signed and pct > 0 and text != "0" else f"{text}%"


def fmt_count(n: Any) -> str:
    """Whole number with thousands separators: 1234 -> '1,234'."""
    v = _number(n, "fmt_count")
    if math.isnan(v):
        return "n/a"
    return f"{round(v):,}"


def fmt_kpi(kpi: str, value: Any) -> str:
    """A KPI value in its own unit (money, count or percentage)."""
    if kpi in ("revenue", "avg_order_value"):
        return fmt_money(value)
    if kpi == "return_rate":
        return fmt_pct(value)
    if kpi in KPI_LABELS:
        return fmt_count(value)
    raise DataError(f"unknown KPI {kpi!r}; known: {', '.join(KPI_LABELS)}", column=kpi)


def period_label(period: str | pd.Timestamp, freq: str) -> str:
    """'May 2025' for a month, 'Q2 2025' for a quarter (English month names, locale-independent).

    `period` is the period's first day, as a Timestamp or an ISO date (kpis.latest_change's "period").
    """
    if freq not in ("M", "Q"):
        raise DataError(f"period_label: unknown period {freq!r}; allowed: M, Q", fix="use the kpis period (M or Q)")
    ts = pd.Timestamp(period)
    if freq == "Q":
        return f"Q{ts.quarter} {ts.year}"
    return f"{MONTHS[ts.month - 1]} {ts.year}"


LOWER_IS_BETTER = frozenset({"return_rate", "churn_rate"})  # a rise of these KPIs is bad news


def is_good(kpi: str, direction: str) -> bool | None:
    """Whether a move of `kpi` in `direction` ("up"/"down"/"flat") is good news; None when flat."""
    return None if direction == "flat" else (direction == "up") != (kpi in LOWER_IS_BETTER)


def trend(change: float | None) -> str:
    """'up', 'down' or 'flat' for a relative change; flat when it shows as 0% (or is unknown).

    One rule for the words and the tiles, so a tile never says '0%' with an arrow.
    """
    if change is None or math.isnan(change) or fmt_pct(abs(change)) == "0%":
        return "flat"
    return "up" if change > 0 else "down"


# ---------------------------------------------------------------- KPI change
def headline_change(p: Pack) -> dict[str, Any] | None:
    """`kpis.latest_change` of the pack's headline region up to the data's last day, or None.

    None means the region has KPIs but fewer than two complete periods: the report then says
    NO_EARLIER_PERIOD instead of failing. Any other problem (no KPI rows, the headline region
    missing) is still raised, since it means the pack itself is wrong.
    """
    require_pack(p)
    end = p.provenance.period_end
    try:
        return kpis.latest_change(p.kpis, p.headline_region, None if end in ("", "?") else end)
    except DataError:
        if (p.kpis["region"] == p.headline_region).any():
            return None
        raise


# ---------------------------------------------------------------- sentences
def revenue_sentence(change: dict[str, Any] | None, currency: str) -> str:
    """'Revenue was 1.2 M EUR in May 2025, up 8% on the previous month.' from headline_change's result.

    `change` is kpis.latest_change's dict; None (fewer than two complete periods) gives NO_EARLIER_PERIOD.
    """
    if change is None:
        return NO_EARLIER_PERIOD
    missing = [k for k in ("kpis", "period", "freq") if k not in change]
    if not missing and "revenue" not in change["kpis"]:
        missing.append("kpis.revenue")
    if missing:
        raise DataError(f"revenue_sentence: the KPI change lacks {', '.join(missing)}",
                        fix="pass the dict returned by kpis.latest_change/headline_change")
    rev = change["kpis"]["revenue"]
    word = FREQ_WORDS[change["freq"]]
    head = f"Revenue was {fmt_money(rev['value'])} {currency} in {period_label(change['period'], change['freq'])}"
    c = rev["change"]
    if c is None:  # previous period's revenue was 0: no relative change to quote
        return head + "."
    direction = trend(c)
    if direction == "flat":
        return head + f", flat on the previous {word}."
    return head + f", {direction} {fmt_pct(abs(c))} on the previous {word}."


def forecast_total(p: Pack, series_id: str) -> tuple[int, str, float, float, float]:
    """(periods ahead, their unit word, lower, central, upper) of one series' forecast, summed.

    The unit follows the forecast's frequency in its metrics ('weeks'), 'periods' when unknown.
    """
    require_pack(p)
    fut = p.forecast[(p.forecast["series_id"] == series_id) & p.forecast["is_forecast"]]
    n = len(fut)
    unit = FREQ_WORDS.get(str(p.forecast_metrics.get("freq", "")), "period") + ("s" if n != 1 else "")
    lo, mid, hi = (float(fut[c].sum()) for c in ("yhat_lower", "yhat", "yhat_upper"))
    return n, unit, lo, mid, hi


def forecast_sentence(p: Pack, series_id: str | None = None) -> str:
    """'We expect 1.2 M to 1.4 M EUR over the next 13 weeks (central estimate 1.3 M).'"""
    require_pack(p)
    sid = series_id or p.headline_region
    n, unit, lo, mid, hi = forecast_total(p, sid)
    if n == 0:
        return f"No forecast is available for {sid}."
    return (f"We expect {fmt_money(lo)} to {fmt_money(hi)} {p.currency} over the next {n} {unit} "
            f"(central estimate {fmt_money(mid)}).")


def churn_sentence(p: Pack) -> str:
    """'3 customers to call this week (2 to win back, 1 for a second purchase), worth 2.5 k EUR a year, 1 of
    them new on the list (since ...); the expected loss is 1.2 k EUR. 4 more are on watch.'"""
    require_pack(p)
    red = p.red_list
    counts = p.call_counts
    n, watch = counts["call"], counts["watch"]
    more = (f" {fmt_count(watch)} more {'is' if watch == 1 else 'are'} on watch." if watch else "")
    if n == 0:
        return "No customer needs a call this week." + more
    split = (f" ({fmt_count(counts['win_back'])} to win back, {fmt_count(counts['second_purchase'])} for a "
             "second purchase)")
    worth = fmt_money(float(red["annual_value"].sum()))
    at_risk = fmt_money(float(red["revenue_at_risk"].sum()))
    new = int(red["newly_red"].sum())
    since = p.churn_metrics.get("compare_date")
    newly = f", {fmt_count(new)} of them new on the list (since {since})" if new and since else ""
    return (f"{fmt_count(n)} customer{'s' if n != 1 else ''} to call this week{split}, worth {worth} "
            f"{p.currency} a year{newly}; the expected loss is {at_risk} {p.currency}.{more}")


def baseline_words(baseline: str | None, freq: str) -> str:
    """What the baseline did, as a reader says it: 'repeating last year's figures' only when it did.

    The engine's baseline repeats the same period one season earlier only when two full seasons are known
    ("seasonal naive"); otherwise it repeats the latest period ("naive"), and the words must say so.
    """
    unit = FREQ_WORDS.get(freq, "period")
    if baseline == "seasonal naive":
        return "repeating the same weekday of the week before" if freq == "D" else "repeating last year's figures"
    return f"repeating the latest {unit}'s figure"


def accuracy_sentence(metrics: dict[str, Any], freq: str) -> str:
    """'Over 3 backtests, this forecast was off by 12% on average, 25% better than repeating last year's
    figures.' from one series' metrics (smape, naive_smape, folds, baseline; notes when not backtested)."""
    missing = [k for k in ("smape", "naive_smape") if k not in metrics]
    if missing:
        raise DataError(f"forecast metrics lack {', '.join(missing)}", file="metrics/forecast.json",
                        fix="re-run the forecast stage")
    err, naive = metrics["smape"], metrics["naive_smape"]
    folds = int(metrics.get("folds") or 0)
    if err is None or naive is None or math.isnan(float(err)) or not folds:
        why = metrics.get("notes") or "there is too little history"
        return f"This forecast could not be backtested: {why}."
    head = f"Over {folds} backtest{'s' if folds != 1 else ''}, this forecast was off by {fmt_pct(err)} on average"
    if not naive or math.isnan(float(naive)):
        return head + "."
    words = baseline_words(metrics.get("baseline"), freq)
    rel = 1 - float(err) / float(naive)
    if trend(rel) == "flat":
        return head + f", no better than {words}."
    word = "better" if rel > 0 else "worse"
    return head + f", {fmt_pct(abs(rel))} {word} than {words}."


def executive_summary(p: Pack) -> list[str]:
    """The summary's sentences, from the numbers: revenue trend, forecast range, churn risk."""
    require_pack(p)
    sentences = []
    if not p.kpis.empty:
        sentences.append(revenue_sentence(headline_change(p), p.currency))
    sentences.append(forecast_sentence(p))
    sentences.append(churn_sentence(p))
    return sentences


def series_name(series_id: str) -> str:
    """Reader's name of a forecast series: 'All' -> 'Whole company'."""
    return "Whole company" if series_id == ALL else series_id
