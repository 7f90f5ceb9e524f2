"""The words every renderer uses: money, percentages, percentage points, dates and names.

The PDF/HTML report, the workbook and the email all take their text from here (and the sentences built
from it, in present.story), so one value reads the same in every format ("12 k", never "12 k" in one
place and "EUR 12.3 k" in another). Changes of rates are stated in percentage points
("Return rate 1.4% → 1.2%, −0.2 pt"), changes of amounts and counts as relative percentages.

Everything here is pure (numbers in, strings out) and locale-independent: the formatting uses Python's
own format mini-language, never the process locale, so the same numbers give the same words on every
machine. Strings are plain text; callers escape them.
"""

from __future__ import annotations

import math
from numbers import Real
from typing import Any

import pandas as pd

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


def _number(x: Any, what: str) -> float:
    if isinstance(x, bool) or not isinstance(x, Real):
        raise DataError(f"{what}: expected a number, got {x!r}", fix="pass a numeric value")
    return float(x)


def _finite(x: Any, what: str, noun: str, fix: str) -> float | None:
    """`x` as a float; None when it is NaN (shown as 'n/a'); an error naming `noun` when it is infinite."""
    v = _number(x, what)
    if math.isnan(v):
        return None
    if math.isinf(v):
        raise DataError(f"{what}: {noun} is infinite ({v})", fix=fix)
    return v


def fmt_money(x: Any) -> str:
    """Compact amount: 950, 9.5 k, 210 k, 1.2 M, 3.4 bn (NaN -> 'n/a')."""
    v = _finite(x, "fmt_money", "amount", "check the upstream computation")
    if v is None:
        return "n/a"
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
    v = _finite(frac, "fmt_pct", "fraction", "check for a division by zero upstream")
    if v is None:
        return "n/a"
    pct = v * 100
    text = f"{pct:.1f}" if 0 < abs(pct) < 9.95 and round(pct, 1) != round(pct) else f"{pct:.0f}"
    if text in ("-0", "-0.0"):
        text = "0"
    if signed and text != "0":
        return f"+{text}%" if pct > 0 else f"{MINUS}{text.lstrip('-')}%"
    return f"{text}%"


MINUS = "\u2212"  # the typographic minus of signed changes ("−0.2 pt", "−8%")
RATE_KPIS = frozenset({"return_rate", "churn_rate"})  # rates: their changes are in percentage points


def fmt_pt(diff: Any, decimals: int = 1) -> str:
    """A difference of two fractions in percentage points: -0.002 -> '−0.2 pt', 0.013 -> '+1.3 pt'."""
    v = _finite(diff, "fmt_pt", "difference", "check the upstream computation")
    if v is None:
        return "n/a"
    text = f"{abs(v) * 100:.{decimals}f}"
    if float(text) == 0:
        return f"{0:.{decimals}f} pt"
    return f"{'+' if v > 0 else MINUS}{text} pt"


def _rate_decimals(value: float, previous: float) -> int:
    """1, or 2 when one decimal would show two different rates as the same ('1.2% → 1.2%')."""
    same = f"{value * 100:.1f}" == f"{previous * 100:.1f}"
    return 2 if same and f"{value * 100:.2f}" != f"{previous * 100:.2f}" else 1


def rate_points(value: Any, previous: Any) -> tuple[float, int]:
    """(change in percentage points as shown, decimals shown) of a rate: (−0.2, 1) for 1.4% → 1.2%."""
    v, p = _number(value, "rate_points"), _number(previous, "rate_points")
    d = _rate_decimals(v, p)
    return round(round(v * 100, d) - round(p * 100, d), d), d


def rate_pair(value: Any, previous: Any) -> tuple[str, str, str]:
    """(previous, value, change in points) of a rate, written so that the figures shown add up:
    ('1.4%', '1.2%', '−0.2 pt'); with two decimals when one would hide the move ('1.24%', '1.16%', '−0.08 pt')."""
    points, d = rate_points(value, previous)
    return fmt_rate(float(previous), d), fmt_rate(float(value), d), fmt_pt(points / 100, d)


def kpi_delta(kpi: str, item: dict[str, Any]) -> str:
    """The change of one KPI item ({value, previous, change}) in its own terms.

    Rates move in percentage points ('−0.2 pt'), amounts and counts by a relative percentage ('+8%');
    'n/a' when there is nothing to compare with.
    """
    if kpi in RATE_KPIS:
        if item.get("previous") is None or item.get("value") is None:
            return "n/a"
        return rate_pair(item["value"], item["previous"])[2]
    change = item.get("change")
    return "n/a" if change is None else fmt_pct(change, signed=True)


