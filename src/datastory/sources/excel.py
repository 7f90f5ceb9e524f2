"""Excel transactions (.xlsx / .xlsm): one sheet, header in row 1, values as the cells hold them.

A workbook is a zip of XML parts, and it comes from outside, so it is inspected before any parser sees it:
- it must be a readable zip (else: corrupt, or another format saved under an .xlsx name);
- it must not be a zip bomb: the members' declared sizes are checked against MAX_UNCOMPRESSED (total) and
  MAX_RATIO (per member above RATIO_MIN_SIZE), then every member the reader will touch is unzipped in
  chunks and refused if it holds more than its header declared (a lying header);
- the chosen sheet must hold no formulas: datastory reads values, and a formula from data must never be
  evaluated or passed on (openpyxl-written formulas have no cached value, so they would read as empty).
Only then python-calamine reads the sheet's cell values (numbers, datetimes, text; empty = None).
"""

from __future__ import annotations

import posixpath
import re
import struct
import xml.etree.ElementTree as ET
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import pandas as pd

from ..config import FILE_EXTENSIONS, DataParams
from ..errors import DataError
from . import Raw, check_header, display, no_rows, source_path

EXTENSIONS = FILE_EXTENSIONS["excel"]
MAX_UNCOMPRESSED = 1 << 30      # bytes: all members together, once unzipped (1 GiB)
MAX_RATIO = 200                 # uncompressed / compressed size of one member ...
RATIO_MIN_SIZE = 4 << 20        # ... checked for members above this uncompressed size (4 MiB)
MAX_META = 64 << 20             # bytes: the workbook / relationship parts parsed here to find the sheet
CHUNK = 1 << 20                 # bytes unzipped per step while streaming a member
IDENTIFIERS = frozenset({"order_id", "customer_id", "product", "product_line", "region", "country",
                         "customer_name"})

CORRUPT = "not a readable .xlsx workbook (corrupt, or another format saved with an .xlsx name)"
CORRUPT_FIX = ("open it in Excel and save it as .xlsx (File > Save As > Excel Workbook), or export the sheet "
               "as CSV and set source: csv in params/data.yaml")
BOMB_FIX = ("re-export the workbook from the program that made it (File > Save As > Excel Workbook), or "
            "export the sheet as CSV and set source: csv in params/data.yaml")
FORMULA_FIX = ("in Excel: select all, copy, Paste Special > Values, save; or export the sheet as CSV and set "
               "source: csv in params/data.yaml")

_OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"   # legacy .xls, or a password-protected (encrypted) workbook
_FORMULA = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?f[\s/>]")
_CELL = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?c\s[^>]*?\br=\"([A-Za-z]{1,3})([0-9]{1,7})\"")
_SHEETDATA_END = re.compile(rb"</(?:[A-Za-z_][\w.-]*:)?sheetData>|<(?:[A-Za-z_][\w.-]*:)?sheetData\s*/>")
_OVERLAP = 4096                 # bytes kept between chunks so a tag split across them is still found


def read(cfg: DataParams, root: Path) -> Raw:
    """The mapped columns of the configured sheet of an .xlsx/.xlsm file (see module doc)."""
    suffix = Path(cfg.file.path).suffix.lower()
    if suffix not in EXTENSIONS:
        raise DataError(f"source is excel but the file's extension is {suffix or '(none)'!r}; datastory reads "
                        ".xlsx and .xlsm workbooks", file=cfg.file.path, fix=_extension_fix(suffix))
    path = source_path(cfg, root)
    name = display(path, root) or cfg.file.path
    infos = inspect_zip(path, name)
    with open(path, "rb") as fh:
        sheet, part = locate_sheet(fh, infos, cfg.file.sheet, name)
        verify_members(fh, infos, part, sheet, name)
    rows = _cells(path, sheet, name)
    return to_raw(rows, cfg, name, sheet)


