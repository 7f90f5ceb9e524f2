"""Churn risk sheet: every scored customer, riskiest value first, red-list rows filled red.

Written for size: openpyxl writes the sheet's frame (widths, frozen header, the Excel table, styles) with
the header and two template rows, plain and red; `_fastrows` then puts every customer row in their place,
built as XML text a column at a time with the style ids openpyxl gave the template cells. 100,000 styled
rows are written several times faster than pandas.to_excel writes them unstyled (bench/workbook.py).
The filter comes from the Excel table's own autoFilter (a sheet autofilter on the same range would clash
with the table and make Excel repair the file).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from openpyxl.styles import Alignment
from openpyxl.worksheet.filters import AutoFilter
from openpyxl.worksheet.table import Table, TableColumn, TableStyleInfo

from ..errors import DataError
from . import _cells as c
from . import _fastrows

TABLE_NAME = "ChurnRisk"
FIRST_ROW = 2  # the first customer row (row 1 is the header)
MAX_ROWS = 1_048_576  # Excel's sheet limit, header included
HEADER_HEIGHT = 32  # points: two lines of wrapped header text
HEADER_ALIGN = Alignment(wrap_text=True, vertical="center")


def columns(currency: str) -> list[tuple[str, str, str | None, float]]:
    """(source column, header, number format, width) of the sheet, in order."""
    return [
        ("customer_id", "Customer ID", None, 14),
        ("customer_name", "Name", None, 30),
        ("region", "Region", None, 12),
        ("probability", "Churn probability", c.FMT_PCT, 12),
        ("annual_value", f"Annual value ({currency})", c.FMT_MONEY, 16),
        ("revenue_at_risk", f"Revenue at risk ({currency})", c.FMT_MONEY, 18),
        ("recency_days", "Days since last order", c.FMT_INT, 12),
        ("last_order", "Last order", c.FMT_DATE, 12),
        ("reasons", "Reasons", None, 50),
        ("list", "List", None, 16),
        ("status", "Call or watch", None, 10),
        ("red", "Call this week", None, 10),
        ("newly_red", "New on the list", None, 10),
    ]


def check_fits(scores: pd.DataFrame) -> None:
    """Raise DataError if the customers do not fit on one sheet (rows are never dropped silently)."""
    if len(scores) + 1 > MAX_ROWS:
        raise DataError(f"{len(scores):,} scored customers do not fit on one Excel sheet "
                        f"({MAX_ROWS - 1:,} rows at most)", file="churn_scores",
                        fix="build the workbook per region (an audience with fewer regions)")


def ordered(scores: pd.DataFrame) -> pd.DataFrame:
    """Highest revenue at risk first; ties by customer id so the order never depends on input order."""
    return scores.sort_values(["revenue_at_risk", "customer_id"], ascending=[False, True],
                              kind="stable", na_position="last").reset_index(drop=True)


def _frame_for_sheet(df: pd.DataFrame, cols: list[tuple[str, str, str | None, float]]) -> list[_fastrows.Column]:
    """The sheet's columns as cell bodies; the "red" and "newly_red" flags are shown as yes/no."""
    out = []
    for i, (src, _, _, _) in enumerate(cols):
        s = df[src]
        if src in ("red", "newly_red"):
            s = pd.Series(np.where(s.fillna(False).astype(bool), "yes", "no"), index=s.index, dtype="string")
        out.append(_fastrows.column(i, s))
    return out


def write_churn(ws, scores: pd.DataFrame, currency: str) -> Callable[[bytes], bytes] | None:
    """Fill the Churn risk sheet with its header and template rows.

    Returns the rewrite that `_cells.package` applies to this sheet's XML to put the customer rows in
    place of the two template rows (plain, red), or None when no customer was scored.
    """
    cols = columns(currency)
    for i, (_, header, _, width) in enumerate(cols):  # the header wraps: room for its longest word + filter button
        ws.column_dimensions[_fastrows.letter(i)].width = max(width, max(map(len, header.split())) + 5)
    ws.freeze_panes = "A2"
    ws.print_title_rows = "1:1"  # the header repeats on every printed page
    ws.row_dimensions[1].height = HEADER_HEIGHT
    ws.append([c.cell(ws, h, font=c.BOLD, fill=c.HEADER_FILL, align=HEADER_ALIGN) for _, h, _, _ in cols])
    df = ordered(scores)
    if df.empty:
        ws.append([c.cell(ws, "No customers scored for this audience.", font=c.MUTED)])
        return None
    for fill in (None, c.RED_FILL):  # one template row per style variant; values are placeholders
        ws.append([c.cell(ws, 0, fmt=fmt, fill=fill, align=c.WRAP_LEFT if src == "reasons" else None)
                   for src, _, fmt, _ in cols])
    ref = f"A1:{_fastrows.letter(len(cols) - 1)}{len(df) + 1}"
    table = Table(displayName=TABLE_NAME, ref=ref, autoFilter=AutoFilter(ref=ref),
                  tableStyleInfo=TableStyleInfo(name="TableStyleLight1", showRowStripes=False))
    for i, (_, header, _, _) in enumerate(cols, 1):
        table.tableColumns.append(TableColumn(id=i, name=header))
    ws.add_table(table)
    body = _frame_for_sheet(df, cols)
    red = df["red"].fillna(False).astype(bool).tolist()

    def rewrite(sheet: bytes) -> bytes:
        styles = _fastrows.template_styles(sheet, FIRST_ROW, 2)
        return _fastrows.splice(sheet, FIRST_ROW, _fastrows.sheet_data(body, red, FIRST_ROW, styles))

    return rewrite
