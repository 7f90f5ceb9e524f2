"""Which ingest engine runs, and the sizes that bound the streaming one: declared once, read by the ingest stage
(`ingest_stream`), by the kpis stage (`kpis_stage`, which reads the transactions file the same way when ingest
streamed) and by `datastory check-data`. A small module on purpose: a stage that only asks the question does not
depend on the ingest code.
"""

from __future__ import annotations

import os

from . import config
from .config import DataParams

BATCH_ROWS = 1_000_000         # records per batch (DATASTORY_STREAM_BATCH overrides it, e.g. in tests)
MEMORY_LIMIT = "1500MB"        # DuckDB's working memory; beyond it, it spills to the temp folder
THREADS = 2
AUTO_BYTES = 1 << 30           # engine: auto streams a CSV file larger than this (about 14M invoice lines)


def batch_rows() -> int:
    return int(os.environ.get("DATASTORY_STREAM_BATCH", "") or BATCH_ROWS)


def streams(cfg: DataParams, root: str | os.PathLike | None = None) -> bool:
    """Whether ingest streams the source: engine stream, or auto and a CSV file larger than AUTO_BYTES."""
    if cfg.engine == "memory" or cfg.source != "csv":
        return cfg.engine == "stream" and cfg.source == "csv"
    if cfg.engine == "stream":
        return True
    path = config.project_root(root) / cfg.file.path
    return path.is_file() and path.stat().st_size > AUTO_BYTES