def kpi_figures(kpi: str, item: dict[str, Any]) -> tuple[str, str, str]:
    """(latest, previous, change) of one KPI item as every table writes them: a rate's three figures add
    up (rate_pair), anything else is fmt_kpi and kpi_delta; 'n/a' for what is missing."""
    if kpi in RATE_KPIS and item.get("previous") is not None:
        prev, now, delta = rate_pair(item["value"], item["previous"])
        return now, prev, delta
    prev = "n/a" if item.get("previous") is None else fmt_kpi(kpi, item["previous"])
    return fmt_kpi(kpi, item["value"]), prev, kpi_delta(kpi, item)


def kpi_move(kpi: str, item: dict[str, Any]) -> str:
    """'Return rate 1.4% → 1.2%, −0.2 pt' / 'Revenue 1.1 M → 1.2 M, +8%'."""
    now, prev, delta = kpi_figures(kpi, item)
    return f"{KPI_LABELS.get(kpi, kpi)} {prev} \u2192 {now}, {delta}"


def kpi_trend(kpi: str, item: dict[str, Any]) -> str:
    """'up', 'down' or 'flat' for one KPI item: a rate by its points, anything else by its relative change."""
    if kpi in RATE_KPIS:
        d = kpi_delta(kpi, item)
        return "up" if d.startswith("+") else "down" if d.startswith(MINUS) else "flat"
    return trend(item.get("change"))


def fmt_rate(frac: Any, decimals: int = 1) -> str:
    """A rate, always with its decimal so that its changes in points can be read off: 0.014 -> '1.4%'."""
    v = _finite(frac, "fmt_rate", "rate", "check for a division by zero upstream")
    if v is None:
        return "n/a"
    text = f"{v * 100:.{decimals}f}"
    return f"{text.lstrip('-') if float(text) == 0 else text}%"


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
    if kpi in RATE_KPIS:
        return fmt_rate(value)
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


REVENUE_AT_RISK = ("Revenue at risk: what the customers to call this week (the red list) are expected to "
                   "lose, each customer's churn probability × annual value (net revenue over the last 365 days), "
                   "summed over the red list.")


def baseline_words(baseline: str | None, freq: str) -> str:
    """What the baseline did, as a reader says it: 'repeating last year's figures' only when it did.

    The engine's baseline repeats the same period one season earlier only when two full seasons are known
    ("seasonal naive"); otherwise it repeats the latest period ("naive"), and the words must say so.
    """
    unit = FREQ_WORDS.get(freq, "period")
    if baseline == "seasonal naive":
        return "repeating the same weekday of the week before" if freq == "D" else "repeating last year's figures"
    return f"repeating the latest {unit}'s figure"


MODEL_NAMES = {"prophet": "Prophet", "seasonal_naive": "seasonal naive", "ets": "exponential smoothing",
               "theta": "Theta", "ces": "complex exponential smoothing",
               "combination": "weighted average of the best models", "recent_level": "recent level",
               "zero": "no sales so far", "naive": "naive"}
def model_name(model: Any) -> str:
    """A model's name as a reader says it ('ets' -> 'exponential smoothing'); '' when unknown."""
    text = "" if model is None else str(model)
    return MODEL_NAMES.get(text, text)


def accuracy_cells(metrics: dict[str, Any] | None) -> tuple[str, str]:
    """(backtest error, gain over the baseline) of one series' metrics, as table cells.

    The error is the backtests' mean sMAPE ('12%'); the gain is the relative cut in error against the
    baseline ('25% better', '10% worse', 'no better'); 'not backtested' and '' when there are no folds.
    """
    m = metrics or {}
    err, naive = m.get("smape"), m.get("naive_smape")
    if err is None or int(m.get("folds") or 0) == 0 or math.isnan(float(err)):
        return "not backtested", ""
    if naive is None or not naive or math.isnan(float(naive)):
        return fmt_pct(err), "n/a"
    rel = 1 - float(err) / float(naive)
    if trend(rel) == "flat":
        return fmt_pct(err), "no better"
    return fmt_pct(err), f"{fmt_pct(abs(rel))} {'better' if rel > 0 else 'worse'}"


def series_name(series_id: str) -> str:
    """Reader's name of a forecast series: 'All' -> 'Whole company', 'North/Tools' -> 'North · Tools'."""
    if series_id == ALL:
        return "Whole company"
    return series_id
