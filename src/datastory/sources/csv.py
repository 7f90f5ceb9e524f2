"""CSV source: a columnar, multi-threaded read (pyarrow) of the mapped columns, every value as text.

Values stay text here, so that ingest can name the row and column of a value it cannot use, and apply
the declared decimal and thousands marks. The header is read first, with Python's csv module, so a
wrong delimiter, a repeated or missing column, a byte-order mark or a wrong encoding gets a clear
message before the bulk read. A `.gz` file is decompressed on the fly.

A quoted value may hold line breaks anywhere in the file: the parser splits the file into blocks at record
ends, never inside a quoted value, so what is read does not depend on where a block ends. Rows are named by
the file's own line numbers (where each record starts) and, when empty lines or multi-line values come
before it, by the record number as well (the header is record 1).
"""

from __future__ import annotations

import codecs
import csv as pycsv
import gzip
import io
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from ..config import DataParams
from ..errors import DataError
from . import Raw, check_header, display, no_rows, source_path

BOM = codecs.BOM_UTF8
BLOCK = 1 << 24  # bytes per parse block: large blocks parse faster; memory stays a few blocks per thread
SCAN_BLOCK = 1 << 24  # bytes per read when counting lines and looking for empty ones
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


@dataclass(frozen=True)
class Lines:
    """What one quick pass over the bytes tells, before they are parsed."""
    total: int          # lines in the file (a last line without a line break counts)
    quoted: bool        # a '"' somewhere: without one, no value can hold a line break


def _chunks(path: Path, encoding: str):
    """The file's bytes in SCAN_BLOCK chunks: as they are, or decoded to UTF-8 for an encoding whose line
    breaks are not single bytes (such as UTF-16)."""
    with _open(path) as raw:
        fh = raw if _ascii_compatible(encoding) else _Feed(raw, encoding)
        while chunk := fh.read(SCAN_BLOCK):
            yield chunk


def count_lines(path: Path, encoding: str) -> Lines:
    """The line count, and whether the file holds a quote (C-speed counts, no search)."""
    newlines, quoted, last = 0, False, b""
    for chunk in _chunks(path, encoding):
        newlines += chunk.count(b"\n")
        quoted = quoted or b'"' in chunk
        last = chunk[-1:]
    return Lines(newlines + (1 if last not in (b"", b"\n") else 0), quoted)


def empty_lines(path: Path, encoding: str) -> tuple[np.ndarray, int]:
    """1-based numbers of the empty lines (one inside a quoted value counts too), and the number of '"' in
    the file (odd: a quote is never closed, or one is a literal)."""
    found: list[np.ndarray] = []
    lines_before = 0     # newlines in the chunks before this one
    prev = b""
    quotes = 0
    for chunk in _chunks(path, encoding):
        quotes += chunk.count(b'"')
        data = prev + chunk
        if b"\n\n" in data or b"\n\r\n" in data:
            found.append(lines_before + _empty_after(data))
        keep = data[-2:] if len(data) >= 2 else data
        lines_before += data.count(b"\n") - keep.count(b"\n")
        prev = keep
    return np.unique(np.concatenate(found)) if found else np.empty(0, dtype=np.int64), quotes


def _empty_after(data: bytes) -> np.ndarray:
    """1-based numbers, counted in `data`, of the lines that start after a newline of `data` and are empty
    (LF right after it, or CR LF)."""
    a = np.frombuffer(data, dtype=np.uint8)
    newlines = np.flatnonzero(a == 10)
    newlines = newlines[newlines + 1 < len(a)]   # a newline at the very end starts no line here
    following = a[newlines + 1]
    empty = following == 10
    crlf = np.flatnonzero((following == 13) & (newlines + 2 < len(a)))
    empty[crlf] = a[newlines[crlf] + 2] == 10
    # the empty line starts right after the k-th newline (0-based): its number is k + 2
    return np.flatnonzero(empty).astype(np.int64) + 2


def blank_lines(path: Path, encoding: str) -> np.ndarray:
    """1-based numbers of the empty lines (which the CSV parser skips), so that rows keep their file line
    numbers."""
    return empty_lines(path, encoding)[0]


