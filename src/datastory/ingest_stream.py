"""Ingest in bounded memory: a CSV source read in batches of records, the whole-file rules done out of core.

Same transactions, set-aside rows, data-quality dict and messages as `ingest.prepare` + `ingest.save`, for a
file of any size: memory holds a batch (params/data.yaml `engine`; `streaming.BATCH_ROWS` records) and DuckDB's
working set (`streaming.MEMORY_LIMIT`), whatever the number of lines. Each batch goes through ingest's own row-level
code (`ingest._fields` and its checks, in their order), so every per-row decision is the in-memory one.
The rules of `prepare` that look across rows, and how they are done here:
- exact duplicates (a repeat, on every mapped column as the source wrote it, of an earlier row that no check
  set aside): the rows no check set aside go to a temp Parquet file with their position; DuckDB finds the
  repeats (a hash of the columns, then an exact comparison among the rows whose hash repeats);
- on_bad_rows: fail stops at the first check, in check order, that any row of the file fails, shows its first
  row and counts its rows over the whole file: each batch notes, per check, its first row and its count, and
  the error is raised after the last batch, before anything is written;
- the fix for a date the column's format cannot read names the file's first such date;
- the date format guessed from the values (rules.date_format empty) is the one the first batch that needed a
  guess chose; it reads every later batch (the in-memory path guesses once, from the whole column);
- missing regions take the customer's most frequent region over the whole file (DuckDB group-by);
- the sort by ingest.SORT_KEYS, stable: DuckDB ORDER BY the keys, then the row's position in the file, a range of
  whole days at a time (about SORT_BATCHES batches of lines: a sort held in memory, where the whole file's would
  spill to disk and merge), the ranges in time order;
- empty months, period, distinct customers and orders, unmapped countries, "no usable rows": aggregated, then
  put in words by ingest's own rules (`ingest.missing_months`, `ingest.quality_record`).
Nothing is written until every check has passed; temp files live in a temp folder removed at the end.
`ingest_csv` writes the three outputs like `ingest.save` (Parquet row groups of the same size, so the same
bytes); `check` (`datastory check-data`) writes none: it returns the quality record and the kept lines'
`profile.Profile`, counted by DuckDB.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from . import config, ingest, io, metrics, profile, schema, streaming
from .config import DataParams, Paths
from .sources import Raw
from .sources import csv as csv_source

TEMP_CODEC = "lz4"             # the temp Parquet files: fast to write and read back
SORT_BATCHES = 2               # the sort takes a time range of at most this many batches' lines at a time
CANON = {"order_id": pa.string(), "customer_id": pa.string(), "customer_name": pa.string(),
         "timestamp": pa.timestamp("ns"), "region": pa.string(), "product_line": pa.string(),
         "quantity": pa.float64(), "amount": pa.float64(), "discount": pa.float64(), "cancelled": pa.bool_(),
         "other": pa.string()}
DUPLICATE = "exact duplicate of an earlier row"


@dataclass
class _Failure:
    """The rows of one check that on_bad_rows: fail stops on: the first one and how many."""
    pos: int
    value: str
    count: int


@dataclass
class _Pass:
    """What the batches tell, summed (see module doc)."""
    rows: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    excluded: dict[str, int] = field(default_factory=dict)
    failures: dict[int, _Failure] = field(default_factory=dict)   # check index -> its first row and count
    fixes: dict[int, str] = field(default_factory=dict)           # check index -> fix, from its first bad row
    checks: list[ingest.Check] = field(default_factory=list)
    known_format: str = ""
    template: pd.DataFrame | None = None      # an empty set-aside frame: its columns and dtypes


# ---------------------------------------------------------------- one batch (ingest's row-level code)
def _batch(frame: pd.DataFrame, offset: int, meta: Raw, cfg: DataParams, cutoff: pd.Timestamp, state: _Pass,
           free_out: pq.ParquetWriter | None, aside_out: io.RowGroupWriter | None) -> pq.ParquetWriter | None:
    """Judge one batch (rows `offset`... of the file) and write its rows: those no check set aside to the temp
    file of candidates, the others to the set-aside file (row: the position in the file, for now)."""
    raw = dataclasses.replace(meta, frame=frame, first_row=offset, skipped_lines=np.empty(0, dtype=np.int64),
                              multiline_at=np.empty(0, dtype=np.int64), multiline_extra=np.empty(0, dtype=np.int64))
    rules = cfg.rules
    if not state.known_format and not rules.date_format:
        _, fmt = ingest.parse_timestamps(frame["timestamp"], "", rules.dayfirst, rules.timezone)
        if fmt not in ("ISO 8601", "native"):
            state.known_format = fmt
    canon, checks, other = ingest._fields(raw, cfg, cutoff, state.known_format)
    state.checks = state.checks or checks
    n = len(frame)
    reason = np.full(n, "", dtype=object)
    disposition = np.full(n, "", dtype=object)
    column = np.full(n, "", dtype=object)
    free = np.ones(n, dtype=bool)
    fail = cfg.on_bad_rows == "fail"
    for k, check in enumerate(checks):
        if k not in state.fixes and check.mask.any():
            state.fixes[k] = check.fix
        hit = check.mask & free
        if not hit.any():
            continue
        if fail and check.disposition == "rejected":
            # the rows an in-memory run would count if this check were the first to fail (see module doc)
            at = np.flatnonzero(hit)
            seen = state.failures.get(k)
            if seen is None:
                state.failures[k] = _Failure(offset + int(at[0]), ingest.first_value(raw, check, int(at[0])),
                                             len(at))
            else:
                seen.count += len(at)
            continue
        free &= ~hit
        reason[hit], disposition[hit], column[hit] = check.reason, check.disposition, raw.column(check.field)
        counts = state.rejected if check.disposition == "rejected" else state.excluded
        counts[check.reason] = counts.get(check.reason, 0) + int(hit.sum())
    aside = ingest._set_aside(raw, reason, disposition, column)
    if state.template is None:
        state.template = aside.iloc[:0].copy()
    if state.failures:   # the run stops after the last batch: only the counts matter from here on
        return free_out
    if len(aside):
        aside_out.add(aside)
    at = np.flatnonzero(free)
    kept = {"_pos": pa.array(at + offset, pa.int64())}
    for i, name in enumerate(frame.columns):
        kept[f"src_{i}"] = pa.array(frame[name].iloc[at], pa.string(), from_pandas=True)
    canon = canon.iloc[at]
    canon_other = other.iloc[at]
    for name, typ in CANON.items():
        values = canon_other if name == "other" else canon[name]
        if typ == pa.string():
            values = values.astype("string[pyarrow]")
        kept[name] = pa.array(values, typ, from_pandas=True)
    table = pa.table(kept)
    if free_out is None:
        free_out = pq.ParquetWriter(aside_out.path.parent / "free.parquet", table.schema, compression=TEMP_CODEC)
    free_out.write_table(table, row_group_size=io.ROW_GROUP)
    return free_out


# ---------------------------------------------------------------- the whole-file rules (DuckDB)
def _connect(tmp: Path) -> Any:
    return streaming.connect(tmp / "spill", database=str(tmp / "work.duckdb"))


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _kept(con: Any, tmp: Path, n_src: int) -> int:
    """View `kept`: the candidates less the exact repeats (table `dup`: their positions). Returns the repeats."""
    src = [f"src_{i}" for i in range(n_src)]
    cols = ", ".join(src)
    free = f"read_parquet('{tmp / 'free.parquet'}')"
    con.execute(f"CREATE TABLE hashed AS SELECT _pos, hash({cols}) AS h FROM {free}")
    con.execute("""CREATE TABLE candidates AS SELECT _pos FROM hashed
                   WHERE h IN (SELECT h FROM hashed GROUP BY h HAVING count(*) > 1)""")
    con.execute(f"""CREATE TABLE dup AS SELECT _pos FROM (
                      SELECT _pos, row_number() OVER (PARTITION BY {cols} ORDER BY _pos) AS k
                      FROM {free} SEMI JOIN candidates USING (_pos))
                    WHERE k > 1""")
    con.execute("DROP TABLE hashed; DROP TABLE candidates")
    canon = ", ".join(_quote(c) for c in CANON)
    con.execute(f"CREATE VIEW kept AS SELECT _pos, {canon} FROM {free} ANTI JOIN dup USING (_pos)")
    return int(con.execute("SELECT count(*) FROM dup").fetchone()[0])


def _filled(con: Any) -> int:
    """Table `best`: for each customer with a line without region, its most frequent known region (ties:
    the first in code-point order), as ingest._fill_regions. Returns the lines without region."""
    con.execute("""CREATE TABLE best AS
        SELECT customer_id, region FROM (
          SELECT customer_id, region, count(*) AS n FROM kept
          WHERE region IS NOT NULL AND customer_id IN (SELECT customer_id FROM kept WHERE region IS NULL)
          GROUP BY customer_id, region)
        QUALIFY row_number() OVER (PARTITION BY customer_id ORDER BY n DESC, region ASC) = 1""")
    return int(con.execute("SELECT count(*) FROM kept WHERE region IS NULL").fetchone()[0])


REGION = f"CASE WHEN k.region IS NULL THEN coalesce(b.region, '{ingest.UNKNOWN}') ELSE k.region END"   # filled
TRANSACTIONS_SQL = f"""
    SELECT k.order_id, k.customer_id, coalesce(k.customer_name, k.customer_id) AS customer_name, k.timestamp,
           {REGION} AS region,
           k.product_line, k.quantity, k.amount, k.discount, k.amount < 0 AS is_return
    FROM kept k LEFT JOIN best b ON k.customer_id = b.customer_id
    {{where}}
    ORDER BY k.timestamp ASC NULLS LAST, k.order_id ASC NULLS LAST, k.customer_id ASC NULLS LAST,
             k.product_line ASC NULLS LAST, k.amount ASC NULLS LAST, k._pos"""


def _chunks(con: Any, sql: str) -> Iterator[pa.Table]:
    reader = con.sql(sql).to_arrow_reader(io.ROW_GROUP)
    for batch in reader:
        yield pa.Table.from_batches([batch])


def _quality(con: Any, cfg: DataParams, state: _Pass, dups: int, filled: int, empty: list[str]) -> dict[str, Any]:
    """ingest.quality_record, from the table `kept` (DuckDB) and the batches' counts."""
    kept, cancelled, returns, start, end, customers, orders = con.execute(
        "SELECT count(*), count_if(cancelled), count_if(amount < 0), min(timestamp), max(timestamp), "
        "count(DISTINCT customer_id), count(DISTINCT order_id) FROM kept").fetchone()
    unmapped = con.execute("SELECT other, count(*) FROM kept WHERE other IS NOT NULL GROUP BY other").fetchall()
    return ingest.quality_record(
        cfg, rows_read=state.rows, rows_kept=kept, duplicates=dups, excluded=state.excluded,
        rejected=state.rejected, filled=filled, cancelled=cancelled, returns=returns, empty=empty, start=start,
        end=end, customers=customers, orders=orders, unmapped=dict(unmapped))


