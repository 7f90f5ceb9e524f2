"""What changed sheet: the revenue bridge, its price/volume/mix split, the top movers and a bar chart of the parts.

Everything comes from `present.change.what_changed(pack)`: the amounts are written as numbers (exact, to the
cent) next to the words the PDF and the email use for them ("As in the report"), so the three formats agree.
Names from data are string cells (`_cells.cell`), never formulas.
"""

from __future__ import annotations

from openpyxl.chart import BarChart, Reference
from openpyxl.chart.marker import DataPoint
from openpyxl.chart.series import SeriesLabel
from openpyxl.styles import Alignment

from ..present import Pack
from ..present.change import Change, Row, what_changed
from ..present.palette import OKABE_ITO
from . import _cells as c

HEADERS = ["Part", "Amount", "Customers", "As in the report", "Who"]
RIGHT = Alignment(horizontal="right", vertical="top")
INDENT = Alignment(horizontal="left", indent=1)  # words next to a column of figures, not run into it
UP, DOWN = OKABE_ITO["green"].lstrip("#"), OKABE_ITO["vermillion"].lstrip("#")


def _rows(ws, rows: list[Row]) -> list[list]:
    return [[c.cell(ws, r.label, font=c.BOLD if r.kind == "total" else None),
             c.cell(ws, r.amount, fmt=c.FMT_MONEY), c.cell(ws, r.customers, fmt=c.FMT_INT),
             c.cell(ws, r.text, align=RIGHT), c.cell(ws, r.explain, font=c.MUTED)] for r in rows]


def parts_chart(ws, first: int, last: int, currency: str, amounts: list[float]) -> BarChart:
    """A native bar chart of the bridge's parts (rows `first`..`last`, labels in A, amounts in B),
    rises in green and falls in red."""
    chart = BarChart()
    chart.type = "col"
    chart.title = "What moved revenue"
    chart.height, chart.width = 8, 18
    chart.y_axis.title = f"Change ({currency})"
    chart.y_axis.number_format = c.FMT_MONEY
    chart.y_axis.delete = False
    chart.x_axis.delete = False
    chart.x_axis.tickLblPos = "low"  # the names under the axis, clear of the falls' bars
    chart.legend = None
    chart.add_data(Reference(ws, min_col=2, min_row=first, max_row=last), titles_from_data=False)
    chart.set_categories(Reference(ws, min_col=1, min_row=first, max_row=last))
    series = chart.series[0]
    series.tx = SeriesLabel(v="Change")
    for i, amount in enumerate(amounts):
        point = DataPoint(idx=i)
        point.graphicalProperties.solidFill = UP if amount >= 0 else DOWN
        point.graphicalProperties.line.solidFill = UP if amount >= 0 else DOWN
        series.dPt.append(point)
    return chart


def write_change(ws, pack: Pack, change: Change | None = None) -> None:
    """Fill the What changed sheet of `pack` (`change`: what_changed(pack), if already made)."""
    ch = change or what_changed(pack)
    c.widths(ws, {"A": 36, "B": 16, "C": 16, "D": 16, "E": 48})
    add = c.Appender(ws, 34)
    add([c.cell(ws, ch.title, font=c.TITLE)])
    add([c.cell(ws, f"{ch.where}; amounts in {pack.currency}.", font=c.MUTED)])
    if ch.message:
        add([c.cell(ws, ch.message, align=c.WRAP_LEFT)], text=ch.message)
        return
    add([c.cell(ws, ch.sentence, align=c.WRAP_LEFT)], text=ch.sentence)
    add([])
    add(c.header_row(ws, HEADERS))
    bridge_rows = _rows(ws, ch.rows)
    first_step = add.row + 2  # the row after the previous period's total
    for r in bridge_rows:
        add(r)
    last_step = add.row - 1
    add([])
    if ch.split:
        add(c.header_row(ws, ["Existing customers' change", *HEADERS[1:4], "What"]))
        for r in _rows(ws, ch.split):
            add(r)
    else:
        add([c.cell(ws, ch.split_note, font=c.MUTED, align=c.WRAP_LEFT)], text=ch.split_note)
    kinds = list(dict.fromkeys((m.kind, m.direction) for m in ch.movers))
    for kind, direction in kinds:
        add([])
        add(c.header_row(ws, [f"{kind}: largest {direction.lower()}s", ch.previous_period, ch.period, "Change",
                              "As in the report"]))
        for m in ch.movers:
            if (m.kind, m.direction) == (kind, direction):
                add([c.cell(ws, m.name), c.cell(ws, m.previous, fmt=c.FMT_MONEY),
                     c.cell(ws, m.current, fmt=c.FMT_MONEY), c.cell(ws, m.change, fmt=c.FMT_MONEY),
                     c.cell(ws, m.change_text, align=INDENT)])
    add([])
    ws.add_chart(parts_chart(ws, first_step, last_step, pack.currency, [r.amount for r in ch.steps]),
                 f"A{add.row + 1}")
