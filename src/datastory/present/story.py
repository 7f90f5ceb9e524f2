"""The story of one audience's pack in sentences and tables: the headlines, the accuracy per segment and
the data-quality counts, the same in the PDF/HTML report, the workbook and the email.

Pure: a Pack in, plain strings (and numbers) out, written with present.words. A regional pack is told
with its own figures only (its orders, customers, revenue at risk), never the company's.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from .. import kpis
from ..errors import DataError
from ..pack import Pack
from .words import (
    FREQ_WORDS,
    NO_EARLIER_PERIOD,
    accuracy_cells,
    fmt_count,
    fmt_money,
    fmt_pct,
    kpi_move,
    model_name,
    period_label,
    require_pack,
    series_name,
    trend,
)

__all__ = ["ACCURACY_HEADERS", "DQ_LABELS", "REGION_CHECKS_NOTE", "accuracy_rows", "churn_rate",
           "churn_sentence", "executive_summary", "forecast_sentence", "forecast_total", "headline_change",
           "quality_rows", "rate_sentence", "revenue_at_risk", "revenue_sentence", "total_backtested"]

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


def _total_record(p: Pack, series_id: str) -> dict[str, Any] | None:
    """The forecast stage's record of a series' total (total, total_lower, total_upper), None when absent."""
    m = (p.forecast_metrics.get("series") or {}).get(series_id) or {}
    keys = ("total_periods", "total", "total_lower", "total_upper")
    return m if all(isinstance(m.get(k), int | float) for k in keys) else None


def forecast_total(p: Pack, series_id: str) -> tuple[int, str, float, float, float]:
    """(periods ahead, their unit word, lower, central, upper) of one series' forecast total over the horizon.

    The range is the one the forecast stage recorded for the total (its backtested range, not the sum of the
    per-period ranges); a metrics file without that record gets the per-period bounds summed. The unit follows
    the forecast's frequency in its metrics ('weeks'), 'periods' when unknown.
    """
    require_pack(p)
    rec = _total_record(p, series_id)
    fut = p.forecast[(p.forecast["series_id"] == series_id) & p.forecast["is_forecast"]]
    n = int(rec["total_periods"]) if rec else len(fut)
    unit = FREQ_WORDS.get(str(p.forecast_metrics.get("freq", "")), "period") + ("s" if n != 1 else "")
    if rec:
        return n, unit, float(rec["total_lower"]), float(rec["total"]), float(rec["total_upper"])
    lo, mid, hi = (float(fut[c].sum()) for c in ("yhat_lower", "yhat", "yhat_upper"))
    return n, unit, lo, mid, hi


def total_backtested(p: Pack, series_id: str) -> bool:
    """False when the forecast stage says the range of the series' total is not backtested (the per-period
    ranges summed, too few totals known); True otherwise, and for a metrics file that does not say."""
    rec = _total_record(p, series_id)
    return not (rec and str(rec.get("total_range") or "").startswith("not backtested"))


def forecast_sentence(p: Pack, series_id: str | None = None) -> str:
    """'We expect 1.2 M to 1.4 M EUR over the next 13 weeks (central estimate 1.3 M).'"""
    require_pack(p)
    sid = series_id or p.headline_region
    n, unit, lo, mid, hi = forecast_total(p, sid)
    if n == 0:
        return f"No forecast is available for {sid}."
    # too few past totals to read the total's own range from: the per-period ranges added up, the widest they allow
    word = FREQ_WORDS.get(str(p.forecast_metrics.get("freq", "")), "period")
    flag = "" if total_backtested(p, sid) else f"; a cautious range, summed {word} by {word}"
    return (f"We expect {fmt_money(lo)} to {fmt_money(hi)} {p.currency} over the next {n} {unit} "
            f"(central estimate {fmt_money(mid)}{flag}).")


def revenue_at_risk(scores: pd.DataFrame) -> float:
    """Revenue at risk, the one meaning every format uses: the red list's summed revenue_at_risk."""
    return float(scores.loc[scores["red"].astype(bool), "revenue_at_risk"].sum())


def churn_sentence(p: Pack) -> str:
    """'3 customers to call this week (2 to win back, 1 for a second purchase), worth 2.5 k EUR a year, 1 of
    them new on the list (since ...); revenue at risk 1.2 k EUR. 4 more are on watch.'"""
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
    at_risk = fmt_money(revenue_at_risk(p.churn_scores))
    new = int(red["newly_red"].sum())
    since = p.churn_metrics.get("compare_date")
    newly = f", {fmt_count(new)} of them new on the list (since {since})" if new and since else ""
    return (f"{fmt_count(n)} customer{'s' if n != 1 else ''} to call this week{split}, worth {worth} "
            f"{p.currency} a year{newly}; revenue at risk {at_risk} {p.currency}.{more}")


def rate_sentence(change: dict[str, Any] | None) -> str | None:
    """'Return rate 1.4% → 1.2%, −0.2 pt on the previous month.' (None without a comparison)."""
    if change is None or "return_rate" not in change.get("kpis", {}):
        return None
    word = FREQ_WORDS[change["freq"]]
    return f"{kpi_move('return_rate', change['kpis']['return_rate'])} on the previous {word}."


ACCURACY_HEADERS = ("Segment", "Next {n} {unit}", "Range", "Backtest error", "Gain over the baseline", "Model")


