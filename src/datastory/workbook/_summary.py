"""Summary sheet: title, audience, period, KPI tiles with change arrows, headline forecast chart.

The tiles show exactly the numbers of the report and the email: the KPI change comes from
`present.story.headline_change` (i.e. `kpis.latest_change` up to the data's last day), the arrows
follow `words.trend` and the labels `words.KPI_LABELS`. `kpi_tiles` is the pure core
(that change dict and the churn metrics in, tile dicts out); `write_summary` lays the tiles out.
"""

from __future__ import annotations

import math
from numbers import Real
from typing import Any

from .. import config
from ..errors import DataError
from ..present import Pack
from ..present.story import churn_rate, executive_summary, headline_change
from ..present.words import (
    KPI_LABELS,
    NO_EARLIER_PERIOD,
    RATE_KPIS,
    is_good,
    kpi_delta,
    kpi_trend,
    period_label,
    rate_points,
    series_name,
)
from . import _cells as c
from ._forecast import forecast_chart

LABELS = {**KPI_LABELS, "churn_rate": "Churn rate"}  # every tile's label, in tile order
KPI_FORMATS = {"revenue": c.FMT_MONEY, "orders": c.FMT_INT, "active_customers": c.FMT_INT,
               "new_customers": c.FMT_INT, "avg_order_value": c.FMT_NUMBER, "return_rate": c.FMT_PCT}
MONEY_KPIS = ("revenue", "avg_order_value")  # shown with the pack's currency as unit
ARROWS = {"up": "▲", "down": "▼", "flat": ""}
HEADERS = ["KPI", "Value", "Previous", "Change", "", "Unit", "Note"]
FMT_POINTS = '+0.0" pt";-0.0" pt";0.0" pt"'  # a rate's change, in percentage points


def _churn_rate(churn_metrics: dict[str, Any] | None) -> float | None:
    """The churn record's "churn_rate" (mean churn probability of the scored customers), None if absent/NaN."""
    rate = (churn_metrics or {}).get("churn_rate")
    if rate is None:
        return None
    if isinstance(rate, bool) or not isinstance(rate, Real):
        raise DataError(f"churn_rate is not a number: {rate!r}", file=config.where("churn_metrics"), column="churn_rate",
                        fix="re-run the churn stage")
    return None if math.isnan(float(rate)) else float(rate)


def kpi_tiles(change: dict[str, Any] | None, churn_metrics: dict[str, Any] | None = None,
              own_rate: float | None = None) -> list[dict[str, Any]]:
    """One tile per KPI of `change` (kpis.latest_change's / headline_change's dict), then churn rate.

    Each tile: key, label, value, previous, change (relative, None when previous is 0; for a rate, the
    difference in percentage points), fmt, change_fmt, words (the change as the report and email write it),
    trend ("up"/"down"/"flat", as the report's tiles), good (True/False, None when flat), note. The churn
    rate is `own_rate` (the pack's own customers) when given, else the metrics'. `change` None
    (fewer than two complete periods) gives no KPI tiles. The churn tile has no previous value: the
    churn stage scores one date only.
    """
    tiles: list[dict[str, Any]] = []
    if change is not None:
        items = change.get("kpis") if isinstance(change, dict) else None
        missing = [k for k in KPI_LABELS if not isinstance(items, dict) or k not in items]
        if missing:
            raise DataError(f"the KPI change lacks {', '.join(missing)}", column=missing[0],
                            fix="pass the dict returned by kpis.latest_change / story.headline_change")
        for key, label in KPI_LABELS.items():
            item = items[key]
            direction = kpi_trend(key, item)
            rate = key in RATE_KPIS
            delta = kpi_delta(key, item)
            change, change_fmt, fmt = item["change"], c.FMT_CHANGE, KPI_FORMATS[key]
            if rate:
                change, decimals = (rate_points(item["value"], item["previous"]) if item["previous"] is not None
                                    else (None, 1))
                change_fmt = FMT_POINTS if decimals == 1 else FMT_POINTS.replace("0.0", "0.00")
                fmt = fmt if decimals == 1 else fmt.replace("0.0", "0.00")  # the rates as the report shows them
            tiles.append({"key": key, "label": label, "value": item["value"], "previous": item["previous"],
                          "change": change, "fmt": fmt, "change_fmt": change_fmt,
                          "trend": direction, "good": is_good(key, direction), "words": delta,
                          "note": "" if change is not None else "previous value 0"})
    rate = _churn_rate(churn_metrics) if own_rate is None else own_rate
    if rate is not None:
        when = (churn_metrics or {}).get("score_date")
        tiles.append({"key": "churn_rate", "label": LABELS["churn_rate"], "value": rate, "previous": None,
                      "change": None, "fmt": c.FMT_PCT, "change_fmt": c.FMT_CHANGE, "words": "n/a",
                      "trend": "flat", "good": None,
                      "note": f"scored {when}; no earlier score to compare" if when
                      else "no earlier score to compare"})
    return tiles


