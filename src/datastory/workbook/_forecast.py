"""Forecast sheet: one table per series (date, actual, forecast, lower, upper) with the selected model
and its backtest MASE next to the naive baseline's, plus a native line chart per region total."""

from __future__ import annotations

from typing import Any

import pandas as pd
from openpyxl.chart import LineChart, Reference

from ..pack import Pack
from ..report.narrative import series_name
from ..schema import ALL
from . import _cells as c

COLUMNS = ["Date", "Actual", "Forecast", "Lower", "Upper"]


def series_order(forecast: pd.DataFrame, headline: str) -> list[str]:
    """Headline first, then region totals, then region / product series; alphabetical within each."""
    firsts = forecast.drop_duplicates("series_id")[["series_id", "region", "product_line"]]
    def key(row) -> tuple:
        return (row.series_id != headline, row.region != ALL, row.product_line != ALL, row.series_id)
    return [r.series_id for r in sorted(firsts.itertuples(index=False), key=key)]


def verdict(mase: Any, naive: Any, baseline: Any = "naive") -> str:
    if mase is None or naive is None:
        return "no backtest"
    return f"beats {baseline}" if mase < naive else f"no better than {baseline}"


def write_forecast(ws, pack: Pack) -> dict[str, dict[str, Any]]:
    """Fill the Forecast sheet; return {series_id: {"title", "ws", "first", "last"}} for charts."""
    c.widths(ws, {"A": 12, "B": 14, "C": 14, "D": 14, "E": 14, "F": 14, "G": 14})
    fm = pack.forecast_metrics or {}
    ws.append([c.cell(ws, "Revenue forecasts by segment", font=c.TITLE)])
    ws.append([c.cell(ws, f"Frequency {fm.get('freq', '?')}, horizon {fm.get('horizon', '?')} periods, "
                          f"up to {fm.get('folds', '?')} backtest folds. MASE < 1 beats a naive forecast "
                          "on average; the baseline's own MASE is shown beside it (seasonal naive repeats last "
                          "year, and needs two years of history; naive repeats the latest period).",
                          font=c.MUTED)])
    row = 2
    blocks: dict[str, dict[str, Any]] = {}
    fc = pack.forecast
    if fc.empty:
        ws.append([c.cell(ws, "No forecast series for this audience.", font=c.MUTED)])
        return blocks
    metrics = fm.get("series", {}) or {}
    for sid in series_order(fc, pack.headline_region):
        rows = fc[fc["series_id"] == sid].sort_values("ds", kind="stable")
        m = metrics.get(sid, {}) or {}
        model = m.get("model") or (rows["model"].dropna().iloc[-1] if rows["model"].notna().any() else "?")
        mase, naive = c.plain(m.get("mase")), c.plain(m.get("naive_mase"))
        baseline = m.get("baseline") or "naive"
        ws.append([])
        ws.append([c.cell(ws, sid, font=c.SUBTITLE)])
        ws.append([c.cell(ws, "Model", font=c.BOLD), c.cell(ws, model), c.cell(ws, "MASE", font=c.BOLD),
                   c.cell(ws, mase, fmt=c.FMT_RATIO, align=c.LEFT), c.cell(ws, "Baseline MASE", font=c.BOLD),
                   c.cell(ws, naive, fmt=c.FMT_RATIO, align=c.LEFT), c.cell(ws, verdict(mase, naive, baseline))])
        row += 3
        if m.get("notes"):
            ws.append([c.cell(ws, "Note", font=c.BOLD), c.cell(ws, m["notes"], font=c.MUTED)])
            row += 1
        ws.append(c.header_row(ws, COLUMNS))
        row += 1
        first = row + 1
        for r in rows.itertuples(index=False):
            ws.append([c.cell(ws, r.ds, fmt=c.FMT_DATE), c.cell(ws, r.y, fmt=c.FMT_MONEY),
                       c.cell(ws, r.yhat, fmt=c.FMT_MONEY), c.cell(ws, r.yhat_lower, fmt=c.FMT_MONEY),
                       c.cell(ws, r.yhat_upper, fmt=c.FMT_MONEY)])
        row += len(rows)
        blocks[sid] = {"title": sid, "ws": ws, "first": first, "last": row,
                       "total": rows["product_line"].iloc[0] == ALL}
    for sid, b in blocks.items():
        if b["total"]:
            ws.add_chart(forecast_chart(b, f"Revenue, {series_name(sid)}"), f"I{b['first'] - 3}")
    return blocks


def forecast_chart(block: dict[str, Any], title: str) -> LineChart:
    """A native line chart of actual, forecast, lower and upper for one Forecast-sheet block."""
    fws, first, last = block["ws"], block["first"], block["last"]
    chart = LineChart()
    chart.title = title
    chart.height, chart.width = 8, 16
    chart.y_axis.title = "Revenue"
    chart.y_axis.number_format = c.FMT_MONEY
    chart.x_axis.number_format = c.FMT_DATE
    chart.x_axis.delete = False
    chart.y_axis.delete = False
    data = Reference(fws, min_col=2, max_col=5, min_row=first - 1, max_row=last)
    chart.add_data(data, titles_from_data=True)
    chart.set_categories(Reference(fws, min_col=1, min_row=first, max_row=last))
    for s in chart.series[2:]:
        s.graphicalProperties.line.dashStyle = "dash"
    for s in chart.series:
        s.smooth = False
    return chart
