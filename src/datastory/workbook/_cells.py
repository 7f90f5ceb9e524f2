"""Cell-level building blocks: safe text, value conversion, styles and deterministic packaging.

Safety: every string from data becomes a *string* cell. openpyxl turns any str starting with "=" into a
formula, so `text_cell` forces data_type "s" after assignment. Characters that XML 1.0 cannot carry
(\\x00-\\x08, \\x0b, \\x0c, \\x0e-\\x1f; openpyxl raises IllegalCharacterError for them) are replaced by
U+FFFD. A carriage return is legal but XML parsers normalise a raw CR to LF, so `package` writes it as
the character reference &#13; and it reads back exactly. Text longer than Excel's cell limit of
32,767 characters is cut there (Excel would otherwise "repair" the file), and an empty string is written
as an empty cell.
"""

from __future__ import annotations

import datetime as dt
import io as _io
import math
import zipfile
from collections.abc import Callable
from typing import Any

import pandas as pd
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Alignment, Font, PatternFill

REPLACEMENT = "\ufffd"
MAX_TEXT = 32_767
FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)

FONT_NAME = "Calibri"  # the workbook's default font; a Font without a name renders in a serif in LibreOffice


def font(*, size: float = 11, **kwargs: Any) -> Font:
    """A Font in the workbook's own typeface (bold, italic, color... as keyword arguments)."""
    return Font(name=FONT_NAME, size=size, **kwargs)


BOLD = font(bold=True)
TITLE = font(bold=True, size=16)
SUBTITLE = font(bold=True, size=12)
MUTED = font(italic=True, color="FF666666")
HEADER_FILL = PatternFill("solid", fgColor="FFDDE4EE")
# Excel's own "light red fill"; read back, a red row's fill.fgColor.rgb is "FF" + RED_FILL_RGB.
RED_FILL_RGB = "FFC7CE"
RED_FILL = PatternFill("solid", fgColor="FF" + RED_FILL_RGB)
GREEN = "FF1B7F3B"
RED = "FFC00000"
WRAP = Alignment(wrap_text=True, vertical="top")
WRAP_LEFT = Alignment(wrap_text=True, vertical="top", horizontal="left")
LEFT = Alignment(horizontal="left")
TOP = Alignment(vertical="top")  # a number read as a label's value, not as a column of figures

FMT_DATE = "yyyy-mm-dd"
FMT_MONEY = "#,##0"
FMT_NUMBER = "#,##0.00"
FMT_INT = "#,##0"
FMT_PCT = "0.0%"
FMT_CHANGE = "+0.0%;-0.0%;0.0%"  # relative change, always signed
FMT_RATIO = "0.00"  # MASE


def clean_text(value: str) -> str:
    """`value` with XML-illegal control characters replaced by U+FFFD, cut at Excel's cell limit."""
    return ILLEGAL_CHARACTERS_RE.sub(REPLACEMENT, value)[:MAX_TEXT]


def plain(value: Any) -> Any:
    """A Python value openpyxl can store: None for NaN/NA/NaT, builtin numbers, naive datetimes."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp):
        return value.tz_localize(None).to_pydatetime() if value.tzinfo else value.to_pydatetime()
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    return value


def put(cell: WriteOnlyCell, value: Any) -> WriteOnlyCell:
    """Assign `value` to `cell`; strings always stay strings (never formulas)."""
    value = plain(value)
    if isinstance(value, str) and value:
        cell.value = clean_text(value)
        cell.data_type = "s"
    else:
        cell.value = value if value != "" else None
    return cell


def cell(ws, value: Any, *, font: Font | None = None, fmt: str | None = None, fill: PatternFill | None = None,
         align: Alignment | None = None) -> WriteOnlyCell:
    """A styled write-only cell holding `value` safely."""
    c = WriteOnlyCell(ws)
    if font is not None:
        c.font = font
    if fmt is not None:
        c.number_format = fmt
    if fill is not None:
        c.fill = fill
    if align is not None:
        c.alignment = align
    return put(c, value)


class Appender:
    """Appends rows to a write-only sheet and knows their numbers (such a sheet keeps no public count), so a
    row holding long wrapped text can be given its height before it is written: neither Excel nor
    LibreOffice reliably grows a row for wrapped text on opening the file, and the text then overlaps."""

    def __init__(self, ws, wrap_width: float):
        self.ws, self.row, self.chars_per_line = ws, 0, max(1, int(wrap_width * 1.1))

    def __call__(self, cells: list, text: str | None = None) -> None:
        """Append `cells`; `text`, if given, is the row's wrapped text that sets its height."""
        self.row += 1
        if text:
            lines = sum(max(1, math.ceil(len(part) / self.chars_per_line)) for part in text.split("\n"))
            if lines > 1:
                self.ws.row_dimensions[self.row].height = 15 * lines
        self.ws.append(cells)


def header_row(ws, names: list[str]) -> list[WriteOnlyCell]:
    return [cell(ws, n, font=BOLD, fill=HEADER_FILL) for n in names]


def print_setup(ws) -> None:
    """Print (and PDF-export) the sheet landscape, one page wide, as many pages tall as it needs."""
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.page_setup.orientation = "landscape"
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0


def widths(ws, cols: dict[str, float]) -> None:
    """Set column widths; in write-only mode this must happen before the first row is appended."""
    for letter, width in cols.items():
        ws.column_dimensions[letter].width = width


def period_end(text: str) -> dt.datetime:
    """The data period end as a naive datetime: the workbook's fixed created/modified stamp."""
    try:
        ts = pd.Timestamp(text)
    except (ValueError, TypeError):
        return dt.datetime(*FIXED_ZIP_TIME)
    if pd.isna(ts):
        return dt.datetime(*FIXED_ZIP_TIME)
    return ts.tz_localize(None).to_pydatetime() if ts.tzinfo else ts.to_pydatetime()


def package(raw: bytes, rewrite: dict[str, Callable[[bytes], bytes]] | None = None) -> bytes:
    """Rewrite an .xlsx zip deterministically: fixed timestamps, attributes, order and compression.

    [Content_Types].xml goes first (as Excel writes it); the other entries keep openpyxl's order, which
    depends only on the workbook's content. Raw CRs in sheet XML become &#13; (see module docstring).
    `rewrite` maps entry names to functions applied to their bytes first (the fast churn rows).
    """
    rewrite = rewrite or {}
    src = zipfile.ZipFile(_io.BytesIO(raw))
    names = src.namelist()
    names.sort(key=lambda n: n != "[Content_Types].xml")
    out = _io.BytesIO()
    with zipfile.ZipFile(out, "w") as dst:
        for name in names:
            data = src.read(name)
            if name in rewrite:
                data = rewrite[name](data)
            if name.startswith("xl/worksheets/") and name.endswith(".xml"):
                data = data.replace(b"\r", b"&#13;")
            info = zipfile.ZipInfo(name, date_time=FIXED_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3
            info.external_attr = 0o644 << 16
            dst.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED, compresslevel=6)
    return out.getvalue()
