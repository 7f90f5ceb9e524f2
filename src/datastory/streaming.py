"""Which ingest engine runs, and the sizes that bound the streaming one: declared once, read by the ingest stage
(`ingest_stream`), by the kpis stage (`kpis_stage`, which reads the transactions file the same way when ingest
streamed) and by `datastory check-data`. A small module on purpose: a stage that only asks the question does not
depend on the ingest code. And how a Parquet file is read back a batch at a time (`record_batches`), its text
kept in Arrow (`arrow_strings`).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from . import config
from .config import DataParams

BATCH_ROWS = 1_000_000         # records per batch (DATASTORY_STREAM_BATCH overrides it, e.g. in tests)
MEMORY_LIMIT = "1500MB"        # DuckDB's working memory; beyond it, it spills to the temp folder
THREADS = 2
SALE = "amount > 0 AND NOT isnan(amount)"   # a sale in SQL, as pandas' amount > 0 (DuckDB orders NaN above all)
AUTO_BYTES = 1 << 30           # engine: auto streams a CSV file larger than this (about 14M invoice lines)


def batch_rows() -> int:
    return int(os.environ.get("DATASTORY_STREAM_BATCH", "") or BATCH_ROWS)


def arrow_strings(arrow_type: Any) -> Any:
    """The `types_mapper` that keeps Arrow text (string or large_string) in Arrow (pandas' "string[pyarrow]"), with
    no Python object per value."""
    import pandas as pd

    return pd.StringDtype("pyarrow") if str(arrow_type) in ("string", "large_string") else None


def record_batches(source: Any, columns: list[str], rows: int | None = None,
                   coded: tuple[str, ...] = ()) -> Iterator[Any]:
    """A Parquet file's `columns`, `rows` (default batch_rows()) at a time, as Arrow record batches in file order.

    `source`: a path (opened here and closed after the last batch) or a pyarrow ParquetFile the caller opened with
    `pre_buffer=False`. Without pre-buffering: it keeps every row group read until the file is closed (memory
    growing with the file). `coded`: columns of a path read as dictionaries (codes into a few values, as Parquet
    stores them: no hashing, no text per line)."""
    import pyarrow.parquet as pq

    if not isinstance(source, pq.ParquetFile):
        with pq.ParquetFile(source, pre_buffer=False, read_dictionary=list(coded) or None) as reader:
            yield from record_batches(reader, columns, rows)
        return
    yield from source.iter_batches(batch_size=rows or batch_rows(), columns=columns)


def column_batches(path: str | os.PathLike, columns: list[str], rows: int | None = None,
                   coded: tuple[str, ...] = ()) -> Iterator[Any]:
    """record_batches as pandas frames, their text in Arrow (arrow_strings), the `coded` columns as categoricals.
    A batch is let go once it is a frame."""
    for batch in record_batches(path, columns, rows, coded):
        frame = batch.to_pandas(types_mapper=arrow_strings)
        del batch
        yield frame


def streams(cfg: DataParams, root: str | os.PathLike | None = None) -> bool:
    """Whether ingest streams the source: engine stream, or auto and a CSV file larger than AUTO_BYTES."""
    if cfg.engine == "memory" or cfg.source != "csv":
        return cfg.engine == "stream" and cfg.source == "csv"
    if cfg.engine == "stream":
        return True
    path = config.project_root(root) / cfg.file.path
    return path.is_file() and path.stat().st_size > AUTO_BYTES


def connect(spill: str | os.PathLike, memory_limit: str = MEMORY_LIMIT, database: str = ":memory:") -> Any:
    """A DuckDB connection bounded as streaming is: `memory_limit` of working memory and THREADS, spilling to
    folder `spill` beyond it; `database` a file for tables too large to hold (ingest's work), else in memory."""
    import duckdb as db

    con = db.connect(database)
    con.execute(f"SET memory_limit = '{memory_limit}'")
    con.execute(f"SET threads = {THREADS}")
    con.execute(f"SET temp_directory = {sql_text(str(spill))}")
    return con


@contextmanager
def duckdb(path: str | os.PathLike, rows: bool = False) -> Iterator[Any]:
    """A DuckDB connection (`connect`) with view `tx` on the Parquet file at `path`, spilling to a temp folder
    removed at the end (the kpis stage's reads of the transactions file). `rows`: with column file_row_number,
    each line's place in the file (0 on)."""
    with tempfile.TemporaryDirectory(prefix="datastory_kpis_") as tmp:
        con = connect(tmp)
        try:
            con.execute("SET preserve_insertion_order = false")
            numbered = ", file_row_number = true" if rows else ""
            con.execute(f"CREATE VIEW tx AS SELECT * FROM read_parquet({sql_text(str(Path(path)))}{numbered})")
            yield con
        finally:
            con.close()


def sql_text(value: str) -> str:
    """`value` as an SQL string literal."""
    return "'" + value.replace("'", "''") + "'"