# ---------------------------------------------------------------- the zip, before any parser
def inspect_zip(path: Path, name: str) -> dict[str, zipfile.ZipInfo]:
    """The workbook's members by name, refused when not a plain zip or when its declared sizes are a bomb."""
    with open(path, "rb") as fh:
        magic = fh.read(8)
    if magic == _OLE:
        raise DataError(CORRUPT + ": it is an old-style .xls or a password-protected workbook", file=name,
                        fix="remove the password (File > Info > Protect Workbook) or convert it: " + CORRUPT_FIX)
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError, NotImplementedError):
        raise DataError(CORRUPT, file=name, fix=CORRUPT_FIX) from None
    members: dict[str, zipfile.ZipInfo] = {}
    for info in infos:
        if info.filename in members:
            raise DataError(f"{CORRUPT}: the zip holds '{info.filename}' twice", file=name, fix=CORRUPT_FIX)
        if info.flag_bits & 0x1:
            raise DataError(f"{CORRUPT}: member '{info.filename}' is encrypted", file=name, fix=CORRUPT_FIX)
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise DataError(f"{CORRUPT}: member '{info.filename}' uses a compression Excel does not write",
                            file=name, fix=CORRUPT_FIX)
        members[info.filename] = info
    total = sum(i.file_size for i in infos)
    if total > MAX_UNCOMPRESSED:
        raise DataError(f"refused: the workbook would unzip to {_size(total)}, over the limit of "
                        f"{_size(MAX_UNCOMPRESSED)} (a zip bomb, or far larger than a transaction export)",
                        file=name, fix=BOMB_FIX)
    for info in infos:
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > RATIO_MIN_SIZE and ratio > MAX_RATIO:
            raise DataError(f"refused: member '{info.filename}' would unzip from {_size(info.compress_size)} to "
                            f"{_size(info.file_size)} (ratio {ratio:,.0f}:1, limit {MAX_RATIO}:1); this looks "
                            "like a zip bomb", file=name, fix=BOMB_FIX)
    return members


def _stream(fh: BinaryIO, info: zipfile.ZipInfo, name: str) -> Iterator[bytes]:
    """A member's unzipped bytes in chunks, measured: refused when it holds more than its header declares.

    Unzips the raw deflate stream itself (zipfile would silently stop at the declared size, and the
    calamine reader need not), so a lying header cannot smuggle more bytes past inspect_zip.
    """
    fh.seek(info.header_offset)
    head = fh.read(30)
    if len(head) < 30 or head[:4] != b"PK\x03\x04":
        raise DataError(f"{CORRUPT}: member '{info.filename}' is damaged", file=name, fix=CORRUPT_FIX)
    name_len, extra_len = struct.unpack("<HH", head[26:30])
    fh.seek(info.header_offset + 30 + name_len + extra_len)
    left, produced = info.compress_size, 0
    unzip = zlib.decompressobj(-zlib.MAX_WBITS) if info.compress_type == zipfile.ZIP_DEFLATED else None
    try:
        while left > 0 and not (unzip and unzip.eof):
            data = fh.read(min(CHUNK, left))
            if not data:
                raise DataError(f"{CORRUPT}: member '{info.filename}' is truncated", file=name, fix=CORRUPT_FIX)
            left -= len(data)
            while data:
                if unzip is None:
                    out, data = data, b""
                else:
                    out = unzip.decompress(data, CHUNK)
                    data = unzip.unconsumed_tail
                produced += len(out)
                if produced > info.file_size:
                    raise DataError(f"refused: member '{info.filename}' holds more than the {_size(info.file_size)} "
                                    "its zip header declares (a disguised zip bomb, or a damaged file)",
                                    file=name, fix=BOMB_FIX)
                if out:
                    yield out
                if unzip is not None and unzip.eof:
                    break
    except zlib.error:
        raise DataError(f"{CORRUPT}: member '{info.filename}' is damaged", file=name, fix=CORRUPT_FIX) from None


