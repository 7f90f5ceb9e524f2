"""Forecast and Accuracy sheets, and the forecast-focused chart of the Summary.

The Forecast sheet is one long, filterable table (series, region, product line, date, actual or
forecast, the figures and the model) with a frozen header that repeats on every printed page: a
reader filters it to the segment they care about. The Accuracy sheet is the report's accuracy table
(present.story.accuracy_rows), word for word, plus the backtest MASE beside the baseline's.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from openpyxl.chart import LineChart, Reference
from openpyxl.chart.axis import DateAxis
from openpyxl.chart.series import SeriesLabel
from openpyxl.styles import Alignment
from openpyxl.worksheet.filters import AutoFilter
from openpyxl.worksheet.table import Table, TableColumn, TableStyleInfo

from ..present import Pack
from ..present.palette import ACTUAL, BAND, FORECAST
from ..present.story import accuracy_rows, coherence_sentence
from ..present.words import model_name, series_name
from ..schema import ALL
from . import _cells as c

COLUMNS = [("Series", 26), ("Region", 12), ("Product line", 16), ("Date", 12), ("Kind", 10), ("Actual", 14),
           ("Forecast", 14), ("Lower", 14), ("Upper", 14), ("Model", 22)]
TABLE_NAME = "Forecast"
CHART_HISTORY = 26  # actual periods shown before the forecast in the Summary's chart
FMT_AXIS_DATE = "mmm yy"
RIGHT = Alignment(horizontal="right")  # the accuracy table's figures, written as the report writes them


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
    """Fill the Forecast sheet; return {series_id: {"title", "ws", "first", "last", "first_forecast"}}
    of each series' rows (for charts)."""
    c.widths(ws, {chr(ord("A") + i): w for i, (_, w) in enumerate(COLUMNS)})
    ws.freeze_panes = "A2"
    ws.print_title_rows = "1:1"
    blocks: dict[str, dict[str, Any]] = {}
    ws.append(c.header_row(ws, [h for h, _ in COLUMNS]))
    fc = pack.forecast
    if fc.empty:
        ws.append([c.cell(ws, "No forecast series for this audience.", font=c.MUTED)])
        return blocks
    row = 1
    for sid in series_order(fc, pack.headline_region):
        rows = fc[fc["series_id"] == sid].sort_values("ds", kind="stable")
        first = row + 1
        name = series_name(sid)
        for r in rows.itertuples(index=False):
            fut = bool(r.is_forecast)
            ws.append([c.cell(ws, name), c.cell(ws, "All regions" if r.region == ALL else r.region),
                       c.cell(ws, "All lines" if r.product_line == ALL else r.product_line),
                       c.cell(ws, r.ds, fmt=c.FMT_DATE), c.cell(ws, "forecast" if fut else "actual"),
                       c.cell(ws, r.y, fmt=c.FMT_MONEY), c.cell(ws, r.yhat, fmt=c.FMT_MONEY),
                       c.cell(ws, r.yhat_lower, fmt=c.FMT_MONEY), c.cell(ws, r.yhat_upper, fmt=c.FMT_MONEY),
                       c.cell(ws, model_name(r.model))])
        row += len(rows)
        n_hist = int((~rows["is_forecast"].astype(bool)).sum())
        blocks[sid] = {"title": sid, "ws": ws, "first": first, "last": row, "first_forecast": first + n_hist}
    ref = f"A1:{chr(ord('A') + len(COLUMNS) - 1)}{row}"
    table = Table(displayName=TABLE_NAME, ref=ref, autoFilter=AutoFilter(ref=ref),
                  tableStyleInfo=TableStyleInfo(name="TableStyleLight1", showRowStripes=True))
    for i, (header, _) in enumerate(COLUMNS, 1):
        table.tableColumns.append(TableColumn(id=i, name=header))
    ws.add_table(table)
    return blocks


def write_accuracy(ws, pack: Pack) -> None:
    """The accuracy per segment, as the report shows it, with the MASE of the model and of its baseline."""
    c.widths(ws, {"A": 22, "B": 16, "C": 20, "D": 15, "E": 23, "F": 34, "G": 8, "H": 15, "I": 24})
    ws.print_title_rows = "6:6"
    headers, rows = accuracy_rows(pack)
    ws.append([c.cell(ws, f"Accuracy per segment (amounts in {pack.currency})", font=c.TITLE)])
    for line in ("Backtest error: how far the forecast was off on average in rolling backtests (sMAPE).",
                 "Gain over the baseline: how much smaller that error is than the baseline's.",
                 "MASE below 1 beats a naive forecast; the baseline's own MASE stands beside it."):
        ws.append([c.cell(ws, line, font=c.MUTED)])
    coherent = coherence_sentence(pack)
    ws.append([c.cell(ws, coherent or "", font=c.MUTED)])   # one row either way: the header stays on row 6
    if not rows:
        ws.append([c.cell(ws, "No forecast series for this audience.", font=c.MUTED)])
        return
    ws.append(c.header_row(ws, [*headers, "MASE", "Baseline MASE", "Verdict"]))
    series = pack.forecast_metrics.get("series", {}) or {}
    names = {series_name(sid): sid for sid in set(pack.forecast["series_id"])}
    for r in rows:
        m = series.get(names.get(r[0], r[0])) or {}
        mase, naive = c.plain(m.get("mase")), c.plain(m.get("naive_mase"))
        ws.append([c.cell(ws, r[0], font=c.BOLD), *(c.cell(ws, v, align=RIGHT) for v in r[1:5]), c.cell(ws, r[5]),
                   c.cell(ws, mase, fmt=c.FMT_RATIO), c.cell(ws, naive, fmt=c.FMT_RATIO),
                   c.cell(ws, verdict(mase, naive, m.get("baseline") or "naive"))])


def forecast_chart(block: dict[str, Any], title: str, history: int = CHART_HISTORY) -> LineChart:
    """A native line chart of one series focused on its forecast: the last `history` actuals, then the
    forecast with its range, over a date axis labelled by month."""
    fws, last = block["ws"], block["last"]
    first = max(block["first"], block.get("first_forecast", block["first"]) - history)
    chart = LineChart()
    chart.title = title
    chart.height, chart.width = 8, 18
    chart.y_axis.title = "Revenue"
    chart.y_axis.number_format = c.FMT_MONEY
    chart.y_axis.crossAx = 500
    chart.x_axis = DateAxis(crossAx=100)
    chart.x_axis.number_format = FMT_AXIS_DATE
    chart.x_axis.majorTimeUnit = "months"
    chart.x_axis.majorUnit = 1
    chart.x_axis.delete = False
    chart.y_axis.delete = False
    chart.legend.position = "b"
    for col in range(6, 10):  # Actual, Forecast, Lower, Upper
        chart.add_data(Reference(fws, min_col=col, max_col=col, min_row=first, max_row=last), titles_from_data=False)
    for s, name in zip(chart.series, ("Actual", "Forecast", "Lower", "Upper"), strict=True):
        s.tx = SeriesLabel(v=name)
        s.smooth = False
    colours = tuple(h.lstrip("#") for h in (ACTUAL, FORECAST, BAND, BAND))
    for s, colour in zip(chart.series, colours, strict=True):
        s.graphicalProperties.line.solidFill = colour
    for s in chart.series[2:]:
        s.graphicalProperties.line.dashStyle = "dash"
    chart.set_categories(Reference(fws, min_col=4, min_row=first, max_row=last))
    return chart
