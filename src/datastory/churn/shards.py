"""Churn features from a transactions Parquet file in bounded memory, one shard of customers at a time.

`features_file(path, cutoff, lookback_days, out)` writes the frame `features_at(io.read_parquet(path), ...)`
returns, with the same bytes as io.write_parquet of that frame; `features_from_file` returns it, and
`features_many_from_file` the frames at several cutoffs from one split (the shards cut at the latest cutoff,
each shard's lines before an earlier one taken from them: the churn stage's seven cutoffs read the file once,
not seven times). Memory holds
one shard (about ROWS_PER_SHARD lines and their features) and DuckDB's working set (MEMORY_LIMIT):
- the checks and errors are features_at's, over the whole file: its schema and row count, the data span
  (DuckDB min/max of timestamp), lookback_days;
- the product lines and regions before the cutoff (the one-hot columns) are listed once, over the whole file;
- the customers with lines before the cutoff are cut into K contiguous ranges of customer_id, K =
  ceil(lines / ROWS_PER_SHARD), each range about lines / K lines (a customer is never split, so one customer
  with more lines makes its shard larger). DuckDB orders VARCHAR by bytes, which for UTF-8 is the code point
  order pandas sorts strings in, so the shards' frames follow each other in features_at's customer_id order;
- one read of the file, SPLIT_ROWS lines at a time (per_shard when smaller), cuts its lines before the cutoff
  into one temporary Parquet file per shard (`_split`), each in file order, the order features_at sees them
  in; each shard's file is then read back whole and goes through features_at's own code
  (features.features_of_past);
- repeat_delay_days is one median over every customer's first-to-second purchase delay: each shard gives its
  delays, and the shards' frames wait in a temp folder until the median is known;
- the output is written atomically (io.atomic_path) in io.write_parquet's row groups (io.RowGroupWriter), so a
  failed run leaves no partial file and an older output untouched.
The file is read the same few times whatever K (the span, the one-hot lists unless given, the shards' bounds,
the split), so the time grows with the lines. (Reading the file once per shard instead, as a time-sorted file
has every customer in every row group, grew with K times the file: with the lines squared.) `shard_bounds`
shows the shards a file is read in.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .. import io, schema, streaming
from ..errors import DataError
from . import features as ft
from .features import as_cutoff, check_cutoff_in, check_lookback, check_table, features_of_past, median_delay
from .sampling import Pick

ROWS_PER_SHARD = 1_500_000     # lines read per shard (DATASTORY_CHURN_SHARD_ROWS or rows_per_shard= overrides)
SPLIT_ROWS = 250_000           # lines read at a time when cutting the file into shards (fewer with smaller shards)
MEMORY_LIMIT = "512MB"         # DuckDB's working memory; beyond it, it spills to the temp folder
SPILL_CODEC = "lz4"            # the shards' frames waiting for the median: fast to write and read back
DELAY = "repeat_delay_days"
ARROW_TYPES = {"string": pa.string(), "datetime64[ns]": pa.timestamp("ns"), "float64": pa.float64(),
               "bool": pa.bool_()}


def rows_per_shard() -> int:
    return int(os.environ.get("DATASTORY_CHURN_SHARD_ROWS", "") or ROWS_PER_SHARD)


def shard_count(lines: int, per_shard: int) -> int:
    """K: how many shards `lines` lines make at `per_shard` lines a shard (at least 1)."""
    if per_shard < 1:
        raise ValueError(f"rows per shard must be >= 1, got {per_shard}")
    return max(1, math.ceil(lines / per_shard))


class _Source:
    """The transactions file seen through DuckDB: every query reads only the lines before the cutoff."""

    def __init__(self, con: Any, path: Path, cutoff: pd.Timestamp) -> None:
        self.con, self.cutoff = con, cutoff
        self.scan = f"read_parquet({streaming.sql_text(str(path))})"
        self.before = f"timestamp < TIMESTAMP {streaming.sql_text(cutoff.isoformat(sep=' '))}"

    def rows(self, sql: str, params: list[Any] | None = None) -> list[tuple]:
        return self.con.execute(sql, params or []).fetchall()

    def distinct(self, column: str) -> list[str]:
        """Sorted like features_at sorts them (Python's order, not the database's)."""
        return sorted(v for (v,) in self.rows(f"SELECT DISTINCT {column} FROM {self.scan} WHERE {self.before}"))

    def bounds(self, per_shard: int) -> list[tuple[str, str]]:
        """(first, last) customer_id of each shard, in customer_id order; shards of about equal line counts."""
        (lines,), = self.rows(f"SELECT count(*) FROM {self.scan} WHERE {self.before}")
        k = shard_count(lines, per_shard)
        return [(lo, hi) for _, lo, hi in self.rows(f"""
            WITH per AS (SELECT customer_id, count(*) AS n FROM {self.scan} WHERE {self.before} GROUP BY 1),
            cum AS (SELECT customer_id, sum(n) OVER (ORDER BY customer_id ROWS UNBOUNDED PRECEDING) - n AS ahead
                    FROM per)
            SELECT least(ahead * {k} // {max(lines, 1)}, {k - 1}) AS shard, min(customer_id), max(customer_id)
            FROM cum GROUP BY shard ORDER BY shard""")]



SCHEMA = pa.schema([(c, ARROW_TYPES[t]) for c, t in schema.TRANSACTIONS.items()])


def shard_of(customers: pa.ChunkedArray | pa.Array, firsts: np.ndarray) -> np.ndarray:
    """Per line, the index of the shard its customer is in: the last shard whose first customer_id (`firsts`,
    ascending, as Python compares text) is not after it."""
    ids = np.asarray(customers.to_numpy(zero_copy_only=False), dtype=str)
    return np.searchsorted(firsts, ids, side="right") - 1


def _split(path: Path, cutoff: pd.Timestamp, bounds: list[tuple[str, str]], folder: Path,
           rows: int) -> list[Path]:
    """The lines before `cutoff` of a customer in one of `bounds`, cut into one Parquet file per shard (in
    `folder`), each in file order: one read of the file, `rows` lines at a time. Their paths, in shard order."""
    folder.mkdir(parents=True, exist_ok=True)
    files = [folder / f"shard-{i:06d}.parquet" for i in range(len(bounds))]
    firsts = np.array([lo for lo, _ in bounds], dtype=str)
    writers: dict[int, pq.ParquetWriter] = {}
    try:
        for batch in streaming.record_batches(path, list(schema.TRANSACTIONS), rows):
            table = pa.Table.from_batches([batch])
            stamp = table.column("timestamp")
            keep = pc.and_(pc.less(stamp, pa.scalar(cutoff.to_pydatetime(), stamp.type)),
                           pc.is_valid(table.column("customer_id")))
            table = table.filter(keep).cast(SCHEMA)
            if not len(table):
                continue
            shard = shard_of(table.column("customer_id"), firsts)
            order = np.argsort(shard, kind="stable")          # stable: each shard's lines stay in file order
            table, shard = table.take(order), shard[order]
            edges = np.searchsorted(shard, np.arange(len(files) + 1))
            for i in np.flatnonzero(np.diff(edges)):
                if i not in writers:
                    writers[i] = pq.ParquetWriter(files[i], SCHEMA, compression=SPILL_CODEC)
                writers[i].write_table(table.slice(edges[i], edges[i + 1] - edges[i]))
    finally:
        for w in writers.values():
            w.close()
    return files


def _read_shard(file: Path) -> pd.DataFrame:
    """A shard's lines (its `_split` file) with schema.TRANSACTIONS dtypes; no lines when it has none."""
    table = pq.read_table(file) if file.is_file() else SCHEMA.empty_table()
    # self_destruct: each column's Arrow buffers go as it is converted, so the shard is not held twice
    frame = table.to_pandas(types_mapper={pa.string(): pd.StringDtype()}.get, self_destruct=True, split_blocks=True)
    del table
    return schema.conform(frame, schema.TRANSACTIONS, "transactions", copy=False)


def _connect(tmp: Path) -> Any:
    return streaming.connect(tmp / "spill", MEMORY_LIMIT)


def check_file(path: str | os.PathLike) -> None:
    """check_transactions for the Parquet file at `path`, from its schema and row count (the same messages)."""
    try:
        meta = pq.ParquetFile(path)
    except (OSError, pa.ArrowInvalid) as exc:
        raise DataError(f"transactions: cannot read the Parquet file ({exc})", file=str(path),
                        fix="pass the cleaned data/interim/transactions.parquet (schema.TRANSACTIONS)") from None
    arrow = meta.schema_arrow
    ts_ok = "timestamp" in arrow.names and pa.types.is_timestamp(arrow.field("timestamp").type)
    check_table(arrow.names, meta.metadata.num_rows, ts_ok)


def _open(path: Path, cutoffs: list[object], lookback_days: int, con: Any) -> tuple[_Source, list[pd.Timestamp]]:
    """features_at's checks, in its order, over the whole file, for each cutoff in turn. The source reads
    the lines before the latest cutoff."""
    cuts = [as_cutoff(c) for c in cutoffs]
    check_file(path)
    source = _Source(con, path, max(cuts))
    (first, last), = source.rows(f"SELECT min(timestamp), max(timestamp) FROM {source.scan}")
    start, end = pd.Timestamp(first).normalize(), pd.Timestamp(last).normalize() + pd.Timedelta(days=1)
    for cutoff in cuts:
        check_cutoff_in(start, end, cutoff)
    check_lookback(lookback_days)
    return source, cuts


def shard_bounds(path: str | os.PathLike, cutoff: object, per_shard: int | None = None) -> list[tuple[str, str]]:
    """(first, last) customer_id of each shard the file is read in at `cutoff` (features_at's checks first)."""
    with tempfile.TemporaryDirectory(prefix="churn-shards-") as tmp:
        con = _connect(Path(tmp))
        try:
            return _open(Path(path), [cutoff], 1, con)[0].bounds(per_shard or rows_per_shard())
        finally:
            con.close()


def _at(past: pd.DataFrame, stamp: np.ndarray, cut: pd.Timestamp, latest: pd.Timestamp, lookback_days: int,
        product_lines: list[str], regions: list[str], picked: np.ndarray | None) -> tuple[pd.DataFrame, np.ndarray]:
    """features_of_past at `cut` of a shard's lines (cut at the `latest` cutoff): the lines before `cut`, and of
    them the picked customers' (`picked`, per line; None: every customer) for the features. The delays are
    every customer's."""
    before = None if cut == latest else stamp < cut.to_datetime64()
    if picked is None:
        lines = past if before is None else past[before].reset_index(drop=True)
        return features_of_past(lines, cut, lookback_days, product_lines, regions)
    keep = picked if before is None else picked & before
    frame, _ = features_of_past(past[keep].reset_index(drop=True), cut, lookback_days, product_lines, regions)
    every = past if before is None else past[before]
    return frame, ft.repeat_delays(every, cut, lookback_days)


def _shards(path: str | os.PathLike, cutoffs: list[object], lookback_days: int, product_lines: list[str] | None,
            regions: list[str] | None, per_shard: int | None, tmp: Path,
            picks: list[Pick | None] | None = None) -> Iterator[list[tuple[pd.DataFrame, np.ndarray]]]:
    """Per shard, in customer_id order, each cutoff's features (repeat_delay_days NaN; of the customers its
    pick takes, when it has one) and every customer's first-to-second purchase delays. The shards are cut
    once, at the latest cutoff; each shard's lines before an earlier cutoff are its lines before the latest one
    that come before it."""
    picks = picks or [None] * len(cutoffs)
    con = _connect(tmp)
    try:
        source, cuts = _open(Path(path), cutoffs, lookback_days, con)
        lines = [list(product_lines) if product_lines is not None else
                 _Source(con, Path(path), c).distinct("product_line") for c in cuts]
        regs = [list(regions) if regions is not None else _Source(con, Path(path), c).distinct("region")
                for c in cuts]
        rows = per_shard or rows_per_shard()
        bounds = source.bounds(rows)
    finally:
        con.close()
    files = _split(Path(path), source.cutoff, bounds, tmp / "lines", min(rows, SPLIT_ROWS))
    pa.default_memory_pool().release_unused()
    for file in files:
        past = _read_shard(file)
        file.unlink(missing_ok=True)
        stamp = past["timestamp"].to_numpy(dtype="datetime64[ns]")
        masks = {id(p): p(past["customer_id"]) for p in picks if p is not None}   # each pick's once a shard
        done = [_at(past, stamp, c, source.cutoff, lookback_days, pl, rg, None if p is None else masks[id(p)])
                for c, pl, rg, p in zip(cuts, lines, regs, picks, strict=True)]
        del masks
        del past, stamp     # not held while the caller works and the next shard is read
        pa.default_memory_pool().release_unused()   # Arrow's pool keeps what it read, unless asked
        yield done


def features_many_from_file(path: str | os.PathLike, cutoffs: list[object], lookback_days: int, *,
                            product_lines: list[str] | None = None, regions: list[str] | None = None,
                            per_shard: int | None = None, picks: list[Pick | None] | None = None) -> list[pd.DataFrame]:
    """[features_from_file(path, c, ...) for c in cutoffs], the same frames, from one split of the file: the
    churn stage's training, validation, scoring and comparison cutoffs read the file once, not once each.
    `picks`: per cutoff, None or a sampling.Pick (customer ids -> in the sample): only the picked customers'
    features are computed, each shard's lines cut to theirs first; repeat_delay_days is still every customer's
    median."""
    if not cutoffs:
        return []
    picks = picks or [None] * len(cutoffs)
    if len(picks) != len(cutoffs):
        raise ValueError(f"{len(picks)} picks for {len(cutoffs)} cutoffs")
    with tempfile.TemporaryDirectory(prefix="churn-shards-") as tmp:
        frames: list[list[pd.DataFrame]] = [[] for _ in cutoffs]
        delays: list[list[np.ndarray]] = [[] for _ in cutoffs]
        for shard in _shards(path, cutoffs, lookback_days, product_lines, regions, per_shard, Path(tmp), picks):
            for i, (frame, delay) in enumerate(shard):
                frames[i].append(frame)
                delays[i].append(delay)
    out = []
    for parts, ds in zip(frames, delays, strict=True):
        whole = pd.concat([f for f in parts if len(f)] or parts[:1], ignore_index=True)
        whole[DELAY] = median_delay(np.concatenate(ds))
        out.append(whole)
    return out


def features_from_file(path: str | os.PathLike, cutoff: object, lookback_days: int, *,
                       product_lines: list[str] | None = None, regions: list[str] | None = None,
                       per_shard: int | None = None) -> pd.DataFrame:
    """features_at(io.read_parquet(path), cutoff, lookback_days, ...) computed shard by shard (the result is
    whole in memory; features_file writes it without holding it)."""
    return features_many_from_file(path, [cutoff], lookback_days, product_lines=product_lines, regions=regions,
                                   per_shard=per_shard)[0]


def features_file(path: str | os.PathLike, cutoff: object, lookback_days: int, out: str | os.PathLike, *,
                  product_lines: list[str] | None = None, regions: list[str] | None = None,
                  per_shard: int | None = None) -> int:
    """Write features_at's frame of the transactions file `path` to `out` (atomically, the bytes
    io.write_parquet gives that frame) without holding it whole; return its number of rows."""
    with tempfile.TemporaryDirectory(prefix="churn-shards-") as tmp_dir:
        tmp = Path(tmp_dir)
        spilled, delays = [], []
        for i, [(frame, delay)] in enumerate(_shards(path, [cutoff], lookback_days, product_lines, regions,
                                                     per_shard, tmp)):
            spilled.append(tmp / f"shard-{i:06d}.parquet")
            pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), spilled[-1], compression=SPILL_CODEC)
            delays.append(delay)
            del frame
        value = median_delay(np.concatenate(delays))
        rows = 0
        with io.atomic_path(out) as target:
            writer = io.RowGroupWriter(target)
            try:
                for part in spilled:
                    table = pq.read_table(part)
                    at = table.schema.get_field_index(DELAY)
                    column = pa.array(np.full(len(table), value), pa.float64(), from_pandas=True)
                    writer.add(table.set_column(at, DELAY, column))
                    rows += len(table)
                    part.unlink()
            finally:
                writer.close()
    return rows