class _Feed(io.RawIOBase):
    """The file's bytes for the parser: as UTF-8 (other encodings are decoded here), in reads that never end with
    a CR unless the file does. pyarrow takes a LF at the start of a read that follows a read ending with CR as
    the end of that CR's line and drops it, even inside a quoted value: "a\\r\\nb" would become "a\\rb" whenever
    a read ended between the two."""

    def __init__(self, fh: io.BufferedIOBase, encoding: str):
        self.fh = fh
        self.held = b""
        self.decoder = None if _is_utf8(encoding) else codecs.getincrementaldecoder(encoding)()
        self.buffer = bytearray()
        self.eof = False

    def readable(self) -> bool:
        return True

    def read(self, n: int | None = -1) -> bytes:
        if self.decoder is None:   # UTF-8: the bytes as they are, a trailing CR held for the next read
            data = self.held + (self.fh.read() if n is None or n < 0 else self.fh.read(max(n - len(self.held), 1)))
            self.held = b""
            if len(data) > 1 and data.endswith(b"\r"):
                self.held, data = b"\r", data[:-1]
            return data
        want = (1 << 62) if n is None or n < 0 else max(n, 1)
        while len(self.buffer) <= want and not self.eof:   # one byte more than asked: what follows a CR
            chunk = self.fh.read(max(want, 1 << 16) if n is not None and n >= 0 else -1)
            self.eof = not chunk
            self.buffer += self.decoder.decode(chunk, final=self.eof).encode("utf-8")
        out = bytes(self.buffer[:want])
        if len(out) > 1 and out.endswith(b"\r") and len(self.buffer) > len(out):
            out = out[:-1]
        del self.buffer[: len(out)]
        return out


def _read_options(cfg: DataParams, names: list[str]) -> pacsv.ReadOptions:
    return pacsv.ReadOptions(column_names=names, skip_rows=1, block_size=BLOCK, encoding="utf8")


def _parse_options(cfg: DataParams, quoted: bool = True) -> pacsv.ParseOptions:
    # newlines_in_values: blocks end at record ends, so a quoted value may hold line breaks wherever it falls.
    # A file without any quote has no such value, and is split at any line end (faster).
    return pacsv.ParseOptions(delimiter=cfg.file.delimiter, newlines_in_values=quoted)


def _reads_as_a_record(value: str, delimiter: str, n_columns: int) -> bool:
    """True when a line inside a multi-line value has as many fields as a record: the sign of a quote that was
    never closed (the value swallowed the records after it)."""
    return any(len(next(pycsv.reader([part.rstrip("\r")], delimiter=delimiter), [])) == n_columns
               for part in value.split("\n"))


def value_line_breaks(path: Path, cfg: DataParams, n_columns: int) -> tuple[np.ndarray, bool]:
    """Per record, the line breaks inside its values (every column, mapped or not): the lines it runs on past
    its first; and whether a line inside such a value reads as a record of its own. A streaming second read,
    done only for a file that has such values."""
    names = [f"c{i}" for i in range(n_columns)]
    conv = pacsv.ConvertOptions(column_types={c: pa.string() for c in names}, null_values=[],
                                strings_can_be_null=False)
    parts = []
    swallowed = False
    with _open(path) as fh:
        for batch in pacsv.open_csv(_Feed(fh, cfg.file.encoding), read_options=_read_options(cfg, names),
                                    parse_options=_parse_options(cfg), convert_options=conv):
            total = np.zeros(batch.num_rows, dtype=np.int64)
            for column in batch.columns:
                breaks = pc.count_substring(column, "\n")
                total += breaks.to_numpy(zero_copy_only=False)
                if not swallowed and n_columns > 1 and pc.any(pc.greater(breaks, 0)).as_py():
                    values = column.filter(pc.greater(breaks, 0)).to_pylist()
                    swallowed = any(_reads_as_a_record(v, cfg.file.delimiter, n_columns) for v in values)
            parts.append(total)
    return (np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)), swallowed


def _true_empty(empty: np.ndarray, breaks: np.ndarray) -> np.ndarray:
    """The empty lines between records, leaving out those inside a multi-line value (`breaks`: per record,
    the line breaks inside its values)."""
    if not len(empty):
        return empty
    # the line each record starts on if no empty line came before it (the header is line 1)
    start = 2 + np.arange(len(breaks), dtype=np.int64) + np.concatenate(([0], np.cumsum(breaks[:-1])))
    kept: list[int] = []
    for line in empty.tolist():
        shift = len(kept)   # the empty lines before this one
        k = int(np.searchsorted(start, line - shift, side="right")) - 1   # the last record starting before it
        if k >= 0 and start[k] + shift < line <= start[k] + shift + breaks[k]:
            continue        # inside record k's quoted value
        kept.append(line)
    return np.asarray(kept, dtype=np.int64)


