"""Churn risk sheet: every scored customer, riskiest value first, red-list rows filled red.

Written for size: a workbook in openpyxl's write-only mode streams rows to disk, and this sheet reuses one
pre-styled cell per column and fill (normal / red) instead of styling 10 new cells per row. That is safe
because write-only `append` serialises a row before it returns. 100,000 styled rows take about as long
as pandas.to_excel of the same rows unstyled (bench/workbook.py). The filter comes from the Excel
table's own autoFilter (a sheet autofilter on the same range would clash with the table and make Excel
repair the file).
"""

from __future__ import annotations

import pandas as pd
from openpyxl.cell import WriteOnlyCell
from openpyxl.worksheet.filters import AutoFilter
from openpyxl.worksheet.table import Table, TableColumn, TableStyleInfo

from . import _cells as c

TABLE_NAME = "ChurnRisk"


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
        ("red", "Call this week", None, 10),
    ]


def ordered(scores: pd.DataFrame) -> pd.DataFrame:
    """Highest revenue at risk first; ties by customer id so the order never depends on input order."""
    return scores.sort_values(["revenue_at_risk", "customer_id"], ascending=[False, True],
                              kind="stable", na_position="last").reset_index(drop=True)


def _column_values(df: pd.DataFrame, col: str) -> list:
    s = df[col]
    if col == "red":
        return ["yes" if bool(v) else "no" for v in s.fillna(False)]
    if pd.api.types.is_string_dtype(s) or s.dtype == object:
        s = s.astype("string").str.replace(c.ILLEGAL_CHARACTERS_RE, c.REPLACEMENT, regex=True)
        s = s.str.slice(0, c.MAX_TEXT).replace("", pd.NA)
    if pd.api.types.is_datetime64_any_dtype(s):
        return [None if pd.isna(v) else v.to_pydatetime() for v in s]
    return [c.plain(v) for v in s.astype(object)]


def write_churn(ws, scores: pd.DataFrame, currency: str) -> int:
    """Fill the Churn risk sheet; return the number of customer rows written."""
    cols = columns(currency)
    for i, (_, _, _, width) in enumerate(cols):
        ws.column_dimensions[chr(ord("A") + i)].width = width
    ws.freeze_panes = "A2"
    ws.append(c.header_row(ws, [h for _, h, _, _ in cols]))
    df = ordered(scores)
    if df.empty:
        ws.append([c.cell(ws, "No customers scored for this audience.", font=c.MUTED)])
        return 0
    values = [_column_values(df, src) for src, _, _, _ in cols]
    is_text = [fmt is None for _, _, fmt, _ in cols]
    plain_cells, red_cells = [], []
    for _, _, fmt, _ in cols:
        for bucket, fill in ((plain_cells, None), (red_cells, c.RED_FILL)):
            cell = WriteOnlyCell(ws)
            if fmt:
                cell.number_format = fmt
            if fill is not None:
                cell.fill = fill
            bucket.append(cell)
    red = df["red"].fillna(False).astype(bool).tolist()
    for i in range(len(df)):
        row = red_cells if red[i] else plain_cells
        for j, cell in enumerate(row):
            v = values[j][i]
            cell.value = v
            if is_text[j] and v is not None:
                cell.data_type = "s"
        ws.append(row)
    ref = f"A1:{chr(ord('A') + len(cols) - 1)}{len(df) + 1}"
    table = Table(displayName=TABLE_NAME, ref=ref, autoFilter=AutoFilter(ref=ref),
                  tableStyleInfo=TableStyleInfo(name="TableStyleLight1", showRowStripes=False))
    for i, (_, header, _, _) in enumerate(cols, 1):
        table.tableColumns.append(TableColumn(id=i, name=header))
    ws.add_table(table)
    return len(df)
