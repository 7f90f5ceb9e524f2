"""Benchmark: churn features at 10 million customers in bounded memory (datastory.churn.shards); time and peak RSS.

Run: .venv/bin/python bench/churn_scale.py [--customers 10000000] [--base 1000000] [--compare 500000]
     [--per-shard N]
     .venv/bin/python bench/churn_scale.py --stage-lines 1e6,5e6 [--per-shard N]   (the whole churn run)

- Data: bench/churn.py's synthetic log (each customer acquired on a random day of two years, buying at its own
  Poisson rate until it leaves; about 3% of lines returned later), generated in chunks of CHUNK customers
  and written chunk by chunk with a ParquetWriter, so generation is bounded too. Chunk c holds the customers
  whose number is c modulo the chunk count, sorted by time: every row group spans the whole customer_id
  range, as in ingest's time-sorted file, so no shard can skip a row group. Seeded. Files go to a temp
  folder removed at the end.
- Timed, each in a fresh subprocess (its own ru_maxrss is the path's peak RSS, file reading included), at
  the scoring date (the day after the log ends), lookback 365 days:
  the shard path (shards.features_file: file in, features Parquet out) at --customers and at --base;
  and at --compare, the shard path and beside it the in-memory path (io.read_parquet, features_at,
  io.write_parquet), their outputs compared byte for byte. --compare defaults to 500,000 customers, not 1M:
  the in-memory path needs about 8 GB at 1M (pass --compare 1000000 where memory allows).
  One run each (the 10M run is long).
- --stage-lines L1,L2,...: the whole churn stage's run (train, validate, score; churn.save's outputs) on a log
  of about L lines (L / 8 customers), from the file (churn.run_file: features by shards, the rest from DuckDB)
  and in memory (churn.run(io.read_parquet(path))), each in a fresh child process: wall seconds, CPU seconds
  (user + system, DuckDB's threads included) and peak RSS (VmHWM), the ratios file / memory of the same run,
  and whether the two wrote the same bytes.
Not a test: timings depend on the machine. Target: peak RSS at 10M customers <= 3 GB.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

try:
    import duckdb  # noqa: F401  (the shard path's engine)
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from datastory import churn, config, io, schema, streaming
    from datastory import metrics as metrics_io
    from datastory.churn import features_at, shards

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _proc import run_child as run_script
    from _proc import usage
    from churn import START, draw_lines, peak_rss_mib  # bench/churn.py: the same log, drawn the same way
except ImportError as exc:  # e.g. no duckdb, or not on Linux/macOS (resource)
    print(f"bench/churn_scale.py skipped: {exc}")
    sys.exit(0)

REGIONS = ["East", "North", "South", "West"]
LINES = ["Hardware", "Services", "Software", "Supplies"]
LOOKBACK_DAYS = 365
CHUNK = 500_000                                          # customers generated and written at a time
TARGET_GB = 3.0


def _text(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    digits = pc.utf8_lpad(pa.array(numbers).cast(pa.string()), width=width, padding="0")
    return pc.binary_join_element_wise(prefix, digits, "")


def chunk_table(cust_no: np.ndarray, first_order: int, rng: np.random.Generator) -> pa.Table:
    """bench/churn.py's synthetic_log for the customers numbered `cust_no`, as an Arrow table sorted by
    (timestamp, order_id); order numbers start at `first_order`."""
    n = len(cust_no)
    cust, r_src, all_cust, ts, amount, discount = draw_lines(rng, n)
    m = len(all_cust)
    order = np.lexsort((np.arange(m), ts))                 # by time, then order number (= row here)
    all_cust, ts = all_cust[order], ts[order]
    number = cust_no[all_cust]
    region = np.array(REGIONS, dtype=object)[rng.integers(0, len(REGIONS), n)]
    table = {
        "order_id": _text("O", first_order + np.arange(m), 10),
        "customer_id": _text("C", number, 8),
        "customer_name": pc.binary_join_element_wise("Customer ", pa.array(number).cast(pa.string()), " Ltd", ""),
        "timestamp": pa.array(ts.astype("datetime64[ns]")),
        "region": pa.array(region[all_cust], pa.string()),
        "product_line": pa.array(np.array(LINES, dtype=object)[rng.integers(0, len(LINES), m)], pa.string()),
        "quantity": pa.array(np.concatenate([np.ones(len(cust)), -np.ones(len(r_src))])[order]),
        "amount": pa.array(np.concatenate([amount, -amount[r_src]])[order]),
        "discount": pa.array(np.concatenate([discount, discount[r_src]])[order]),
        "is_return": pa.array(np.r_[np.zeros(len(cust), bool), np.ones(len(r_src), bool)][order]),
    }
    return pa.table(table)


def write_log(n: int, path: Path, seed: int = 0) -> tuple[int, pd.Timestamp]:
    """The log of `n` customers at `path` (pandas' schema for schema.TRANSACTIONS, as ingest writes it);
    (lines, scoring date)."""
    rng = np.random.default_rng(seed)
    like = pa.Table.from_pandas(schema.conform(pd.DataFrame({c: [] for c in schema.TRANSACTIONS}),
                                               schema.TRANSACTIONS, "log"), preserve_index=False).schema
    chunks = max(1, -(-n // CHUNK))
    lines, last = 0, START
    with pq.ParquetWriter(path, like, compression="zstd") as writer:
        for c in range(chunks):
            table = chunk_table(np.arange(c, n, chunks), lines, rng).cast(like)
            writer.write_table(table, row_group_size=1_000_000)
            lines += len(table)
            last = max(last, np.datetime64(pc.max(table["timestamp"]).as_py(), "s"))
    return lines, pd.Timestamp(last).normalize() + pd.Timedelta(days=1)


# ---------------------------------------------------------------- the timed paths (run in a child process)
def run_stage(mode: str, path: str, out: str, per_shard: int) -> dict:
    """The churn stage's run from the file or in memory; its outputs as churn.save writes them, under `out`."""
    t0, c0 = time.perf_counter(), usage()["cpu_s"]
    cfg = config.ChurnParams()
    if mode == "stage-file":
        result = churn.run_file(path, cfg, per_shard=per_shard or None)
    else:
        result = churn.run(io.read_parquet(path), cfg)
    io.write_parquet(result.scores, Path(out) / "churn_scores.parquet")
    io.write_json(result.metrics, Path(out) / "churn.json")
    io.write_json(metrics_io.churn_headline(result.metrics), Path(out) / "churn_headline.json")
    used = usage()
    return {"seconds": time.perf_counter() - t0, "cpu": used["cpu_s"] - c0, "rss_mib": used["peak_mb"],
            "rows": len(result.scores)}


def child(mode: str, path: str, cutoff: str, out: str, per_shard: int) -> dict:
    if mode.startswith("stage-"):
        return run_stage(mode, path, out, per_shard)
    t0 = time.perf_counter()
    if mode == "shards":
        rows = shards.features_file(path, cutoff, LOOKBACK_DAYS, out, per_shard=per_shard or None)
    else:
        feats = features_at(io.read_parquet(path), cutoff, LOOKBACK_DAYS)
        io.write_parquet(feats, out)
        rows = len(feats)
    return {"seconds": time.perf_counter() - t0, "rss_mib": peak_rss_mib(), "rows": rows}


def run_child(mode: str, path: Path, cutoff: pd.Timestamp, out: Path, per_shard: int) -> dict:
    return run_script(__file__, "--child", mode, str(path), cutoff.date().isoformat(), str(out), str(per_shard))


def stage_main(sizes: list[int], per_shard: int, memory_max: int) -> None:
    """The whole churn run from the file vs in memory at about each of `sizes` lines (in memory only up to
    `memory_max` lines: it needs about 1.1 GB per million lines)."""
    print(f"the churn run, file vs memory; rows per shard {per_shard or shards.rows_per_shard():,}; "
          f"DuckDB {shards.MEMORY_LIMIT} (shards) / {streaming.MEMORY_LIMIT} (labels, span), {streaming.THREADS} threads")
    with tempfile.TemporaryDirectory(prefix="churn-stage-") as tmp_dir:
        tmp = Path(tmp_dir)
        for target in sizes:
            n = max(1000, target // 8)
            log = tmp / f"tx-{n}.parquet"
            lines, _ = write_log(n, log)
            print(f"log: {n:,} customers, {lines:,} lines, {log.stat().st_size / 2**20:,.0f} MiB Parquet")
            runs = {}
            modes = ("stage-memory", "stage-file") if lines <= memory_max else ("stage-file",)
            for mode in modes:
                out = tmp / mode
                out.mkdir()
                runs[mode] = r = run_child(mode, log, pd.Timestamp(0), out, per_shard)
                print(f"  {mode[6:]:>6}: {r['rows']:>10,} scored {r['seconds']:8.1f} s wall {r['cpu']:8.1f} s CPU "
                      f"peak RSS {r['rss_mib']:8,.0f} MiB", flush=True)
            if len(runs) < 2:
                print(f"  (in memory not run above {memory_max:,} lines)")
            else:
                f, m = runs["stage-file"], runs["stage-memory"]
                same = all((tmp / "stage-file" / name).read_bytes() == (tmp / "stage-memory" / name).read_bytes()
                           for name in ("churn_scores.parquet", "churn.json", "churn_headline.json"))
                print(f"  at {lines:,} lines: file / memory wall {f['seconds'] / m['seconds']:.2f}, "
                      f"CPU {f['cpu'] / m['cpu']:.2f}, peak RSS {f['rss_mib'] / m['rss_mib']:.2f}; "
                      f"same output bytes: {'yes' if same else 'NO'}", flush=True)
            for p in [log, *tmp.glob("stage-*/*")]:
                p.unlink()
            for d in tmp.glob("stage-*"):
                d.rmdir()


def main(customers: int, base: int, compare: int, per_shard: int) -> None:
    print(f"rows per shard: {per_shard or shards.rows_per_shard():,}; DuckDB memory limit {shards.MEMORY_LIMIT}, "
          f"{streaming.THREADS} threads; lookback {LOOKBACK_DAYS} days")
    results = {}
    with tempfile.TemporaryDirectory(prefix="churn-scale-") as tmp_dir:
        tmp = Path(tmp_dir)
        for n in sorted({compare, base, customers}):
            log = tmp / f"tx-{n}.parquet"
            t0 = time.perf_counter()
            lines, cutoff = write_log(n, log)
            print(f"log: {n:,} customers, {lines:,} lines, {log.stat().st_size / 2**20:,.0f} MiB Parquet, "
                  f"written in {time.perf_counter() - t0:.0f} s (generator peak RSS so far {peak_rss_mib():,.0f} MiB)")
            r = run_child("shards", log, cutoff, tmp / f"shards-{n}.parquet", per_shard)
            results[n] = r
            print(f"  shard path:     {n:>12,} customers {lines:>13,} lines {r['rows']:>11,} scored "
                  f"{r['seconds']:8.1f} s   peak RSS {r['rss_mib']:8,.0f} MiB", flush=True)
            if n == compare:
                m = run_child("memory", log, cutoff, tmp / f"memory-{n}.parquet", per_shard)
                same = (tmp / f"shards-{n}.parquet").read_bytes() == (tmp / f"memory-{n}.parquet").read_bytes()
                print(f"  in-memory path: {n:>12,} customers {lines:>13,} lines {m['rows']:>11,} scored "
                      f"{m['seconds']:8.1f} s   peak RSS {m['rss_mib']:8,.0f} MiB")
                print(f"  outputs identical (bytes of the features Parquet): {'yes' if same else 'NO'}")
                print(f"  at {n:,}: shard / in-memory time {r['seconds'] / m['seconds']:.2f}, "
                      f"peak RSS {r['rss_mib'] / m['rss_mib']:.2f}")
            for p in tmp.glob(f"*-{n}.parquet"):
                p.unlink()
    if customers != base and base in results:
        big, small = results[customers], results[base]
        print(f"time ratio {customers:,} / {base:,} customers: {big['seconds'] / small['seconds']:.1f} "
              f"(linear: {customers / base:.1f})")
    gb = results[customers]["rss_mib"] / 1024
    print(f"peak RSS at {customers:,} customers: {gb:.2f} GiB; target <= {TARGET_GB} GB: "
          f"{'met' if gb * 2**30 <= TARGET_GB * 1e9 else 'NOT met'}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        mode, path, cutoff, out, per = sys.argv[2:7]
        print(json.dumps(child(mode, path, cutoff, out, int(per))))
        sys.exit(0)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=10_000_000, help="the large size (default 10M)")
    parser.add_argument("--base", type=int, default=1_000_000, help="the base size, also run in memory (1M)")
    parser.add_argument("--compare", type=int, default=500_000,
                        help="the size also run in memory, outputs compared (default 500k; 1M needs ~8 GB)")
    parser.add_argument("--per-shard", type=int, default=0, help="rows per shard (default: shards.ROWS_PER_SHARD)")
    parser.add_argument("--stage-lines", default="",
                        help="time the whole churn run, file vs memory, at about these line counts (e.g. 1e6,5e6)")
    parser.add_argument("--stage-memory-max", type=float, default=3.5e6,
                        help="--stage-lines: run in memory only up to this many lines (default 3.5M, about 4 GB)")
    args = parser.parse_args()
    if args.stage_lines:
        stage_main([int(float(x)) for x in args.stage_lines.split(",")], args.per_shard, int(args.stage_memory_max))
        sys.exit(0)
    if min(args.customers, args.base, args.compare) < 1000:
        parser.error("sizes must be >= 1000 customers")
    main(args.customers, args.base, args.compare, args.per_shard)
