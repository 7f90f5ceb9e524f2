"""CSV source: a columnar, multi-threaded read (pyarrow) of the mapped columns, every value as text.

Values stay text here, so that ingest can name the row and column of a value it cannot use, and apply
the declared decimal and thousands marks. The header is read first, with Python's csv module, so a
wrong delimiter, a repeated or missing column, a byte-order mark or a wrong encoding gets a clear
message before the bulk read. A `.gz` file is decompressed on the fly.
"""

from __future__ import annotations

import codecs
import csv as pycsv
import gzip
import io
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from ..config import DataParams
from ..errors import DataError
from . import Raw, check_header, display, no_rows, source_path

BOM = codecs.BOM_UTF8
BLOCK = 1 << 24  # bytes per parse block: large blocks parse faster; memory stays a few blocks per thread
SCAN_BLOCK = 1 << 24  # bytes per read when looking for empty lines
DELIMITERS = [";", "\t", "|", ","]


def _open(path: Path):
    with open(path, "rb") as fh:
        magic = fh.read(2)
    return gzip.open(path, "rb") if magic == b"\x1f\x8b" else open(path, "rb")


def _is_utf8(encoding: str) -> bool:
    return codecs.lookup(encoding).name in ("utf-8", "utf-8-sig")


SIGNATURES = {  # the first bytes of files that are not CSV text, and the source to use instead
    b"PK\x03\x04": "an Excel workbook (or another zip file): set source: excel",
    b"PAR1": "a Parquet file: set source: parquet",
    b"SQLite format 3\x00": "a SQLite database: set source: sql with url sqlite:///<its path>",
}
UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


def _ascii_compatible(encoding: str) -> bool:
    return "\n,".encode(encoding) == b"\n,"


def _header(path: Path, cfg: DataParams, name: str) -> list[str]:
    """The header's names; a clear error for non-CSV files, a byte-order mark that contradicts the
    declared encoding, an empty first line or a header that is not text in that encoding."""
    enc = cfg.file.encoding
    try:
        with _open(path) as fh:
            head = fh.read(64)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DataError(f"cannot be read: {exc}", file=name,
                        fix="export the file again (a .gz file must be complete gzip)") from None
    for magic, what in SIGNATURES.items():
        if head.startswith(magic):
            raise DataError(f"this is not CSV text but {what.split(':')[0]}", file=name,
                            fix=what.split(": ", 1)[1] + " in params/data.yaml")
    utf16 = codecs.lookup(enc).name.startswith("utf-16")
    if head.startswith(UTF16_BOMS) and not utf16:
        raise DataError(f"the file is UTF-16 text (it starts with a UTF-16 byte-order mark), but file.encoding is "
                        f"{enc}", file=name, row=1, fix="set file.encoding: utf-16 in params/data.yaml")
    if head.startswith(BOM) and not _is_utf8(enc):
        raise DataError(f"the file starts with a UTF-8 byte-order mark, but file.encoding is {enc}", file=name,
                        row=1, fix="set file.encoding: utf-8 in params/data.yaml")
    codec = "utf-8-sig" if _is_utf8(enc) else enc
    try:
        with _open(path) as fh:
            if _ascii_compatible(enc):  # decode the first line only: a bad byte further down has its own message
                text = fh.readline(1 << 20).decode(codec)
            else:
                text = io.TextIOWrapper(fh, encoding=codec, newline="").readline(1 << 20)
    except UnicodeDecodeError as exc:
        raise DataError(f"the header is not valid {enc} (byte {exc.object[exc.start]:#04x} at position {exc.start})",
                        file=name, row=1, fix="set file.encoding in params/data.yaml (e.g. latin-1 or cp1252 for "
                        "Western European exports, utf-16 for Excel's Unicode text)") from None
    except (OSError, EOFError) as exc:
        raise DataError(f"cannot be read: {exc}", file=name, fix="export the file again") from None
    text = text.lstrip("\ufeff")
    if not text.strip():
        raise DataError("the first line is empty: no header", file=name, row=1,
                        fix="the first line must name the columns, e.g. InvoiceNo,CustomerID,...")
    names = next(pycsv.reader([text.rstrip("\r\n")], delimiter=cfg.file.delimiter), [])
    return [n.strip() for n in names]


