"""Benchmark: what live monitoring costs while it waits: a served dashboard's check, and a watch's check.

Run: .venv/bin/python bench/live.py [n_files]. Prints medians of interleaved rounds:
- serve: one HEAD (what every open dashboard sends every 10 s) and one GET of the executive dashboard built
  from the tiny test pack with the real charting bundle, on a real loopback server, with the ETag memoised on
  (size, mtime) against hashing the file on every HEAD; the ratio is their speed-up;
- watch: one fingerprint of a raw folder of 1 file and of n_files (default 10,000) small files.
Each figure also as the share of one core it takes at the default intervals. Not a test: timings depend on
the machine.
"""

from __future__ import annotations

import http.client
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from conftest import make_pack  # noqa: E402

from datastory import dashboard  # noqa: E402
from datastory.dashboard.page import POLL  # noqa: E402
from datastory.live import serve, watch  # noqa: E402

ROUNDS = 7
PER_ROUND = 50


def timed(fn, n: int) -> float:
    """Seconds per call, over n calls."""
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n


def ask(port: int, method: str) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request(method, "/executive/dashboard.html")
    conn.getresponse().read()
    conn.close()


def bench_serve(tmp: Path) -> None:
    reports = tmp / "reports"
    (reports / "executive").mkdir(parents=True)
    page = reports / "executive" / "dashboard.html"
    page.write_text(dashboard.build(make_pack()), encoding="utf-8")
    srv = serve.bind(reports, "127.0.0.1", 0)
    serve.start(srv)
    port = srv.server_address[1]
    memo, fresh, get = [], [], []
    try:
        for _ in range(ROUNDS):   # interleaved, so a noisy neighbour hits both alike
            srv.etags = {}
            memo.append(timed(lambda: ask(port, "HEAD"), PER_ROUND))
            srv.etags = None      # no memo: the file is hashed on every HEAD
            fresh.append(timed(lambda: ask(port, "HEAD"), PER_ROUND))
            srv.etags = {}
            get.append(timed(lambda: ask(port, "GET"), PER_ROUND // 5))
    finally:
        srv.shutdown()
        srv.server_close()
    m, f, g = (statistics.median(x) for x in (memo, fresh, get))
    size = page.stat().st_size
    print(f"serve: dashboard of {size / 1e6:.2f} MB, medians of {ROUNDS} rounds")
    print(f"  HEAD, ETag memoised   {m * 1e3:7.2f} ms  (100 open dashboards every {POLL} s: "
          f"{100 * m / POLL:.2%} of a core)")
    print(f"  HEAD, hashed each time {f * 1e3:6.2f} ms  -> memo speed-up x{f / m:.1f}")
    print(f"  GET (a reload)        {g * 1e3:7.2f} ms")


def bench_watch(tmp: Path, n_files: int) -> None:
    one, many = tmp / "one", tmp / "many"
    one.mkdir()
    (one / "sales.csv").write_bytes(b"x" * 1000)
    for i in range(n_files):
        d = many / f"d{i // 500:03d}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"f{i:05d}.csv").write_bytes(b"x")
    small, big = [], []
    for _ in range(ROUNDS):
        small.append(timed(lambda: watch.fingerprint(one), 50))
        big.append(timed(lambda: watch.fingerprint(many), 1))
    s, b = statistics.median(small), statistics.median(big)
    every = watch.FILES_INTERVAL
    print(f"watch: one check (fingerprint), medians of {ROUNDS} rounds")
    print(f"  1 file          {s * 1e3:8.3f} ms  ({s / every:.4%} of a core every {every:g} s)")
    print(f"  {n_files:,} files  {b * 1e3:8.1f} ms  ({b / every:.3%} of a core every {every:g} s)")


def main() -> None:
    n_files = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    with tempfile.TemporaryDirectory() as tmp:
        bench_serve(Path(tmp))
        bench_watch(Path(tmp), n_files)


if __name__ == "__main__":
    main()