@dataclass(frozen=True)
class Layout:
    """Where each record starts: the empty lines between records and the records that run over lines."""
    empty: np.ndarray            # 1-based numbers of the empty lines between records
    multiline_at: np.ndarray     # 0-based positions of the records whose values hold line breaks
    multiline_extra: np.ndarray  # the lines each of them runs on past its first
    suspect: bool = False        # a value may have swallowed records: a quote that is never closed


def line_layout(path: Path, cfg: DataParams, lines: Lines, n_columns: int, n_records: int) -> Layout:
    """Where each record starts (see Layout), from the file's line count (count_lines).

    Lines beyond the header and the records are empty lines or line breaks inside values: a second pass
    finds the empty lines, and when they do not account for all, a streaming read counts the line breaks
    in each record's values. A file with neither (the common case) takes no further pass."""
    none = np.empty(0, dtype=np.int64)
    extra = lines.total - 1 - n_records
    if extra <= 0:
        return Layout(none, none, none)
    empty, quotes = empty_lines(path, cfg.file.encoding)
    if extra - len(empty) <= 0:
        return Layout(empty, none, none)
    breaks, swallowed = value_line_breaks(path, cfg, n_columns)
    if len(breaks) != n_records:   # cannot happen with the same parser; keep the plain line numbers
        return Layout(empty, none, none, suspect=True)
    at = np.flatnonzero(breaks)
    return Layout(_true_empty(empty, breaks), at.astype(np.int64), breaks[at],
                  suspect=swallowed or quotes % 2 == 1)


def _delimiter_hint(names: list[str], delimiter: str) -> str:
    if len(names) == 1:
        for d in DELIMITERS:
            if d != delimiter and d in names[0]:
                shown = "\\t" if d == "\t" else d
                return f"the header looks '{shown}'-separated: set file.delimiter: \"{shown}\""
    return ""


def _looks_like_a_header(names: list[str], delimiter: str, name: str, hint: str) -> None:
    """Refuse, without echoing it, a first line that cannot be a header naming the mapped columns (at least two):
    one name and no other delimiter in it, or control characters. A file that is not a CSV export (a file of
    another kind under a .csv name) shows nothing of its content."""
    shown = "\\t" if delimiter == "\t" else delimiter
    fix = ("check file.path and file.delimiter in params/data.yaml; the first line must name the columns, e.g. "
           f"InvoiceNo{delimiter}CustomerID{delimiter}InvoiceDate{delimiter}...")
    if any(unicodedata.category(c) == "Cc" for n in names for c in n):
        raise DataError("the first line holds control characters: it is not a CSV header", file=name, row=1, fix=fix)
    if len(names) == 1 and not hint:
        raise DataError(f"the first line holds no '{shown}': it is not a '{shown}'-separated header naming the "
                        "columns", file=name, row=1, fix=fix)