def heading(change: dict[str, Any] | None, where: str) -> str:
    """'Key figures, Whole company: May 2025 vs April 2025' (no periods when there is no change)."""
    if change is None:
        return f"Key figures, {where}"
    return (f"Key figures, {where}: {period_label(change['period'], change['freq'])} vs "
            f"{period_label(change['previous_period'], change['freq'])}")


def summary_figures(pack: Pack) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """(KPI change as the report shows it, tiles); the change is None without KPI rows or with too few periods.

    Raises DataError when the pack has KPI rows but none for its headline region (a broken pack), or
    when its churn_rate is not a number.
    """
    change = None if pack.kpis.empty else headline_change(pack)
    _churn_rate(pack.churn_metrics)  # a broken metrics file still fails loudly
    return change, kpi_tiles(change, pack.churn_metrics, churn_rate(pack.churn_scores))


def _headlines(pack: Pack) -> list[str]:
    """The report's headline sentences; a figure that cannot be written (an infinite amount) is said, not fatal:
    the sheets below still hold every value as it is."""
    try:
        return executive_summary(pack)
    except DataError as exc:
        return [f"Headlines not available: {exc.problem}"]


def write_summary(ws, pack: Pack, figures: tuple[dict[str, Any] | None, list[dict[str, Any]]],
                  headline: dict[str, Any] | None) -> None:
    """Fill the Summary sheet from `figures` (summary_figures(pack)).

    `headline` = {"title", "ws", "first", "last"} of the Forecast block charted under the tiles.
    """
    c.widths(ws, {"A": 24, "B": 14, "C": 14, "D": 10, "E": 4, "F": 8, "G": 40})
    ws.sheet_properties.pageSetUpPr.fitToPage = True  # print the tiles and chart on one page width
    ws.page_setup.fitToWidth, ws.page_setup.fitToHeight = 1, 0
    prov = pack.provenance
    where = series_name(pack.headline_region)
    change, tiles = figures
    rows: list[list[Any]] = [
        [c.cell(ws, pack.title, font=c.TITLE)],
        [c.cell(ws, f"{pack.company} · {pack.label}", font=c.SUBTITLE)],
        [c.cell(ws, "Period"), c.cell(ws, f"{prov.period_start} to {prov.period_end}")],
        [c.cell(ws, "Regions"), c.cell(ws, ", ".join(pack.regions) or "(none)")],
        [c.cell(ws, "Amounts in"), c.cell(ws, pack.currency)],
        [],
        [c.cell(ws, "Headlines", font=c.SUBTITLE)],
        *[[c.cell(ws, sentence)] for sentence in _headlines(pack)],
        [],
        [c.cell(ws, heading(change, where), font=c.SUBTITLE)],
    ]
    if pack.kpis.empty:
        rows.append([c.cell(ws, "No KPI data for this audience.", font=c.MUTED)])
    elif change is None:
        rows.append([c.cell(ws, NO_EARLIER_PERIOD, font=c.MUTED)])
    if tiles:
        rows.append(c.header_row(ws, HEADERS))
    for t in tiles:
        colour = None if t["good"] is None else (c.GREEN if t["good"] else c.RED)
        font = c.font(bold=True, color=colour) if colour else None
        unit = pack.currency if t["key"] in MONEY_KPIS else ""
        rows.append([c.cell(ws, t["label"], font=c.BOLD), c.cell(ws, t["value"], fmt=t["fmt"]),
                     c.cell(ws, t["previous"], fmt=t["fmt"]),
                     c.cell(ws, t["change"], fmt=t["change_fmt"], font=font),
                     c.cell(ws, ARROWS[t["trend"]], font=font), c.cell(ws, unit),
                     c.cell(ws, t["note"], font=c.MUTED)])
    rows.append([])
    if headline is None:
        rows.append([c.cell(ws, "No forecast available for this audience.", font=c.MUTED)])
    else:
        rows.append([c.cell(ws, f"Revenue forecast: {series_name(headline['title'])}, the last periods and "
                                "the ones ahead", font=c.SUBTITLE)])
    for row in rows:
        ws.append(row)
    if headline is not None:
        chart = forecast_chart(headline, f"Revenue, {series_name(headline['title'])}")
        ws.add_chart(chart, f"A{len(rows) + 1}")