def _count_days(con: Any) -> list[str]:
    """Table `days`: the kept lines per day (`day`, `n`), for the sort's time ranges. Returns the months
    ('YYYY-MM') that hold a kept line."""
    con.execute("CREATE TABLE days AS SELECT date_trunc('day', timestamp) AS day, count(*) AS n FROM kept "
                "GROUP BY day")
    return [m for (m,) in con.execute("SELECT DISTINCT strftime(day, '%Y-%m') FROM days").fetchall()]


def time_ranges(days: list[tuple[Any, int]], rows: int) -> list[tuple[Any, Any]]:
    """Whole days, in order, cut into ranges [start, end) of at most `rows` lines each (a day of more lines is a
    range of its own): `days` holds (day, lines) by day, the missing day (None) last. The first range has no
    start and the last no end (None), so that together they take every line, the missing day's too."""
    cuts: list[Any] = []
    held = 0
    for day, n in days:
        if held and held + n > rows and day is not None:
            cuts.append(day)
            held = 0
        held += n
    edges = [None, *cuts, None]
    return list(itertools.pairwise(edges))


def _range_sql(start: Any, end: Any) -> str:
    """TRANSACTIONS_SQL for the kept lines of the range [start, end) of time_ranges."""
    def at(day: Any) -> str:
        return f"TIMESTAMP '{pd.Timestamp(day).isoformat(sep=' ')}'"

    where = [f"k.timestamp >= {at(start)}"] if start is not None else []
    if end is not None:
        where.append(f"k.timestamp < {at(end)}")
    elif where:
        where = [f"({where[0]} OR k.timestamp IS NULL)"]
    return TRANSACTIONS_SQL.format(where="WHERE " + " AND ".join(where) if where else "")