def _part(fh: BinaryIO, infos: dict[str, zipfile.ZipInfo], member: str, name: str) -> ET.Element:
    """A small XML part (workbook, relationships), parsed; no DTDs (an OOXML part never has one)."""
    info = infos.get(member)
    if info is None:
        raise DataError(f"{CORRUPT}: part '{member}' is missing", file=name, fix=CORRUPT_FIX)
    if info.file_size > MAX_META:
        raise DataError(f"refused: part '{member}' would unzip to {_size(info.file_size)}", file=name, fix=BOMB_FIX)
    data = b"".join(_stream(fh, info, name))
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise DataError(f"{CORRUPT}: part '{member}' declares a DTD", file=name, fix=CORRUPT_FIX)
    try:
        return ET.fromstring(data)
    except ET.ParseError:
        raise DataError(f"{CORRUPT}: part '{member}' is not well-formed XML", file=name, fix=CORRUPT_FIX) from None


def _targets(rels: ET.Element, base: str) -> dict[str, tuple[str, str]]:
    """Relationship id -> (type, member path) of a .rels part whose source lives in folder `base`."""
    out = {}
    for rel in rels.iterfind(".//{*}Relationship"):
        target = rel.get("Target", "")
        path = target.lstrip("/") if target.startswith("/") else posixpath.normpath(posixpath.join(base, target))
        out[rel.get("Id", "")] = (rel.get("Type", ""), path)
    return out


def locate_sheet(fh: BinaryIO, infos: dict[str, zipfile.ZipInfo], wanted: str, name: str) -> tuple[str, str]:
    """(sheet name, zip member of its XML) for `wanted` ('' = the first sheet); unknown names are refused."""
    book = "xl/workbook.xml"
    if "_rels/.rels" in infos:
        for kind, path in _targets(_part(fh, infos, "_rels/.rels", name), "").values():
            if kind.endswith("/officeDocument"):
                book = path
    folder, base = posixpath.split(book)
    targets = _targets(_part(fh, infos, posixpath.join(folder, "_rels", base + ".rels"), name), folder)
    sheets: list[tuple[str, str]] = []
    for el in _part(fh, infos, book, name).iterfind(".//{*}sheet"):
        rid = next((v for k, v in el.attrib.items() if k.endswith("}id")), "")
        sheets.append((el.get("name", ""), targets.get(rid, ("", ""))[1]))
    if not sheets:
        raise DataError(f"{CORRUPT}: it lists no sheets", file=name, fix=CORRUPT_FIX)
    if not wanted:
        chosen = sheets[0]
    else:
        chosen = next((s for s in sheets if s[0] == wanted), None) or next(
            (s for s in sheets if s[0].casefold() == wanted.casefold()), None)
        if chosen is None:
            listed = ", ".join(repr(s[0]) for s in sheets)
            raise DataError(f"the workbook has no sheet named {wanted!r}; its sheets: {listed}", file=name,
                            fix="set file.sheet in params/data.yaml to one of those names, "
                                "or leave it empty for the first sheet")
    if chosen[1] not in infos:
        raise DataError(f"{CORRUPT}: the part of sheet {chosen[0]!r} is missing", file=name, fix=CORRUPT_FIX)
    return chosen


def verify_members(fh: BinaryIO, infos: dict[str, zipfile.ZipInfo], part: str, sheet: str, name: str) -> None:
    """Unzip (measured, in chunks) every member the reader may touch; refuse formulas in the chosen sheet.

    Other worksheets are skipped: they are never read, and their declared sizes were checked already.
    """
    for member, info in infos.items():
        if member.startswith("xl/worksheets/") and member != part:
            continue
        chunks = _stream(fh, info, name)
        if member != part:
            for _ in chunks:
                pass
            continue
        ref = first_formula(chunks)
        if ref is not None:
            col, row = ref
            where = f"first in cell {col}{row}" if row else "in cells without a reference"
            raise DataError(f"the sheet {sheet!r} holds formulas ({where}); datastory reads values, not formulas",
                            file=name, row=row, column=col or None, fix=FORMULA_FIX)


