"""The kpis stage's four tables, in memory or from the transactions file in bounded memory.

`build` is what the notebook (and `run`) calls. It makes the KPI table, the distinct active customers, the
revenue bridge and the movers one of two ways, which give the same tables, byte for byte:
- in memory (`in_memory`, the pure core): the transactions loaded whole; kpis.compute, kpis.active,
  bridge.compute, bridge.movers;
- from the file (`from_file`), when the ingest stage streams (streaming.streams decides, the one rule: a
  log too large for ingest's memory is too large for this stage's), memory holding about `rows` lines:
  - one DuckDB pass first (kpis.file_history; streaming.duckdb: working memory MEMORY_LIMIT, spilling to a temp
    folder beyond it) groups the sales by region, customer and year: each customer's first sale, their first
    sale per region, and the distinct customers per region and period at each grain;
  - the KPI table: kpis.compute_file, a period at a time (its active customers, and where each customer's
    first sale is, from that pass);
  - the active customers: the pass's counts, on kpis.active_table's grid;
  - the bridge and the movers compare only the latest complete period with the one before: the periods
    come from the KPI table and the data's last day, only those two periods' lines are read (and only the
    columns the bridge uses, bridge.LINES), and a bridge.Before record carries what the two use of the other
    lines: the log's first period and its regions (from the KPI table), and which customers had bought before,
    per region (from the pass);
  - the names of the few customers the movers list (bridge.with_names), last: their latest names, read in
    batches of those customers' lines, from the previous period on, then, for customers without a name there,
    the earlier ones (none after ingest, which names every customer).
The quarterly bridge holds two quarters of lines (six of the bridge's columns).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from . import bridge, config, heap, io, kpis, schema, streaming
from .config import DataParams, KpisParams, Paths
from .errors import DataError


@dataclass(frozen=True)
class Tables:
    """What the kpis stage writes (schema.KPIS, ACTIVE, BRIDGE, MOVERS), and whether it read the file in
    batches (`streamed`) or loaded it whole."""
    kpis: pd.DataFrame
    active: pd.DataFrame
    bridge: pd.DataFrame
    movers: pd.DataFrame
    streamed: bool = False

    @property
    def how(self) -> str:
        return ("read from the file in batches (bounded memory)" if self.streamed
                else "computed with the transactions in memory")


def in_memory(tx: pd.DataFrame, cfg: KpisParams, data_end: Any, quantities: bool) -> Tables:
    """The four tables from the whole transactions frame `tx` (the bridge and the movers share its lines
    prepared once)."""
    table, active = kpis.compute(tx, cfg.period), kpis.active(tx)
    lines = bridge.prepare(tx, cfg.period)
    named = bridge.names(tx) if "customer_name" in tx.columns else None
    return Tables(table, active, bridge.compute(lines, cfg.period, data_end, quantities=quantities),
                  bridge.movers(lines, cfg.period, data_end, top=cfg.movers, named=named))


@heap.keeping   # a period's columns are freed and asked for again, period after period
def from_file(path: str | os.PathLike, cfg: KpisParams, data_end: Any, quantities: bool,
              rows: int = streaming.BATCH_ROWS) -> Tables:
    """The four tables from the transactions file at `path` (ingest's output, in time order), holding about
    `rows` lines at a time, plus the lines from the previous complete period on for the bridge and movers. Freed
    memory stays in the process meanwhile (heap.kept)."""
    path = Path(path)
    history = kpis.file_history(path)
    table = kpis.compute_file(path, cfg.period, rows=rows, history=history)
    pa.default_memory_pool().release_unused()   # Arrow's pool keeps what the batches used, unless asked
    regions = tuple(sorted(r for r in map(str, table["region"].unique()) if r != schema.ALL))
    first, last = table["period"].min(), table["period"].max()
    active = kpis.active_table(history.active, regions, history.first_ts, history.last_ts)
    end = data_end if data_end is not None else history.last_ts
    pair = bridge.periods(pd.Series([first, last]), cfg.period, end)
    since = pair[1] if pair else last        # no pair: the last period's lines tell the bridge so
    # the two periods' lines, only the columns the bridge reads
    until = [("timestamp", "<", pair[0] + pd.DateOffset(months=3 if cfg.period == "Q" else 1))] if pair else []
    recent = pq.read_table(path, columns=list(bridge.LINES), filters=[("timestamp", ">=", since), *until],
                           read_dictionary=list(bridge.CODED)).to_pandas(types_mapper=streaming.arrow_strings)
    lines = bridge.prepare(recent, cfg.period)      # the lines as numbers and categories: the text is dropped
    del recent
    pa.default_memory_pool().release_unused()
    before = bridge.Before(since=since, first=first, regions=regions, buyers=_buyers(history.pairs, since))
    movers = bridge.movers(lines, cfg.period, end, top=cfg.movers, before=before)
    # names only for the few customers listed, read last
    movers = bridge.with_names(movers, _names(path, bridge.customer_keys(movers), since, rows))
    return Tables(table, active, bridge.compute(lines, cfg.period, end, quantities=quantities, before=before),
                  movers, streamed=True)


def build(paths: Paths, cfg: KpisParams, quality: dict[str, Any], data: DataParams,
          root: str | os.PathLike | None = None, rows: int | None = None) -> Tables:
    """The stage's tables from `paths.transactions`: from the file in batches when ingest streams (params/data.yaml
    engine, see streaming.streams), else in memory. `quality`: the data-quality record (its period_end is
    the data's last day); `rows`: lines per batch (default streaming.batch_rows())."""
    if not paths.transactions.is_file():
        raise DataError("transactions not found", file=str(paths.transactions),
                        fix="run the ingest stage first (`dvc repro ingest`)")
    end, quantities = quality.get("period_end"), bridge.has_quantities(data)
    if streaming.streams(data, root):
        return from_file(paths.transactions, cfg, end, quantities, rows or streaming.batch_rows())
    return in_memory(io.read_parquet(paths.transactions), cfg, end, quantities)


def save(tables: Tables, paths: Paths) -> None:
    io.write_parquet(tables.kpis, paths.kpis)
    io.write_parquet(tables.bridge, paths.bridge)
    io.write_parquet(tables.movers, paths.movers)
    io.write_parquet(tables.active, paths.active)


def run(root: str | os.PathLike | None = None) -> Tables:
    """The whole kpis stage without a notebook: build the tables and save them."""
    paths = config.paths(root)
    quality = io.read_json(paths.data_quality) if paths.data_quality.is_file() else {}
    tables = build(paths, config.load("kpis", root), quality, config.load("data", root), root)
    save(tables, paths)
    return tables


# ---------------------------------------------------------------- the file's history (DuckDB, Arrow batches)
def _buyers(pairs: pa.Table, since: pd.Timestamp) -> pd.DataFrame:
    """(region, customer_id) of a sale before `since`, from `pairs` (kpis.History.pairs: each customer's
    first sale per region); all such customers, which bridge.Before allows (the bridge keeps its lines' own).
    The ids stay Arrow text (no Python object per id)."""
    first = pairs["first"].cast(pa.timestamp("ns"))
    early = pairs.filter(pc.less(first, pa.scalar(pd.Timestamp(since).as_unit("ns").to_datetime64())))
    return early.select(["region", "customer_id"]).to_pandas(types_mapper=streaming.arrow_strings)


def _names(path: Path, customers: list[str], since: pd.Timestamp, rows: int) -> pd.Series:
    """customer_id -> latest non-empty name in the file (bridge.names) of `customers` (a movers table's few):
    from the lines from `since` on, then, for those without one there, from the lines before it; `rows` lines at
    a time (bridge.NAMED's columns). The file is in time order, so a later name is a later line's."""
    if not customers:
        return pd.Series(dtype="string")
    wanted = bridge.text(customers)
    named = _latest(path, [("timestamp", ">=", since)], wanted, rows)
    missing = pc.filter(wanted, pc.invert(pc.is_in(wanted, value_set=bridge.text(named.index))))
    early = _latest(path, [("timestamp", "<", since)], missing, rows) if len(missing) else named.iloc[:0]
    parts = [part for part in (early, named) if len(part)]   # later names last
    out = pd.concat(parts) if parts else named
    return out[~out.index.duplicated(keep="last")]


def _latest(path: Path, where: list[tuple], wanted: pa.Array, rows: int) -> pd.Series:
    """bridge.names of the lines matching `where` of the customers `wanted`, in batches of `rows` lines."""
    import pyarrow.dataset as ds

    found: list[pd.Series] = []
    filt = pq.filters_to_expression(where) & ds.field("customer_id").isin(wanted)
    for batch in ds.dataset(path, format="parquet").to_batches(columns=list(bridge.NAMED), filter=filt,
                                                                 batch_size=rows, batch_readahead=1,
                                                                 fragment_readahead=1):   # a batch or two held
        if batch.num_rows:
            found.append(bridge.names(batch.to_pandas(types_mapper=streaming.arrow_strings)))
    if not found:
        return pd.Series(dtype="string")
    out = pd.concat(found)
    return out[~out.index.duplicated(keep="last")]