def _bad_line(path: Path, cfg: DataParams, names: list[str]) -> tuple[int, int, str, str]:
    """The first record (read as a CSV reader does: a quoted value may run over lines) the parser cannot
    take: not text in the encoding, an unclosed quote, only spaces, or the wrong number of fields.
    Returns (line where it starts, record number with the header as 1, problem, column or "")."""
    enc = cfg.file.encoding
    decoder = codecs.getincrementaldecoder("utf-8-sig" if _is_utf8(enc) else enc)()
    delim = cfg.file.delimiter.encode(enc) if _ascii_compatible(enc) else b""
    seen = {"line": 0, "raw": b""}
    texts: list[str] = []      # the lines of the record being read

    def lines(fh):
        for raw in fh:
            seen["line"] += 1
            seen["raw"] = raw
            texts.append(decoder.decode(raw))
            yield texts[-1]

    limit = pycsv.field_size_limit()
    pycsv.field_size_limit(max(limit, 1 << 30))   # a long value is not an error here; an unclosed quote is
    try:
        with _open(path) as fh:
            reader = pycsv.reader(lines(fh), delimiter=cfg.file.delimiter)
            record = 0
            open_at_end: tuple[int, int, str, str] = (0, 0, "", "")   # the last record, if its quote is open
            while True:
                texts.clear()
                first = seen["line"] + 1
                try:
                    fields = next(reader)
                except StopIteration:
                    return open_at_end
                except UnicodeDecodeError as exc:
                    raw = seen["raw"]
                    field = raw[: exc.start].count(delim) if delim and first == seen["line"] else -1
                    column = names[field] if 0 <= field < len(names) else ""
                    return seen["line"], record + 1, f"is not valid {enc} text (byte {raw[exc.start]:#04x})", column
                except pycsv.Error as exc:
                    return first, record + 1, f"cannot be read as CSV ({exc})", ""
                if not fields:     # an empty line: not a record
                    continue
                open_at_end = (0, 0, "", "")
                record += 1
                last = seen["line"]
                if record == 1:    # the header
                    continue
                if last == first and len(fields) == 1 and not fields[0].strip():
                    return first, record, "holds only spaces (an empty line must be really empty)", ""
                counts = f"{len(fields)} fields but the header has {len(names)}"
                if last > first:
                    # a line inside the quoted value that reads as a whole record: the quote was never closed
                    inner = next((first + i for i, t in enumerate(texts[1:-1], start=1)
                                  if len(next(pycsv.reader([t.rstrip("\r\n")], delimiter=cfg.file.delimiter), []))
                                  == len(names)), 0)
                    what = 'has an unclosed quote: a " opens a value that runs over lines'
                    if inner or len(fields) != len(names):
                        why = (f"line {inner} inside it reads as a record of its own" if inner else
                               f"the record then has {counts}")
                        return first, record, f"{what} {first} to {last}, and {why}", ""
                    if "".join(texts).count('"') % 2:   # open to the end of the file, if no record follows
                        open_at_end = (first, record, f"{what} {first} to {last}, the end of the file", "")
                elif len(fields) != len(names):
                    if "".join(texts).count('"') % 2:
                        return first, record, f'has an unclosed quote (a " that is never closed); it has {counts}', ""
                    return first, record, f"has {counts}", ""
    finally:
        pycsv.field_size_limit(limit)


def _raise_bad_line(path: Path, cfg: DataParams, names: list[str], name: str) -> None:
    """Raise the DataError of the first record the parser cannot take (see _bad_line), if there is one."""
    line, record, what, column = _bad_line(path, cfg, names)
    if line:
        fix = ("set file.encoding in params/data.yaml (e.g. latin-1 or cp1252)" if "text" in what else
               "delete the spaces on that line" if "spaces" in what else
               "close the quote, or remove the stray quote character" if "quote" in what else
               "quote values that contain the delimiter, or check file.delimiter in params/data.yaml")
        raise DataError(f"line {line} {what}", file=name, row=line, record=record, column=column or None,
                        fix=fix) from None


def _convert_options(mapped: dict[str, str]) -> pacsv.ConvertOptions:
    wanted = list(dict.fromkeys(mapped.values()))
    return pacsv.ConvertOptions(include_columns=wanted, column_types={c: pa.string() for c in wanted},
                                null_values=[""], strings_can_be_null=True, quoted_strings_can_be_null=True)


def _checked_header(cfg: DataParams, root: Path) -> tuple[Path, str, list[str], dict[str, str]]:
    """The file, its name for messages, its header's names and the mapped columns, the header checked."""
    path = source_path(cfg, root)
    name = display(path, root)
    names = _header(path, cfg, name)
    mapped = cfg.columns.mapped()
    hint = _delimiter_hint(names, cfg.file.delimiter)
    _looks_like_a_header(names, cfg.file.delimiter, name, hint)
    check_header(names, mapped, name, hint)
    return path, name, names, mapped


def _parse_failed(path: Path, cfg: DataParams, names: list[str], name: str, exc: Exception) -> DataError:
    """The error of a file the parser refused: the first bad record's line, else the parser's own words."""
    _raise_bad_line(path, cfg, names, name)
    # the parser's own words, without the record it quotes: no content of the file is echoed
    detail = re.sub(r"\s+", " ", re.sub(r"(got \d+)\b.*", r"\1", str(exc), flags=re.S))[:200]
    return DataError(f"cannot be parsed as CSV: {detail}", file=name,
                     fix="check file.delimiter and file.encoding in params/data.yaml")


def _fields_frame(table: pa.Table, mapped: dict[str, str], own: bool = True) -> pd.DataFrame:
    """Canonical field -> text column; `own`: the table is not used afterwards (its buffers may be released)."""
    frame = table.to_pandas(types_mapper=lambda t: pd.StringDtype("pyarrow") if pa.types.is_string(t) else None,
                            self_destruct=own, split_blocks=True)
    return pd.DataFrame({fieldname: frame[col] for fieldname, col in mapped.items()})


