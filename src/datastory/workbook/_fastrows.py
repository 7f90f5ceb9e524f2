"""A fast <sheetData> for long sheets: rows built as XML text column by column, spliced into openpyxl's file.

Why: openpyxl serialises every cell through Python objects (about 10 µs a cell), so a 100,000-row sheet
costs as much as pandas.to_excel. Here openpyxl still writes the sheet (widths, frozen header, table,
styles) with the header and one *template row per style variant*; `splice` reads the style ids openpyxl
gave each template cell and replaces the template rows with rows generated from whole columns.

The cells are what openpyxl itself would write for the same values:
- text: always an inline string (`t="inlineStr"`), never a formula, whatever it starts with; XML-illegal
  control characters become U+FFFD, text is cut at Excel's 32,767-character limit, `&`, `<`, `>` are
  escaped, a CR is written as the character reference &#13; (so it reads back as CR, not LF), and text
  with leading/trailing whitespace gets xml:space="preserve"; an empty string is an empty cell;
- numbers: `<v>` formatted "%.16g" (openpyxl's safe_string); NaN, NA and ±inf are empty cells;
- dates: Excel serial numbers (1900 date system, openpyxl's adjustment before 1900-03-01), time zone
  dropped keeping the wall-clock time, NaT empty; booleans: `t="b"`.
An empty cell is still written when its style is not the default (so a red row is red end to end).
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import _cells as c

_EPOCH = np.datetime64("1899-12-30T00:00:00", "ns")
_DAY = np.timedelta64(86_400_000_000_000, "ns")
_TEMPLATE = re.compile(rb'<row r="(\d+)"[^>]*>(.*?)</row>', re.S)
_ESCAPES = {ord("&"): "&amp;", ord("<"): "&lt;", ord(">"): "&gt;", ord("\r"): "&#13;",
            **{i: c.REPLACEMENT for i in [*range(0, 9), 11, 12, *range(14, 32)]}}
_CELL = re.compile(rb'<c r="([A-Z]+)\d+"(?: s="(\d+)")?')


@dataclass(frozen=True)
class Column:
    """One sheet column: its letter and cell bodies per row (None = empty), of kind text/number/bool."""

    letter: str
    kind: str
    values: list


def letter(index: int) -> str:
    """Column letter of a 0-based index (A..Z, AA..)."""
    out = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        out = chr(65 + rem) + out
    return out


def _escape_one(text: str) -> str | None:
    """One inline-string body (`<t>…</t>`), or None for an empty cell. Cutting before cleaning is the
    same as after: the replacement of an illegal character is one character too."""
    text = text[:c.MAX_TEXT].translate(_ESCAPES)
    if not text:
        return None
    stripped = text.strip()
    return ('<t xml:space="preserve">' if stripped and stripped != text else "<t>") + text + "</t>"


def escape_text(s: pd.Series) -> list:
    """Escaped inline-string bodies of a text column; None for missing/empty. Each distinct value is
    escaped once (a region or yes/no column has a handful)."""
    codes, uniques = pd.factorize(s.astype("string").to_numpy(dtype=object, na_value=None), use_na_sentinel=True)
    bodies = np.array([_escape_one(str(u)) for u in uniques] + [None], dtype=object)
    return bodies[codes].tolist()  # code -1 (missing) picks the trailing None


def excel_serial(s: pd.Series) -> np.ndarray:
    """Excel serial day numbers of a datetime column (NaN for NaT), as openpyxl's to_excel computes them."""
    if getattr(s.dt, "tz", None) is not None:
        s = s.dt.tz_localize(None)
    ns = s.to_numpy(dtype="datetime64[ns]")
    serial = (ns - _EPOCH) / _DAY
    whole = np.floor(serial)
    return np.where((whole > 0) & (whole <= 60), serial - 1, serial)  # Excel's phantom 1900-02-29


def numbers(values: np.ndarray) -> list:
    """`<v>` bodies, "%.16g" like openpyxl; None for NaN and ±inf."""
    finite = np.isfinite(values)
    return [format(v, ".16g") if ok else None for v, ok in zip(values.tolist(), finite.tolist(), strict=True)]


def column(index: int, s: pd.Series) -> Column:
    """Convert one frame column to cell bodies; object and string columns are always text."""
    col = letter(index)
    if pd.api.types.is_datetime64_any_dtype(s):
        return Column(col, "number", numbers(excel_serial(s)))
    if pd.api.types.is_bool_dtype(s) and s.dtype != object:
        vals = s.to_numpy(dtype=object, na_value=None).tolist()
        return Column(col, "bool", [None if v is None else str(int(bool(v))) for v in vals])
    if pd.api.types.is_numeric_dtype(s) and s.dtype != object:
        ints = isinstance(s.dtype, np.dtype) and s.dtype.kind in "iu"
        return Column(col, "number", numbers(s.to_numpy() if ints else s.to_numpy("float64", na_value=np.nan)))
    return Column(col, "text", escape_text(s))


def _cells_of(col: Column, rows: list[str], red: list[bool], styles: tuple[str, str]) -> list[str]:
    """The `<c>` elements of one column; `styles` are the (plain, red) ` s="N"` attributes or ""."""
    head = f'<c r="{col.letter}'
    t = {"text": ' t="inlineStr"><is>', "number": "><v>", "bool": ' t="b"><v>'}[col.kind]
    tail = "</is></c>" if col.kind == "text" else "</v></c>"
    plain, hot = styles
    out = []
    append = out.append
    for r, is_red, v in zip(rows, red, col.values, strict=True):
        s = hot if is_red else plain
        if v is not None:
            append(head + r + '"' + s + t + v + tail)
        elif s:
            append(head + r + '"' + s + "/>")
        else:
            append("")
    return out


def template_styles(sheet: bytes, first_row: int, n_variants: int) -> list[dict[str, str]]:
    """Per template row (starting at `first_row`): column letter -> ' s="N"' attribute ("" if unstyled)."""
    rows = {int(m.group(1)): m.group(2) for m in _TEMPLATE.finditer(sheet)}
    found = []
    for r in range(first_row, first_row + n_variants):
        if r not in rows:
            raise ValueError(f"template row {r} missing from the sheet XML")
        found.append({m.group(1).decode(): (f' s="{m.group(2).decode()}"' if m.group(2) else "")
                      for m in _CELL.finditer(rows[r])})
    return found


def sheet_data(columns: list[Column], red: list[bool], first_row: int, styles: list[dict[str, str]]) -> bytes:
    """The rows' XML, row `first_row` onwards; a row uses styles[1] when red, else styles[0]."""
    rows = [str(r) for r in range(first_row, first_row + len(red))]
    cells = [_cells_of(col, rows, red, (styles[0].get(col.letter, ""), styles[-1].get(col.letter, "")))
             for col in columns]
    opens = ['<row r="' + r + '">' for r in rows]
    closes = ["</row>"] * len(rows)
    return "".join(itertools.chain.from_iterable(zip(opens, *cells, closes, strict=True))).encode("utf-8")


def splice(sheet: bytes, first_row: int, rows_xml: bytes) -> bytes:
    """Replace the sheet's rows from `first_row` (the template rows) with `rows_xml`."""
    start = sheet.find(f'<row r="{first_row}"'.encode())
    end = sheet.find(b"</sheetData>")
    if start < 0 or end < start:
        raise ValueError(f"row {first_row} or </sheetData> not found in the sheet XML")
    return sheet[:start] + rows_xml + sheet[end:]