def accuracy_rows(p: Pack) -> tuple[list[str], list[list[str]]]:
    """The accuracy-per-segment table: (headers, one row per series, headline first then alphabetical).

    Each row: segment, next-period forecast total, its range, backtest error, gain over the baseline, model.
    The report and the workbook both show this table, so its numbers read the same in both.
    """
    require_pack(p)
    ids = list(dict.fromkeys(p.forecast["series_id"]))
    if not ids:
        return [], []
    head = p.headline_region if p.headline_region in ids else ids[0]
    series = p.forecast_metrics.get("series", {}) or {}
    rows, n_unit = [], None
    for sid in [head, *sorted(s for s in ids if s != head)]:
        m = series.get(sid)
        n, unit, lo, mid, hi = forecast_total(p, sid)
        n_unit = n_unit or ((n, unit) if n else None)
        err, gain = accuracy_cells(m)
        model = model_name((m or {}).get("model")) or "n/a"
        rows.append([series_name(sid), fmt_money(mid) if n else "n/a",
                     f"{fmt_money(lo)} to {fmt_money(hi)}" if n else "n/a", err, gain, model])
    n, unit = n_unit or (0, "periods")
    headers = [h.format(n=n, unit=unit) for h in ACCURACY_HEADERS]
    return headers, rows


METHOD_WORDS = {"bottom_up": "summing the product lines up", "ols": "least squares", "wls_struct": "weighted least "
                "squares", "wls_var": "weighted least squares on the backtest errors", "mint_shrink": "MinT on the "
                "backtest errors"}


def coherence_sentence(p: Pack) -> str | None:
    """Whether the forecasts add up across the hierarchy, and that ranges are per series; None without a word."""
    require_pack(p)
    rc = p.forecast_metrics.get("reconciliation") or {}
    method = str(rc.get("method") or "none")
    if method == "none" or not (rc.get("families") or {}).get("reconciled"):
        return None
    how = METHOD_WORDS.get(method, method.replace("_", " "))
    left = (rc.get("families") or {}).get("left_out") or {}
    own = sorted(series_name(str(sid)) for sid in left if p.is_company or sid in p.regions)
    tail = (f" Not reconciled (a segment without a usable forecast): {', '.join(own)}; its parts keep their own "
            "forecasts." if own else "")
    return (f"The forecasts add up: product lines sum to their region and regions to the company in every period "
            f"(reconciled by {how}, chosen on the backtests). Each range is the segment's own, so ranges do not "
            f"add up.{tail}")


DQ_LABELS = (("rows_read", "Rows read"), ("rows_kept", "Rows kept"), ("duplicates_removed", "Duplicates removed"),
             ("missing_region_filled", "Missing regions filled"), ("return_lines", "Return lines"),
             ("cancelled_lines", "Cancelled lines (counted as returns)"), ("n_customers", "Customers"),
             ("n_orders", "Orders"))
REGION_CHECKS_NOTE = ("The row checks (rows read, duplicates, rejected rows) run on the whole data set before it is "
                      "split by region; they are reported in the company pack.")


def churn_rate(scores: pd.DataFrame) -> float | None:
    """Mean churn probability of the pack's scored customers (its own, for a region); None without any."""
    return float(scores["probability"].mean()) if len(scores) else None


def quality_rows(p: Pack) -> list[tuple[str, Any]]:
    """(label, value) rows of the data-quality table, counted for the pack's own audience.

    The company sees the ingest counts (the data-quality record). A region sees its own counts (orders,
    customers scored, to call, revenue at risk) from its pack, never the company's; values are numbers or text.
    """
    require_pack(p)
    dq = p.data_quality or {}
    if p.is_company:
        rows: list[tuple[str, Any]] = [(label, dq[k]) for k, label in DQ_LABELS if k in dq]
        rows += [(f"Rejected (unusable, set aside): {reason}", n)
                 for reason, n in sorted((dq.get("rejected") or {}).items())]
        rows += [(f"Excluded by rule: {reason}", n) for reason, n in sorted((dq.get("excluded") or {}).items())]
        empty = dq.get("empty_periods") or []
        if empty:
            rows.append(("Months without any row", ", ".join(str(m) for m in empty)))
        return rows
    where = ", ".join(p.regions)
    kp = p.kpis[p.kpis["region"].isin(p.regions)]
    cs = p.churn_scores
    return [(f"Orders ({where}, whole period)", int(kp["orders"].sum())),
            (f"Customers scored ({where})", len(cs)),
            (f"Customers to call ({where})", p.call_counts["call"]),
            (f"Revenue at risk ({where}, {p.currency})", fmt_money(revenue_at_risk(cs))),
            ("Row checks", REGION_CHECKS_NOTE)]


def executive_summary(p: Pack) -> list[str]:
    """The headline sentences, from the numbers: revenue trend, return rate, forecast range, churn risk.

    The PDF/HTML summary, the workbook's Summary sheet and the email body all lead with these, word for word.
    """
    require_pack(p)
    sentences = []
    if not p.kpis.empty:
        change = headline_change(p)
        sentences.append(revenue_sentence(change, p.currency))
        rates = rate_sentence(change)
        if rates:
            sentences.append(rates)
    sentences.append(forecast_sentence(p))
    sentences.append(churn_sentence(p))
    return sentences
