"""Benchmark: the kpis stage from the transactions file (kpis_stage.from_file) at sizes ingest takes long to reach.

Run: .venv/bin/python bench/kpis_stream.py [--sizes 1e7,1e8] [--period M] [--keep DIR] [--baseline] [--customers C]
     [--line-customers] [--repeats R]

- Data: a transactions file (schema.TRANSACTIONS, in time order, 1M-line row groups, as ingest writes it)
  generated directly, without a CSV or ingest: 36 months of lines, one customer per 40 lines (2.5M at 100M;
  --customers C: C at every size, to see what the growing customer base costs)
  buying at skewed rates, orders of 5 lines (an order is one customer's, as in bench/ingest.py's logs;
  --line-customers: a customer drawn for each line, which no real log does, the hardest case for counting
  distinct customers), 4 regions, 3 product lines, 2% return lines. Written in
  1M-line chunks by a child process of its own; generation is timed, not counted. bench/ingest.py times the
  stage after a real (stream) ingest, at the sizes that one can reach in a sitting.
- Timed: per size, a FRESH child process runs kpis_stage.from_file on it (KPI table, active customers, bridge,
  movers; 1M lines per batch); wall time inside the child (imports excluded), CPU seconds (all threads) and
  its peak RSS (VmHWM). --repeats R: R children per size, the median wall time and CPU seconds and the largest
  peak RSS (a 10M run takes seconds, so one slow start moves the ratio). --baseline also runs kpis_stage.in_memory in another child (it holds the whole file:
  about 1 GB per million lines) and prints file / memory ratios of time and RSS.
Targets (the scale issue): peak RSS <= 4 GB at 100 million lines; time linear in the lines, time(100M) <=
11 x time(10M) (printed for the first and last size: wall time and CPU seconds).
Not a test: timings depend on the machine and on what else runs on it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _proc import run_child, usage  # noqa: E402  (bench/ is not a package)

RSS_TARGET_MB = 4000.0
LINEAR_SLACK = 1.1      # time(k x the lines) <= 1.1 x k x time(the lines): 11 x from 10M to 100M
CHUNK = 1_000_000
LINES_PER_CUSTOMER, LINES_PER_ORDER, RETURN_SHARE = 40, 5, 0.02
START, MONTHS = np.datetime64("2023-10-01T00:00:00", "ns"), 36
REGIONS = np.array(["North", "South", "East", "West"])
LINES = np.array(["Hardware", "Software", "Services"])


def generate(n: int, path: Path, seed: int = 0, customers: int = 0, per_line: bool = False) -> float:
    """Write the transactions file of `n` lines to `path` (`customers` of them; 0: one per LINES_PER_CUSTOMER
    lines; `per_line`: a customer per line rather than per order); seconds taken."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    from datastory import schema

    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    n_cust = customers or max(50, n // LINES_PER_CUSTOMER)
    weight = rng.lognormal(0.0, 1.0, n_cust)
    weight /= weight.sum()
    span = (START + np.timedelta64(MONTHS * 30 + 15, "D") - START).astype("int64")   # ends mid-month
    writer = None
    for first in range(0, n, CHUNK):
        k = min(CHUNK, n - first)
        pos = np.arange(first, first + k)
        ts = START + (pos * (span // n)).astype("timedelta64[ns]")
        if per_line:
            cust = rng.choice(n_cust, k, p=weight)
        else:   # an order's lines are one customer's (CHUNK is a multiple of LINES_PER_ORDER: no order straddles two)
            cust = rng.choice(n_cust, -(-k // LINES_PER_ORDER), p=weight)[(pos - first) // LINES_PER_ORDER]
        qty = rng.integers(1, 11, k).astype("float64")
        amount = np.round(qty * rng.lognormal(3.5, 0.8, k), 2)
        back = rng.random(k) < RETURN_SHARE
        amount, qty = np.where(back, -amount, amount), np.where(back, -qty, qty)
        ids = pd.Series(np.char.add("C", cust.astype(str)), dtype="string[pyarrow]")
        frame = pd.DataFrame({
            "order_id": pd.Series(np.char.add("O", (pos // LINES_PER_ORDER).astype(str)), dtype="string[pyarrow]"),
            "customer_id": ids, "customer_name": ids, "timestamp": ts,
            "region": pd.Series(REGIONS[cust % len(REGIONS)], dtype="string[pyarrow]"),
            "product_line": pd.Series(LINES[rng.integers(0, len(LINES), k)], dtype="string[pyarrow]"),
            "quantity": qty, "amount": amount, "discount": 0.0, "is_return": amount < 0})
        table = pa.Table.from_pandas(schema.conform(frame, schema.TRANSACTIONS, "transactions", copy=False),
                                     preserve_index=False)
        if writer is None:
            writer = pq.ParquetWriter(path, table.schema, compression="zstd")
        writer.write_table(table, row_group_size=CHUNK)
    if writer is not None:
        writer.close()
    return time.perf_counter() - t0


def child(path: Path, period: str, in_memory: bool) -> dict[str, Any]:
    from datastory import config, io, kpis_stage

    cfg = config.KpisParams(period=period)
    end = str((START + np.timedelta64(MONTHS * 30 + 15, "D")).astype("datetime64[D]"))
    start = time.perf_counter()
    if in_memory:
        tables = kpis_stage.in_memory(io.read_parquet(path), cfg, end, True)
    else:
        tables = kpis_stage.from_file(path, cfg, end, True)
    wall = time.perf_counter() - start
    return {"wall_s": wall, **usage(),
            "rows": {n: len(getattr(tables, n)) for n in ("kpis", "active", "bridge", "movers")}}


def run(*args: str) -> Any:
    return run_child(__file__, *args)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1e7", help="lines, comma-separated (default 1e7)")
    ap.add_argument("--period", default="M", choices=["M", "Q"])
    ap.add_argument("--keep", default="", help="write the files here and reuse them")
    ap.add_argument("--customers", type=int, default=0,
                    help="the same customer base at every size (default: one customer per 40 lines)")
    ap.add_argument("--repeats", type=int, default=1, help="runs per size: medians (default 1)")
    ap.add_argument("--line-customers", action="store_true",
                    help="a customer drawn for each line, not each order (the hardest case; no real log)")
    ap.add_argument("--baseline", action="store_true", help="also run the in-memory path (needs the RAM)")
    ap.add_argument("--child", default="", help=argparse.SUPPRESS)
    ap.add_argument("--memory", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--generate", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.generate:
        print(json.dumps(generate(args.generate, Path(args.child), customers=args.customers,
                                  per_line=args.line_customers)))
        return
    if args.child:
        print(json.dumps(child(Path(args.child), args.period, args.memory)))
        return
    tmp = None if args.keep else tempfile.TemporaryDirectory(prefix="bench_kpis_")
    folder = Path(args.keep or tmp.name).resolve()  # type: ignore[union-attr]
    folder.mkdir(parents=True, exist_ok=True)
    who = f"{args.customers:,} customers" if args.customers else f"a customer per {LINES_PER_CUSTOMER} lines"
    who += ", a customer drawn per line" if args.line_customers else ", a customer per order"
    print(f"bench/kpis_stream.py: sizes {args.sizes}, period {args.period}, {who}, folder {folder}")
    rows = []
    try:
        for n in (int(float(s)) for s in args.sizes.split(",") if s.strip()):
            path = folder / f"transactions_{n}{f'_{args.customers}c' if args.customers else ''}" \
                f"{'_per_line' if args.line_customers else ''}.parquet"
            if path.is_file():
                print(f"  reusing {path.name}, {path.stat().st_size / 1e6:,.0f} MB")
            else:
                secs = run("--generate", str(n), "--child", str(path), "--customers", str(args.customers),
                           *(["--line-customers"] if args.line_customers else []))
                print(f"  generated {n:,} lines, {path.stat().st_size / 1e6:,.0f} MB in {secs:.1f} s (not counted)")
            runs = [run("--child", str(path), "--period", args.period) for _ in range(args.repeats)]
            res = {**runs[0], "wall_s": statistics.median(r["wall_s"] for r in runs),
                   "cpu_s": statistics.median(r["cpu_s"] for r in runs), "peak_mb": max(r["peak_mb"] for r in runs)}
            if args.repeats > 1:
                print(f"  {n:>12,} runs: " + ", ".join(f"{r['wall_s']:.2f} s" for r in runs) + " (median below)")
            print(f"  {n:>12,} from the file: {res['wall_s']:7.2f} s (CPU {res['cpu_s']:.0f} s), "
                  f"peak RSS {res['peak_mb']:7.0f} MB; rows {res['rows']}")
            base = run("--child", str(path), "--period", args.period, "--memory") if args.baseline else None
            if base:
                print(f"  {n:>12,} in memory:     {base['wall_s']:7.2f} s (CPU {base['cpu_s']:.0f} s), "
                      f"peak RSS {base['peak_mb']:7.0f} MB; file / memory: time {res['wall_s'] / base['wall_s']:.2f},"
                      f" peak RSS {res['peak_mb'] / base['peak_mb']:.2f}")
            rows.append((n, res))
    finally:
        if tmp is not None:
            tmp.cleanup()
    print()
    print(f"{'lines':>12} {'wall s':>8} {'CPU s':>8} {'peak RSS MB':>12} {'lines/s':>11}")
    for n, res in rows:
        print(f"{n:>12,} {res['wall_s']:>8.2f} {res['cpu_s']:>8.0f} {res['peak_mb']:>12,.0f} {n / res['wall_s']:>11,.0f}")
    for n, res in rows:
        if n == 100_000_000:
            print(f"peak RSS at 100M = {res['peak_mb']:,.0f} MB  target <= {RSS_TARGET_MB:,.0f} MB: "
                  f"{'PASS' if res['peak_mb'] <= RSS_TARGET_MB else 'MISS'}")
    if len(rows) >= 2:
        (n0, r0), (n1, r1) = rows[0], rows[-1]
        limit = LINEAR_SLACK * n1 / n0
        for what, key in (("time", "wall_s"), ("CPU", "cpu_s")):
            ratio = r1[key] / r0[key]
            print(f"{what}({n1:,})/{what}({n0:,}) = {ratio:.2f} for {n1 / n0:g} x the lines; target <= {limit:g}: "
                  f"{'PASS' if ratio <= limit else 'MISS'}")


if __name__ == "__main__":
    main()