def first_formula(chunks: Iterator[bytes]) -> tuple[str, int | None] | None:
    """(column letters, row) of the first cell formula in a worksheet's XML chunks; ('', None) when that cell
    has no reference; None when the sheet holds none. Holds one chunk plus a small overlap in memory.

    Only <sheetData> is searched: cell formulas live there, while `<xm:f>` after it (data-validation lists,
    conditional formats) is not data. The rest is still drained, so a lying zip header is caught.
    """
    tail = b""
    for chunk in chunks:
        buf = tail + chunk
        stop = _SHEETDATA_END.search(buf) if b"sheetData" in buf else None  # plain `in` is fast, a regex not
        end = stop.start() if stop else len(buf)
        hit = _FORMULA.search(buf, 0, end) if (b"<f" in buf or b":f" in buf) else None
        if hit:
            cells = list(_CELL.finditer(buf, max(0, hit.start() - _OVERLAP), hit.start()))
            if not cells:
                return "", None
            return cells[-1].group(1).decode().upper(), int(cells[-1].group(2))
        if stop:
            for _ in chunks:
                pass
            return None
        tail = buf[-_OVERLAP:]
    return None


# ---------------------------------------------------------------- values
def _cells(path: Path, sheet: str, name: str) -> list[list[Any]]:
    """The sheet's cells from A1, rows of equal width ('' for empty), read by python-calamine."""
    import python_calamine

    try:
        book = python_calamine.CalamineWorkbook.from_path(str(path))
        try:
            return book.get_sheet_by_name(sheet).to_python(skip_empty_area=False)
        finally:
            book.close()
    except Exception as exc:  # calamine raises its own types, and pyo3 may raise others: all mean unreadable
        detail = f"{type(exc).__name__}: {exc}"[:200]
        raise DataError(f"{CORRUPT}: {detail}", file=name, fix=CORRUPT_FIX) from None


def identifier(value: Any) -> str | None:
    """A cell as identifier text: 17850.0 -> '17850', 2.5 -> '2.5', text unchanged, empty -> None."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _native(value: Any) -> Any:
    return None if value == "" else value


def _blank(row: list[Any]) -> bool:
    """A row without any value (whitespace-only text counts as none)."""
    return all(v is None or (isinstance(v, str) and not v.strip()) for v in row)


def to_raw(rows: list[list[Any]], cfg: DataParams, name: str, sheet: str) -> Raw:
    """Header row 1 checked, trailing fully empty rows dropped, mapped columns renamed to their fields."""
    if not rows:
        raise DataError(f"the sheet {sheet!r} is empty", file=name,
                        fix="set file.sheet in params/data.yaml to the sheet that holds the transactions")
    header = [identifier(v) or "" for v in rows[0]]
    if not any(h.strip() for h in header):
        raise DataError(f"row 1 of sheet {sheet!r} is empty; datastory expects the column names in row 1",
                        file=name, row=1, fix="delete any title rows above the header, so the header is row 1")
    mapped = cfg.columns.mapped()
    check_header(header, mapped, name)
    clean = [h.strip() for h in header]
    end = len(rows)
    while end > 1 and _blank(rows[end - 1]):
        end -= 1
    body = rows[1:end]
    if not body:
        raise no_rows(name)
    data = {}
    for fieldname, col in mapped.items():
        i = clean.index(col)
        convert = identifier if fieldname in IDENTIFIERS else _native
        data[fieldname] = pd.Series([convert(r[i]) for r in body], dtype=object)
    return Raw(frame=pd.DataFrame(data), name=name, first_row=2, source_columns=mapped)


def _size(n: int) -> str:
    return f"{n:,} bytes" if n < 1 << 20 else f"{n / (1 << 20):,.1f} MiB ({n:,} bytes)"


def _extension_fix(suffix: str) -> str:
    if suffix in (".csv", ".gz", ".txt", ".tsv"):
        return "set source: csv in params/data.yaml"
    if suffix == ".parquet":
        return "set source: parquet in params/data.yaml"
    return ("open it in Excel (or LibreOffice) and save it as .xlsx, then set file.path to the .xlsx; or export "
            "the sheet as CSV and set source: csv")
