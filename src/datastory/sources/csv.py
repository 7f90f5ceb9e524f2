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
import re
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from ..config import DataParams
from ..errors import DataError
from . import Raw, check_header, display, no_rows, source_path

BOM = codecs.BOM_UTF8
BLOCK = 1 << 24  # bytes per parse block: large blocks parse faster; memory stays a few blocks per thread
DELIMITERS = [";", "\t", "|", ","]


def _open(path: Path):
    with open(path, "rb") as fh:
        magic = fh.read(2)
    return gzip.open(path, "rb") if magic == b"\x1f\x8b" else open(path, "rb")


def _is_utf8(encoding: str) -> bool:
    return codecs.lookup(encoding).name in ("utf-8", "utf-8-sig")


def _header(path: Path, cfg: DataParams, name: str) -> tuple[list[str], bool]:
    """Header names and whether the file starts with a UTF-8 byte-order mark."""
    enc = cfg.file.encoding
    try:
        with _open(path) as fh:
            first = fh.readline(1 << 20)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DataError(f"cannot be read: {exc}", file=name,
                        fix="export the file again (a .gz file must be complete gzip)") from None
    bom = first.startswith(BOM)
    if bom and not _is_utf8(enc):
        raise DataError(f"the file starts with a UTF-8 byte-order mark, but file.encoding is {enc}", file=name,
                        row=1, fix="set file.encoding: utf-8 in params/data.yaml")
    if not first.strip(b"\r\n\t " + BOM):
        raise DataError("the first line is empty: no header", file=name, row=1,
                        fix="the first line must name the columns, e.g. InvoiceNo,CustomerID,...")
    try:
        text = first.removeprefix(BOM).decode(enc)
    except UnicodeDecodeError as exc:
        raise DataError(f"the header is not valid {enc} (byte {first[exc.start]:#04x} at position {exc.start})",
                        file=name, row=1, fix="set file.encoding in params/data.yaml (e.g. latin-1 or cp1252 for "
                        "Western European exports)") from None
    names = next(pycsv.reader([text.rstrip("\r\n")], delimiter=cfg.file.delimiter), [])
    return [n.strip() for n in names], bom


def _delimiter_hint(names: list[str], delimiter: str) -> str:
    if len(names) == 1:
        for d in DELIMITERS:
            if d != delimiter and d in names[0]:
                shown = "\\t" if d == "\t" else d
                return f"the header looks '{shown}'-separated: set file.delimiter: \"{shown}\""
    return ""


def _bad_line(path: Path, cfg: DataParams, n_fields: int) -> tuple[int, str]:
    """The first line (1-based) that is not valid text in the encoding or has the wrong field count."""
    enc = cfg.file.encoding
    decoder = codecs.getincrementaldecoder(enc)()
    with _open(path) as fh:
        for line_no, line in enumerate(fh, start=1):
            try:
                text = decoder.decode(line.removeprefix(BOM) if line_no == 1 else line)
            except UnicodeDecodeError as exc:
                return line_no, f"is not valid {enc} text (byte {line[exc.start]:#04x})"
            if line_no > 1 and text.strip():
                fields = next(pycsv.reader([text.rstrip("\r\n")], delimiter=cfg.file.delimiter), [])
                if len(fields) != n_fields:
                    return line_no, f"has {len(fields)} fields but the header has {n_fields}"
    return 0, ""


def read(cfg: DataParams, root: Path) -> Raw:
    """The mapped columns of the configured CSV file as text (see module doc)."""
    path = source_path(cfg, root)
    name = display(path, root)
    names, _ = _header(path, cfg, name)
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
        line, what = _bad_line(path, cfg, len(names))
        if line:
            fix = ("set file.encoding in params/data.yaml (e.g. latin-1 or cp1252)" if "text" in what else
                   "quote values that contain the delimiter, or check file.delimiter in params/data.yaml")
            raise DataError(f"line {line} {what}", file=name, row=line, fix=fix) from None
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
    return Raw(frame=frame, name=name, first_row=2, source_columns=mapped)