def _write_rejected(con: Any, tmp: Path, meta: Raw, state: _Pass, out: Path) -> None:
    """The set-aside rows in file order, with their row numbers: the checks' (from the batches) and the repeats."""
    template = state.template
    names = list(template.columns)   # row, disposition, reason, column, then the source's columns
    src_names = names[len(ingest.REJECTED_COLUMNS):]
    fields = list(meta.frame.columns)
    # the source column each set-aside column shows (two fields mapped to one column show it once)
    by_name = {(f"{meta.column(f)} (source)" if meta.column(f) in ingest.REJECTED_COLUMNS else meta.column(f)): i
               for i, f in enumerate(fields)}
    aside = f"read_parquet('{tmp / 'aside.parquet'}')" if (tmp / "aside.parquet").is_file() else None
    dups = ", ".join(f"s.src_{by_name[c]} AS {_quote(c)}" for c in src_names)
    parts = [f"""SELECT d._pos AS "row", 'duplicate' AS disposition, '{DUPLICATE}' AS reason, '' AS "column"
                 {', ' + dups if dups else ''}
                 FROM dup d JOIN read_parquet('{tmp / 'free.parquet'}') s ON d._pos = s._pos"""]
    if aside:
        parts.append(f"SELECT {', '.join(_quote(c) for c in names)} FROM {aside}")
    sql = " UNION ALL ".join(f"({p})" for p in parts) + ' ORDER BY "row"'
    writer = io.RowGroupWriter(out)
    try:
        wrote = False
        for table in _chunks(con, sql):
            frame = table.to_pandas()
            frame["row"] = meta.rows(frame["row"].to_numpy(dtype=np.int64))
            for c in names[1:]:
                frame[c] = frame[c].astype("string")
            writer.add(frame[names])
            wrote = True
        if not wrote:
            writer.add(template)
    finally:
        writer.close()