def blank_lines(path: Path, encoding: str) -> np.ndarray:
    """1-based numbers of the empty lines (which the CSV parser skips), so that rows keep their file line
    numbers. Scanned in C-speed chunks; empty for encodings that are not ASCII-compatible."""
    if not _ascii_compatible(encoding):
        return np.empty(0, dtype=np.int64)
    found: list[int] = []
    lines_before = 0     # newlines in the chunks before this one
    prev = b""
    with _open(path) as fh:
        while chunk := fh.read(SCAN_BLOCK):
            data = prev + chunk
            for pattern in (b"\n\n", b"\n\r\n"):
                at = data.find(pattern)
                while at >= 0:
                    # the empty line starts right after the newline at `at`: its number is newlines up to it + 1
                    found.append(lines_before + data.count(b"\n", 0, at + 1) + 1)
                    at = data.find(pattern, at + 1)
            keep = data[-2:] if len(data) >= 2 else data
            lines_before += data.count(b"\n") - keep.count(b"\n")
            prev = keep
    return np.unique(np.asarray(found, dtype=np.int64))


def _delimiter_hint(names: list[str], delimiter: str) -> str:
    if len(names) == 1:
        for d in DELIMITERS:
            if d != delimiter and d in names[0]:
                shown = "\\t" if d == "\t" else d
                return f"the header looks '{shown}'-separated: set file.delimiter: \"{shown}\""
    return ""


def _bad_line(path: Path, cfg: DataParams, names: list[str]) -> tuple[int, str, str]:
    """The first line (1-based) the parser cannot take: not text in the encoding, an unclosed quote,
    only spaces, or the wrong number of fields. Returns (line, problem, column or "")."""
    enc = cfg.file.encoding
    decoder = codecs.getincrementaldecoder("utf-8-sig" if _is_utf8(enc) else enc)()
    delim = cfg.file.delimiter.encode(enc) if _ascii_compatible(enc) else b""
    with _open(path) as fh:
        for line_no, line in enumerate(fh, start=1):
            try:
                text = decoder.decode(line)
            except UnicodeDecodeError as exc:
                field = line[: exc.start].count(delim) if delim else -1
                column = names[field] if 0 <= field < len(names) else ""
                return line_no, f"is not valid {enc} text (byte {line[exc.start]:#04x})", column
            if line_no == 1 or text in ("\n", "\r\n", ""):
                continue
            if not text.strip():
                return line_no, "holds only spaces (an empty line must be really empty)", ""
            if text.count('"') % 2:
                return line_no, 'has an unclosed quote (a " that is never closed)', ""
            fields = next(pycsv.reader([text.rstrip("\r\n")], delimiter=cfg.file.delimiter), [])
            if len(fields) != len(names):
                return line_no, f"has {len(fields)} fields but the header has {len(names)}", ""
    return 0, "", ""


def read(cfg: DataParams, root: Path) -> Raw:
    """The mapped columns of the configured CSV file as text (see module doc)."""
    path = source_path(cfg, root)
    name = display(path, root)
    names = _header(path, cfg, name)
    mapped = cfg.columns.mapped()
    check_header(names, mapped, name, _delimiter_hint(names, cfg.file.delimiter))
    wanted = list(dict.fromkeys(mapped.values()))
    read_opts = pacsv.ReadOptions(column_names=names, skip_rows=1, block_size=BLOCK,
                                  encoding="utf8" if _is_utf8(cfg.file.encoding) else cfg.file.encoding)
    parse_opts = pacsv.ParseOptions(delimiter=cfg.file.delimiter, newlines_in_values=False)
    conv = pacsv.ConvertOptions(include_columns=wanted, column_types={c: pa.string() for c in wanted},
                                null_values=[""], strings_can_be_null=True, quoted_strings_can_be_null=True)
    try:
        with _open(path) as fh:
            table = pacsv.read_csv(fh, read_options=read_opts, parse_options=parse_opts, convert_options=conv)
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        line, what, column = _bad_line(path, cfg, names)
        if line:
            fix = ("set file.encoding in params/data.yaml (e.g. latin-1 or cp1252)" if "text" in what else
                   "delete the spaces on that line" if "spaces" in what else
                   "close the quote, or remove the stray quote character" if "quote" in what else
                   "quote values that contain the delimiter, or check file.delimiter in params/data.yaml")
            raise DataError(f"line {line} {what}", file=name, row=line, column=column or None, fix=fix) from None
        detail = re.sub(r"\s+", " ", str(exc))[:200]
        raise DataError(f"cannot be parsed as CSV: {detail}", file=name,
                        fix="check file.delimiter and file.encoding in params/data.yaml") from None
    except (OSError, EOFError) as exc:
        raise DataError(f"cannot be read: {exc}", file=name, fix="export the file again") from None
    if table.num_rows == 0:
        raise no_rows(name)
    frame = table.to_pandas(types_mapper=lambda t: pd.StringDtype("pyarrow") if pa.types.is_string(t) else None,
                            self_destruct=True, split_blocks=True)
    del table
    frame = pd.DataFrame({fieldname: frame[col] for fieldname, col in mapped.items()})
    return Raw(frame=frame, name=name, first_row=2, source_columns=mapped,
               skipped_lines=blank_lines(path, cfg.file.encoding))