@dataclass
class Stream:
    """The configured CSV file read in batches of whole records (see `batches`); after the last batch,
    `raw()` names its rows as `read` does. Memory stays a batch and a few parse blocks, whatever the size."""

    cfg: DataParams
    path: Path
    name: str
    names: list[str]
    mapped: dict[str, str]
    records: int = 0                 # records read so far
    lines: Lines | None = None       # the file's line count (set by `batches`)

    def batches(self, rows: int) -> Iterator[pd.DataFrame]:
        """The mapped columns as text, `rows` records at a time (the last batch fewer), in file order. A record
        whose quoted value holds line breaks is never split. A file the parser refuses gets read's message."""
        cfg, held, count = self.cfg, [], 0
        try:
            self.lines = lines = count_lines(self.path, cfg.file.encoding)
            with _open(self.path) as fh:
                reader = pacsv.open_csv(_Feed(fh, cfg.file.encoding), read_options=_read_options(cfg, self.names),
                                        parse_options=_parse_options(cfg, quoted=lines.quoted),
                                        convert_options=_convert_options(self.mapped))
                for batch in reader:
                    held.append(batch)
                    count += batch.num_rows
                    while count >= rows:
                        table = pa.Table.from_batches(held)
                        held, count = [table.slice(rows)] if count > rows else [], count - rows
                        held = [b for t in held for b in t.to_batches()]
                        self.records += rows
                        yield _fields_frame(table.slice(0, rows), self.mapped, own=False)
        except (pa.ArrowInvalid, UnicodeError) as exc:
            raise _parse_failed(self.path, cfg, self.names, self.name, exc) from None
        except (OSError, EOFError) as exc:
            raise DataError(f"cannot be read: {exc}", file=self.name, fix="export the file again") from None
        if count:
            self.records += count
            yield _fields_frame(pa.Table.from_batches(held), self.mapped)
        if self.records == 0:
            raise no_rows(self.name)

    def raw(self) -> Raw:
        """The file's rows as `read` names them (an empty frame: the batches held the values)."""
        layout = line_layout(self.path, self.cfg, self.lines or count_lines(self.path, self.cfg.file.encoding), len(self.names), self.records)
        if layout.suspect:   # the parser takes a quote left open to the end of the file as one long value
            _raise_bad_line(self.path, self.cfg, self.names, self.name)
        return Raw(frame=pd.DataFrame(columns=list(self.mapped)), name=self.name, first_row=2,
                   source_columns=self.mapped, skipped_lines=layout.empty, multiline_at=layout.multiline_at,
                   multiline_extra=layout.multiline_extra)


def stream(cfg: DataParams, root: Path) -> Stream:
    """The configured CSV file, its header checked, to be read in batches (see Stream)."""
    path, name, names, mapped = _checked_header(cfg, root)
    return Stream(cfg, path, name, names, mapped)


def read(cfg: DataParams, root: Path) -> Raw:
    """The mapped columns of the configured CSV file as text (see module doc)."""
    path, name, names, mapped = _checked_header(cfg, root)
    conv = _convert_options(mapped)
    try:
        lines = count_lines(path, cfg.file.encoding)
        with _open(path) as fh:
            table = pacsv.read_csv(_Feed(fh, cfg.file.encoding), read_options=_read_options(cfg, names),
                                   parse_options=_parse_options(cfg, quoted=lines.quoted), convert_options=conv)
    except (pa.ArrowInvalid, UnicodeError) as exc:
        raise _parse_failed(path, cfg, names, name, exc) from None
    except (OSError, EOFError) as exc:
        raise DataError(f"cannot be read: {exc}", file=name, fix="export the file again") from None
    if table.num_rows == 0:
        raise no_rows(name)
    frame = _fields_frame(table, mapped)
    del table
    layout = line_layout(path, cfg, lines, len(names), len(frame))
    if layout.suspect:   # the parser takes a quote left open to the end of the file as one long value
        _raise_bad_line(path, cfg, names, name)
    return Raw(frame=frame, name=name, first_row=2, source_columns=mapped, skipped_lines=layout.empty,
               multiline_at=layout.multiline_at, multiline_extra=layout.multiline_extra)