def _arrow_text(t: pa.DataType) -> pd.StringDtype | None:
    """to_pandas' types_mapper: text stays in Arrow buffers (string[pyarrow]), not Python objects."""
    return pd.StringDtype("pyarrow") if pa.types.is_string(t) else None


def _write_transactions(con: Any, out: Path, rows: int) -> None:
    """The kept lines, regions filled, in ingest.SORT_KEYS order: sorted a time range of about SORT_BATCHES
    batches (of `rows` lines) at a time (the first key is the timestamp, so the ranges in time order are the
    whole order), then written one after another into the same row groups."""
    days = con.execute("SELECT day, n FROM days ORDER BY day NULLS LAST").fetchall()
    writer = io.RowGroupWriter(out)
    try:
        for start, end in time_ranges(days, SORT_BATCHES * rows):
            for table in _chunks(con, _range_sql(start, end)):
                frame = table.to_pandas(types_mapper=_arrow_text)
                writer.add(schema.conform(frame, schema.TRANSACTIONS, "transactions", copy=False))
    finally:
        writer.close()


# ---------------------------------------------------------------- the stage
@contextmanager
def _counted(cfg: DataParams, root: str | os.PathLike | None, now: pd.Timestamp | None, rows: int | None,
             done: Callable[[str], None]) -> Iterator[tuple[Any, Path, Raw, _Pass, dict[str, Any]]]:
    """The pass over the file and the whole-file rules, up to the quality record: yields DuckDB's connection (with
    the views and tables `kept`, `dup` and `best`), the temp folder, the file's layout, the batches' counts and
    the quality record. A bad file or row raises ingest's DataError; nothing is written outside the temp folder."""
    stream = csv_source.stream(cfg, config.project_root(root))
    cutoff = ingest.future_cutoff(cfg, now)
    state = _Pass()
    with tempfile.TemporaryDirectory(prefix="datastory-ingest-") as name:
        tmp = Path(name)
        meta = Raw(frame=pd.DataFrame(columns=list(stream.mapped)), name=stream.name, first_row=0,
                   source_columns=stream.mapped)
        aside_out, free_out = io.RowGroupWriter(tmp / "aside.parquet"), None
        try:
            for frame in stream.batches(rows or streaming.batch_rows()):
                free_out = _batch(frame, state.rows, meta, cfg, cutoff, state, free_out, aside_out)
                state.rows += len(frame)
                del frame
                pa.default_memory_pool().release_unused()   # a batch's buffers go back before the next one
        finally:
            aside_out.close()
            if free_out is not None:
                free_out.close()
        done("batches")
        meta = stream.raw()
        done("layout")
        pa.default_memory_pool().release_unused()
        if state.failures:
            k = min(state.failures)
            first = state.failures[k]
            check = dataclasses.replace(state.checks[k], fix=state.fixes.get(k, state.checks[k].fix))
            raise ingest.bad_rows_error(meta, first.pos, check, first.value, first.count)
        if free_out is None:
            raise ingest.no_usable_rows(meta.name, state.rows, {**state.rejected, **state.excluded})
        con = _connect(tmp)
        try:
            dups = _kept(con, tmp, len(meta.frame.columns))
            done("duplicates")
            months = _count_days(con)
            if con.execute("SELECT count(*) FROM days").fetchone()[0] == 0:   # no kept line
                raise ingest.no_usable_rows(meta.name, state.rows, {**state.rejected, **state.excluded})
            filled = _filled(con)
            empty = ingest.missing_months(months)
            if empty and cfg.rules.empty_periods == "fail":
                raise ingest.empty_periods_error(meta.name, meta.column("timestamp"), empty)
            quality = _quality(con, cfg, state, dups, filled, empty)
            done("aggregates")
            yield con, tmp, meta, state, quality
        finally:
            con.close()


def ingest_csv(cfg: DataParams, paths: Paths, root: str | os.PathLike | None = None,
               now: pd.Timestamp | None = None, rows: int | None = None,
               phases: list[tuple[str, float]] | None = None) -> dict[str, Any]:
    """Stream the configured CSV file into paths.transactions, paths.rejected and the data-quality metrics;
    returns the quality dict. A bad file or row raises ingest's DataError and writes nothing. `phases`, when
    given, gets (phase, seconds) appended as each phase ends (for bench/ingest.py)."""
    clock = [time.perf_counter()]

    def done(name: str) -> None:
        if phases is not None:
            now_ = time.perf_counter()
            phases.append((name, now_ - clock[0]))
            clock[0] = now_

    with _counted(cfg, root, now, rows, done) as (con, tmp, meta, state, quality):
        with io.atomic_path(paths.transactions) as tx_tmp, io.atomic_path(paths.rejected) as rej_tmp:
            _write_transactions(con, tx_tmp, rows or streaming.batch_rows())
            done("sort+write")
            _write_rejected(con, tmp, meta, state, rej_tmp)
            done("rejected")
        metrics.save_quality(quality, paths)
    return quality


@dataclass(frozen=True)
class Checked:
    """What `datastory check-data` prints, from a streaming pass that writes nothing (`check`)."""
    quality: dict[str, Any]
    source_name: str
    kept: profile.Profile


def _profile(con: Any) -> profile.Profile:
    """profile.Profile of the transactions `run` would write (regions filled), counted by DuckDB."""
    lines, sales, negatives, product_lines, named_all = con.execute(f"""
        SELECT count(*), count_if(k.amount > 0), count_if(k.amount < 0), count(DISTINCT k.product_line),
               count_if({REGION} = '{schema.ALL}' OR k.product_line = '{schema.ALL}') > 0
        FROM kept k LEFT JOIN best b ON k.customer_id = b.customer_id""").fetchall()[0]
    segments = con.sql(f"""SELECT {REGION} AS region, count(*) AS size, sum(k.amount) AS sum
                           FROM kept k LEFT JOIN best b ON k.customer_id = b.customer_id GROUP BY 1""").df()
    days = con.sql("""SELECT DISTINCT customer_id, CAST(CAST(timestamp AS DATE) AS TIMESTAMP) AS timestamp,
                             coalesce(amount < 0, false) AS is_return FROM kept""").to_arrow_table().to_pandas(
        types_mapper=_arrow_text)
    return profile.make(lines=lines, sales=sales, negatives=negatives, product_lines=product_lines,
                        named_all=named_all, segments=segments.set_index("region"), days=days)


def check(cfg: DataParams, root: str | os.PathLike | None = None, now: pd.Timestamp | None = None,
          rows: int | None = None) -> Checked:
    """The streaming pass of `ingest_csv` without its outputs: the quality record and the kept transactions'
    profile. Raises what `ingest_csv` raises; writes nothing outside a temp folder it removes."""
    with _counted(cfg, root, now, rows, lambda _: None) as (con, _tmp, meta, _state, quality):
        return Checked(quality=quality, source_name=meta.name, kept=_profile(con))
