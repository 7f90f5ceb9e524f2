"""Benchmark: ingest invoice-line logs of 1 and 10 million lines (CSV -> transactions.parquet); time and memory.

Run: .venv/bin/python bench/ingest.py [--sizes 1e6,1e7] [--repeats 3,1] [--keep DIR] [--engine stream [--no-kpis]]
                                      [--phases | --profile N | --sample | --check] [--src DIR --params DIR]
     e.g. `--sizes 1e5,1e6` for a quick run. Targets (the scale issue): peak RSS <= 3 GB at 10 million lines,
     and time(10M) <= 11 x time(1M); with --engine stream (datastory.ingest_stream) peak RSS <= 4 GB at 100
     million lines and time(100M) <= 11 x time(10M).

- Data: a seeded, vectorised (numpy + pyarrow) invoice-line log in the layout of datastory.invoicelog
  (InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country): one customer per
  40 lines (25k at 1M, 250k at 10M) with skewed purchase rates, invoices of 1-10 product lines, ~2% of
  lines on cancelled invoices ("C" prefix, negative quantity), ~3% postage lines (StockCode POST), ~1% of
  lines (guest invoices) without a customer id, ~0.02% exact duplicate lines, 11 countries, non-ASCII
  descriptions (some with commas and quotes), US-style dates (12/1/2025 8:26) over Dec 2023 - Oct 2026.
  Written (pyarrow string kernels, 1M-line chunks) to a temp folder, or to --keep DIR where a later run
  reuses it; generation is timed, not counted. Above 10M lines the log is 10M-line parts, each seeded on
  its own with its own invoice numbers and the same customers over the same dates (100M lines: about 7.5 GB).
- Timed: for each size and repeat a FRESH child process (this script with --child) in a temp project
  (a copy of params/ whose data.yaml maps the log: the invoice mapping of the README's example) runs
  datastory.ingest.run(root): read (sources.csv) + prepare + save (transactions.parquet,
  rejected.parquet, data_quality.json). Wall time is measured inside the child around run() (imports
  excluded); the table quotes the median over the repeats.
- Memory: the child's own peak resident set size at its end: VmHWM of /proc/self/status (Linux; else
  getrusage(RUSAGE_SELF).ru_maxrss, printed beside it), the maximum over the repeats. The log is generated
  in a process of its own too: ru_maxrss of a child starts from its parent's RSS at fork.
- --engine memory|stream|auto: params/data.yaml's engine for the runs (stream: datastory.ingest_stream); the
  table adds the child's CPU seconds (all threads), steadier than wall time on a shared machine.
- --check: instead of ingest, time `datastory check-data` (stages.check_data: the summary and the verdict; with
  engine stream, ingest_stream.check), and list the outputs it wrote (there must be none).
- With --engine stream, each ingest run is followed by the kpis stage on the transactions it wrote, in a fresh
  child of its own: datastory.kpis_stage.run(root), which then reads the file in batches (kpis_stage.from_file:
  KPI table, active customers, bridge and movers) and saves the four tables. Its wall time (imports excluded),
  CPU seconds and peak RSS are printed after the ingest's, and in the table (target: peak RSS <= 4 GB at 100
  million lines, as ingest's). --no-kpis skips it; --kpis-baseline also runs the stage's in-memory path
  (kpis_stage.in_memory on the whole file, another fresh child) and prints file / memory ratios of time and RSS.
- --bad-line L: instead of timing ingest, empty the InvoiceNo of line L of each log (a copy beside it) and
  print the message the run stops with, its time and peak RSS, and the outputs written (there must be none).
- --phases: the child instead times sources.read, ingest.prepare and ingest.save separately, with the
  peak RSS after each; --profile N: cProfile of prepare in the child, the top N functions by own time.
  --sample: a sampling thread charges seconds and peak RSS of prepare + save to source lines.
  --src DIR: import datastory from DIR (e.g. a patched copy of src/) in the children; --params DIR: the
  params folder to copy (default: the project's; give a snapshot matching --src).
Not a test: timings depend on the machine and on what else runs on it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import yaml

ROOT = Path(__file__).resolve().parents[1]
RSS_TARGET_MB = 3000.0       # peak RSS at 10 million lines
RATIO_TARGET = 11.0          # time(10M) / time(1M), and time(100M) / time(10M)
RSS_TARGET_100M_MB = 4000.0  # peak RSS at 100 million lines (engine: stream)
LINES_PER_CUSTOMER = 40
CANCEL_SHARE = 0.02          # invoices (so about that share of lines) that are cancellations
POSTAGE_INVOICE_SHARE = 0.17  # non-cancelled invoices with a postage line: ~3% of lines
GUEST_SHARE = 0.01           # invoices without a customer id
DUPLICATE_SHARE = 0.0002     # lines exported twice
N_PRODUCTS = 4000
PART_LINES = 10_000_000      # a larger log is written as parts of this many lines (own seed, invoice numbers)
FIRST_DAY, N_DAYS = np.datetime64("2023-12-01", "D"), 1066   # up to 2026-10-31
COUNTRIES = ["United Kingdom", "Norway", "Sweden", "Spain", "Italy", "Poland", "Czechia", "Portugal",
             "Ireland", "Germany", "Österreich"]
COUNTRY_WEIGHTS = [0.30, 0.08, 0.08, 0.09, 0.08, 0.07, 0.05, 0.06, 0.07, 0.08, 0.04]
ADJECTIVES = ["Größe 2", "rouge", "blå", "zielony", "Ørsted", "café", "naïve", "große", "pequeño", "żółty",
              "Česká", "vintage", "XL", "mini", "\"deluxe\"", "set of 3,"]
NOUNS = ["Drehmomentschlüssel", "câble d'acier", "mjukvara", "instalación", "szkolenie", "lanterne",
         "tasse à café", "Schürze", "kaffekopp", "candle holder", "Łyżka", "hrnek"]
# The invoice layout mapped through params only (the README's worked example)
INVOICE: dict[str, Any] = {
    "source": "csv", "currency": "EUR", "on_bad_rows": "fail",
    "file": {"path": "data/raw/invoices.csv", "delimiter": ",", "encoding": "utf-8", "decimal": ".",
             "thousands": ""},
    "columns": {"order_id": "InvoiceNo", "customer_id": "CustomerID", "timestamp": "InvoiceDate", "amount": "",
                "quantity": "Quantity", "unit_price": "UnitPrice", "discount": "", "region": "",
                "country": "Country", "product": "StockCode", "product_line": "", "customer_name": ""},
    "rules": {"date_format": "%m/%d/%Y %H:%M", "cancelled_prefix": "C", "non_product_codes": ["POST"],
              "segment_by": "country", "max_timestamp": "2026-11-30",
              "country_regions": {"Norway": "North", "Sweden": "North", "Spain": "South", "Italy": "South",
                                  "Poland": "East", "Czechia": "East", "Portugal": "West", "Ireland": "West"}},
}


# ---------------------------------------------------------------- the log (pure, vectorised)
def _text(values: np.ndarray) -> pa.Array:
    return pc.cast(pa.array(values), pa.string())


def _catalogue(rng: np.random.Generator) -> tuple[pa.Array, pa.Array, np.ndarray]:
    """Stock codes, descriptions and unit prices (cents) of N_PRODUCTS products (+ POST at the end)."""
    codes = [f"{20000 + i}{'ABC'[i % 7] if i % 7 < 3 else ''}" for i in range(N_PRODUCTS)] + ["POST"]
    adj = rng.integers(0, len(ADJECTIVES), N_PRODUCTS)
    noun = rng.integers(0, len(NOUNS), N_PRODUCTS)
    desc = [f"{NOUNS[n]} {ADJECTIVES[a]} {i % 97}" for i, (a, n) in enumerate(zip(adj, noun, strict=True))]
    cents = np.maximum(np.round(rng.lognormal(np.log(350), 0.9, N_PRODUCTS)), 10).astype(np.int64)
    return pa.array(codes), pa.array(_csv_quote([*desc, "POSTAGE"])), np.append(cents, 1800)


def _us_dates(minutes: np.ndarray) -> pa.Array:
    """'M/D/YYYY H:MM' (no zero padding of month, day, hour) of minutes since FIRST_DAY."""
    t = FIRST_DAY.astype("datetime64[m]") + minutes.astype("timedelta64[m]")
    day = t.astype("datetime64[D]")
    month = day.astype("datetime64[M]")
    year = month.astype("datetime64[Y]").astype(np.int64) + 1970
    m = month.astype(np.int64) % 12 + 1
    d = (day - month.astype("datetime64[D]")).astype(np.int64) + 1
    mins = (t - day.astype("datetime64[m]")).astype(np.int64)
    date = pc.binary_join_element_wise(_text(m), _text(d), _text(year), "/")
    clock = pc.binary_join_element_wise(_text(mins // 60), pc.utf8_lpad(_text(mins % 60), 2, "0"), ":")
    return pc.binary_join_element_wise(date, clock, " ")


def generate(n_lines: int, seed: int = 0, first_invoice: int = 536365) -> pa.Table:
    """An invoice-line log of exactly `n_lines` lines (see module doc); same seed, same table.

    Description holds its CSV field text (quoted when it has a comma or quote), so the writer can join
    the fields as they are.
    """
    rng = np.random.default_rng(seed)
    n_cust = max(50, n_lines // LINES_PER_CUSTOMER)
    n_inv = int(n_lines / 5.0) + 100                 # more than needed; cut at n_lines
    size = rng.integers(1, 11, n_inv)                # product lines per invoice
    cancel = rng.random(n_inv) < CANCEL_SHARE
    post = ~cancel & (rng.random(n_inv) < POSTAGE_INVOICE_SHARE)
    total = size + post
    n_inv = int(np.searchsorted(np.cumsum(total), n_lines)) + 1
    size, cancel, post, total = size[:n_inv], cancel[:n_inv], post[:n_inv], total[:n_inv]
    # invoices in time order, numbered in that order (536365, 536366, ...)
    minutes = np.sort(rng.integers(0, N_DAYS, n_inv) * 1440 + rng.integers(7 * 60, 20 * 60, n_inv))
    weight = rng.lognormal(0.0, 1.0, n_cust)
    cust = rng.choice(n_cust, n_inv, p=weight / weight.sum())
    guest = rng.random(n_inv) < GUEST_SHARE
    number = _text(np.arange(n_inv) + first_invoice)
    invoice_no = pc.if_else(pa.array(cancel), pc.binary_join_element_wise("C", number, ""), number)
    cust_id = pc.if_else(pa.array(guest), pa.scalar(None, pa.string()), pc.take(_text(np.arange(n_cust) + 12346),
                                                                             pa.array(cust)))
    country_of = np.asarray(COUNTRIES, dtype=object)[rng.choice(len(COUNTRIES), n_cust, p=COUNTRY_WEIGHTS)]
    country = pc.take(pa.array(country_of.tolist()), pa.array(cust))
    date = _us_dates(minutes)
    # lines: a few duplicated (the copy follows its original), cut at n_lines
    inv = np.repeat(np.arange(n_inv), total)
    pos = np.arange(len(inv)) - np.repeat(np.cumsum(total) - total, total)
    dup = rng.choice(len(inv), int(len(inv) * DUPLICATE_SHARE), replace=False)
    order = np.sort(np.concatenate([np.arange(len(inv)), dup]), kind="stable")[:n_lines]
    is_post = (post[inv] & (pos == size[inv]))
    codes, descs, cents = _catalogue(rng)
    # an invoice's lines are distinct products: a popular first one, then fixed steps through the catalogue
    base = rng.choice(N_PRODUCTS, n_inv, p=(w := rng.lognormal(0.0, 1.5, N_PRODUCTS)) / w.sum())
    step = rng.integers(1, 300, n_inv)
    product = np.where(is_post, N_PRODUCTS, (base[inv] + pos * step[inv]) % N_PRODUCTS)
    qty = np.minimum(rng.geometric(0.25, len(inv)), 48)
    qty = np.where(is_post, 1, np.where(cancel[inv], -qty, qty))
    price = cents[product]
    price_text = pc.binary_join_element_wise(_text(price // 100), pc.utf8_lpad(_text(price % 100), 2, "0"), ".")
    take_inv = pa.array(inv[order])
    return pa.table({
        "InvoiceNo": pc.take(invoice_no, take_inv),
        "StockCode": pc.take(codes, pa.array(product[order])),
        "Description": pc.take(descs, pa.array(product[order])),
        "Quantity": pa.array(qty[order]),
        "InvoiceDate": pc.take(date, take_inv),
        "UnitPrice": pc.take(price_text, pa.array(order)),
        "CustomerID": pc.take(cust_id, take_inv),
        "Country": pc.take(country, take_inv),
    })


def _csv_quote(values: list[str]) -> list[str]:
    """CSV fields as a spreadsheet writes them: quoted (quotes doubled) only when they hold , or "."""
    return [f'"{v.replace(chr(34), 2 * chr(34))}"' if ("," in v or '"' in v) else v for v in values]


def _csv_chunk(table: pa.Table) -> bytes:
    """The rows of `table` as CSV lines (no header); only Description can need quoting (see generate)."""
    cols = [pc.fill_null(pc.cast(table[c].combine_chunks(), pa.string()), "") for c in table.column_names]
    lines = pc.binary_join_element_wise(*cols, ",")
    lines = pc.binary_join_element_wise(lines, pa.scalar("\n"), "")
    offsets, data = lines.buffers()[1], lines.buffers()[2]
    first, last = np.frombuffer(offsets, dtype=np.int32)[[lines.offset, lines.offset + len(lines)]]
    return data.to_pybytes()[first:last]


def write_log(n_lines: int, folder: Path, seed: int = 0, chunk: int = 1_000_000) -> tuple[Path, float]:
    """Generate the log of `n_lines` lines and write it as UTF-8 CSV; (path, seconds). A log already in
    `folder` (kept by an earlier --keep run with the same seed) is reused."""
    start = time.perf_counter()
    path = folder / f"invoices_{n_lines}_seed{seed}.csv"
    if path.is_file():
        return path, 0.0
    parts = -(-n_lines // PART_LINES)
    with open(path, "wb") as fh:
        for part in range(parts):   # above PART_LINES: parts of their own seed and invoice numbers, so that
            lines = min(PART_LINES, n_lines - part * PART_LINES)   # generating stays within a few GB
            table = generate(lines, seed if parts == 1 else seed * 1000 + part, 536365 + part * PART_LINES)
            if part == 0:
                fh.write((",".join(table.column_names) + "\n").encode())
            for i in range(0, table.num_rows, chunk):
                fh.write(_csv_chunk(table.slice(i, chunk)))
            del table
    return path, time.perf_counter() - start


# ---------------------------------------------------------------- the child: one ingest, own process
def _peaks() -> dict[str, float]:
    """Peak RSS so far, MB: VmHWM of /proc/self/status (Linux) as "peak_mb", else ru_maxrss; both kept, and the
    RSS now (bench/_proc.memory)."""
    from _proc import memory

    return memory()


class Sampler:
    """A poor man's py-spy: a thread that every few ms reads this process's RSS and the line the main
    thread is on (its innermost frame inside datastory), and charges the elapsed time and the RSS to it."""

    def __init__(self, interval: float = 0.005) -> None:
        import threading

        self.interval, self.main = interval, threading.main_thread().ident
        self.lines: dict[str, list[float]] = {}     # line -> [seconds, max RSS MB]
        self.peak: tuple[float, list[str]] = (0.0, [])
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _where(self) -> list[str]:
        frame, stack = sys._current_frames().get(self.main), []
        while frame is not None:
            code = frame.f_code
            if "datastory" in code.co_filename:
                stack.append(f"{Path(code.co_filename).name}:{frame.f_lineno} {code.co_name}")
            frame = frame.f_back
        return stack

    def _loop(self) -> None:
        page = os.sysconf("SC_PAGE_SIZE") / 2**20
        last = time.perf_counter()
        while not self._stop.wait(self.interval):
            now = time.perf_counter()
            with open("/proc/self/statm") as fh:
                rss = int(fh.read().split()[1]) * page
            stack = self._where()
            key = stack[0] if stack else "(outside datastory)"
            entry = self.lines.setdefault(key, [0.0, 0.0])
            entry[0] += now - last
            entry[1] = max(entry[1], rss)
            if rss > self.peak[0]:
                self.peak = (rss, stack)
            last = now

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def report(self, top: int) -> str:
        rows = sorted(self.lines.items(), key=lambda kv: -kv[1][0])[:top]
        out = [f"{'seconds':>8} {'max RSS MB':>10}  line (innermost datastory frame)"]
        out += [f"{s:8.2f} {r:10.0f}  {k}" for k, (s, r) in rows]
        out.append(f"peak RSS {self.peak[0]:,.0f} MB at: " + " <- ".join(self.peak[1][:6]))
        return "\n".join(out)


def _cpu_s() -> float:
    from _proc import usage

    return usage()["cpu_s"]   # every thread's; wall time alone misleads on a busy machine


def kpis_child(root: Path, in_memory: bool = False) -> dict[str, Any]:
    """The kpis stage on the transactions ingest wrote at `root` (kpis_stage.run): wall time, CPU, peaks, rows.
    `in_memory`: its in-memory path instead, on the same file (kpis_stage.in_memory; nothing saved)."""
    from datastory import bridge, config, io, kpis_stage

    start = time.perf_counter()
    if in_memory:
        paths = config.paths(root)
        quantities = bridge.has_quantities(config.load("data", root))
        tables = kpis_stage.in_memory(io.read_parquet(paths.transactions), config.load("kpis", root),
                                      io.read_json(paths.data_quality)["period_end"], quantities)
    else:
        tables = kpis_stage.run(root)
    out: dict[str, Any] = {"wall_s": time.perf_counter() - start, "cpu_s": _cpu_s(), "streamed": tables.streamed,
                           "rows": {n: len(getattr(tables, n)) for n in ("kpis", "active", "bridge", "movers")}}
    out.update(_peaks())
    return out


def child(root: Path, mode: str, top: int) -> dict[str, Any]:
    """Ingest the project at `root` once; wall time, peaks and the row counts."""
    if mode in ("kpis", "kpis_memory"):
        return kpis_child(root, in_memory=mode == "kpis_memory")
    from datastory import config, ingest

    out: dict[str, Any] = {"phases": []}
    start = time.perf_counter()
    if mode == "bad":   # the log has a bad line: the message, how long it took to say it, and nothing written
        from datastory.errors import DatastoryError

        try:
            ingest.run(root)
            out["message"] = "(no error)"
        except DatastoryError as exc:
            out["message"] = str(exc)
        out["wall_s"] = time.perf_counter() - start
        out["written"] = sorted(str(p.relative_to(root)) for p in (root / "data").rglob("*")
                                if p.is_file() and "raw" not in p.parts)
        out.update(_peaks())
        return out
    if mode == "check":
        from datastory import stages

        lines, _ = stages.check_data(root)
        count = {line[:13].strip(): line[14:].split(" ")[0] for line in lines}
        quality = {"rows_read": int(count["rows read"].replace(",", "")),
                   "rows_kept": int(count["kept"].replace(",", "")), "excluded": {}, "rejected": {},
                   "duplicates_removed": int(count["duplicates"].replace(",", ""))}
        out["verdict"] = lines[-1]
        out["written"] = sorted(str(p.relative_to(root)) for p in (root / "data").rglob("*")
                                if p.is_file() and "raw" not in p.parts)
    elif mode == "run":
        quality = ingest.run(root)
    elif mode == "phases" and config.load("data", root).engine == "stream":
        from datastory import ingest_stream

        phases: list[tuple[str, float]] = []
        cfg = config.load("data", root)
        quality = ingest_stream.ingest_csv(cfg, config.paths(root), root, phases=phases)
        out["phases"] = [(name, secs, {"peak_mb": float("nan")}) for name, secs in phases]
    else:
        cfg = config.load("data", root)
        paths = config.paths(root)
        t = time.perf_counter()
        box = [ingest.read_source(cfg, paths, root)]   # prepare gets the only reference, as in ingest.run
        out["phases"].append(("read", time.perf_counter() - t, _peaks()))
        t = time.perf_counter()
        if mode == "sample":
            with Sampler() as sampler:
                result = ingest.prepare(box.pop(), cfg)
                ingest.save(result, paths)
            out["profile"] = sampler.report(top or 25)
        elif mode == "profile":
            import cProfile
            import io
            import pstats

            prof = cProfile.Profile()
            result = prof.runcall(ingest.prepare, box.pop(), cfg)
            buf = io.StringIO()
            pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(top)
            out["profile"] = buf.getvalue()
        else:
            result = ingest.prepare(box.pop(), cfg)
        out["phases"].append(("prepare" if mode != "sample" else "prep+save", time.perf_counter() - t, _peaks()))
        t = time.perf_counter()
        if mode != "sample":
            ingest.save(result, paths)
            out["phases"].append(("save", time.perf_counter() - t, _peaks()))
        quality = result.quality
    out["wall_s"] = time.perf_counter() - start
    out["cpu_s"] = _cpu_s()
    out.update(_peaks())
    out["rows_read"], out["rows_kept"] = quality["rows_read"], quality["rows_kept"]
    out["set_aside"] = {**quality["excluded"], **quality["rejected"],
                        "duplicates": quality["duplicates_removed"]}
    return out


# ---------------------------------------------------------------- the parent
def make_project(folder: Path, csv_path: Path, params: Path = ROOT / "params", engine: str = "") -> Path:
    """A temp project: a copy of `params` with data.yaml mapping the invoice log at `csv_path`, linked into the
    project's data/raw/ (a source file's path is relative to the project and stays inside it)."""
    root = folder / "project"
    if root.exists():
        shutil.rmtree(root)
    shutil.copytree(params, root / "params")
    data = yaml.safe_load((root / "params" / "data.yaml").read_text(encoding="utf-8"))
    link = root / "data" / "raw" / csv_path.name
    link.parent.mkdir(parents=True)
    link.symlink_to(csv_path.resolve())
    data = invoice_params(data, link.relative_to(root).as_posix(), engine)
    (root / "params" / "data.yaml").write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return root


def invoice_params(data: dict[str, Any], path: str, engine: str = "") -> dict[str, Any]:
    """params/data.yaml's mapping `data` reading the invoice log at `path` (relative to the project): INVOICE
    merged in, and `engine` when given."""
    out = dict(data)
    for key, value in INVOICE.items():
        out[key] = {**out.get(key, {}), **value} if isinstance(value, dict) else value
    out["file"] = {**out["file"], "path": path}
    if engine:
        out["engine"] = engine
    return out


def run_child(root: Path, mode: str, top: int, src: str) -> dict[str, Any]:
    env = {**os.environ, "DATASTORY_ROOT": str(root)}
    if src:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH", "")) if p)
    proc = subprocess.run([sys.executable, __file__, "--child", str(root), "--mode", mode, "--profile", str(top)],
                          capture_output=True, text=True, env=env, cwd=root, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"child failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def with_bad_line(path: Path, line: int) -> Path:
    """A copy of the log whose line `line` (1-based, the header is line 1) has an empty InvoiceNo (the generated
    logs have no multi-line values, so lines are records)."""
    out = path.with_name(f"{path.stem}_bad{line}.csv")
    if out.is_file():
        return out
    seen, done = 0, False        # newlines before the chunk: its first piece is line seen + 1
    with open(path, "rb") as src, open(out, "wb") as dst:
        while chunk := src.read(1 << 24):
            k = line - 1 - seen
            if not done and 1 <= k <= chunk.count(b"\n"):   # line `line` starts inside this chunk
                at = 0
                for _ in range(k):
                    at = chunk.index(b"\n", at) + 1
                rest = src.read(1 << 16) if b"," not in chunk[at:] else b""   # its first field may run over
                chunk += rest
                comma = chunk.index(b",", at)
                chunk, done = chunk[:at] + chunk[comma:], True
            seen += chunk.count(b"\n")
            dst.write(chunk)
    return out


def generate_in_child(n_lines: int, folder: Path, seed: int) -> tuple[Path, float]:
    """write_log in its own process, so that this parent stays small: on Linux a child's ru_maxrss starts
    from the RSS of the process that forked it (it survives exec), and the ingest children fork from here."""
    proc = subprocess.run([sys.executable, __file__, "--generate", str(n_lines), "--keep", str(folder),
                           "--seed", str(seed)], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"generating the log failed:\n{proc.stderr[-3000:]}")
    path, secs = json.loads(proc.stdout.strip().splitlines()[-1])
    return Path(path), secs


def _sizes(text: str) -> list[int]:
    return [int(float(s)) for s in text.split(",") if s.strip()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1e6,1e7", help="lines per log, comma-separated (default 1e6,1e7)")
    ap.add_argument("--repeats", default="", help="runs per size, comma-separated (default 3 below 5M lines, else 1)")
    ap.add_argument("--keep", default="", help="write the logs (and temp projects) here and keep them")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--phases", action="store_true", help="time read / prepare / save separately")
    ap.add_argument("--profile", type=int, default=0, metavar="N", help="cProfile prepare: top N by own time")
    ap.add_argument("--sample", action="store_true",
                    help="sample prepare + save every 5 ms: seconds and max RSS per source line of datastory")
    ap.add_argument("--src", default="", help="import datastory from this folder in the children")
    ap.add_argument("--params", default=str(ROOT / "params"), help="params folder to copy (one matching --src)")
    ap.add_argument("--engine", default="", choices=["", "memory", "stream", "auto"],
                    help="params/data.yaml engine for the runs (default: the params' own, auto)")
    ap.add_argument("--no-kpis", action="store_true",
                    help="with --engine stream: do not run the kpis stage after each ingest")
    ap.add_argument("--kpis-baseline", action="store_true",
                    help="with the kpis stage: also time its in-memory path on the same file, for ratios")
    ap.add_argument("--bad-line", type=int, default=0, metavar="L",
                    help="instead: empty the InvoiceNo of line L of each log and time the error (e.g. 73000001)")
    ap.add_argument("--check", action="store_true", help="time datastory check-data instead of ingest")
    ap.add_argument("--child", default="", help=argparse.SUPPRESS)
    ap.add_argument("--generate", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--mode", default="run", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(Path(args.child), args.mode, args.profile)))
        return
    if args.generate:
        path, secs = write_log(args.generate, Path(args.keep), args.seed)
        print(json.dumps([str(path), secs]))
        return
    sizes = _sizes(args.sizes)
    repeats = [int(r) for r in args.repeats.split(",")] if args.repeats else [3 if n < 5_000_000 else 1
                                                                              for n in sizes]
    repeats = (repeats + repeats[-1:] * len(sizes))[:len(sizes)]
    mode = ("bad" if args.bad_line else "check" if args.check else "sample" if args.sample else "profile" if args.profile else
            "phases" if args.phases else "run")
    tmp = None if args.keep else tempfile.TemporaryDirectory(prefix="bench_ingest_")
    folder = Path(args.keep or tmp.name).resolve()  # type: ignore[union-attr]
    folder.mkdir(parents=True, exist_ok=True)
    print(f"bench/ingest.py: sizes {sizes}, repeats {repeats}, mode {mode}, engine {args.engine or 'params'}, "
          f"folder {folder}"
          + (f", datastory from {args.src}" if args.src else ""))
    rows = []
    cpu: dict[int, float] = {}
    kpis_rows: dict[int, tuple[float, float, float]] = {}   # lines -> (median wall s, median CPU s, max peak MB)
    base_rows: dict[int, tuple[float, float, float]] = {}   # the same, of the in-memory path (--kpis-baseline)
    with_kpis = mode == "run" and args.engine == "stream" and not args.no_kpis
    try:
        for n, rep in zip(sizes, repeats, strict=True):
            path, gen_s = generate_in_child(n, folder, args.seed)
            mb = path.stat().st_size / 1e6
            print(f"  generated {n:,} lines, {mb:,.0f} MB in {gen_s:.1f} s (not counted)" if gen_s else
                  f"  reusing {path.name}, {mb:,.0f} MB")
            if args.bad_line:
                bad = with_bad_line(path, args.bad_line)
                res = run_child(make_project(folder, bad, Path(args.params), args.engine), mode, 0, args.src)
                print(f"  {n:>12,} bad line {args.bad_line:,}: {res['wall_s']:.1f} s, peak RSS {res['peak_mb']:.0f} MB,"
                      f" outputs written: {res['written'] or 'none'}\n    {res['message']}")
                if not args.keep:
                    bad.unlink()
                continue
            runs, kruns, bruns = [], [], []
            for i in range(rep):
                project = make_project(folder, path, Path(args.params), args.engine)
                res = run_child(project, mode, args.profile, args.src)
                runs.append(res)
                print(f"  {n:>12,} run {i + 1}/{rep}: {res['wall_s']:7.2f} s (CPU {res['cpu_s']:.0f} s), "
                      f"peak RSS {res['peak_mb']:7.0f} MB"
                      f" (ru_maxrss {res['ru_maxrss_mb']:.0f} MB); read {res['rows_read']:,},"
                      f" kept {res['rows_kept']:,}, set aside {res['set_aside']}")
                if with_kpis:
                    kres = run_child(project, "kpis", 0, args.src)
                    kruns.append(kres)
                    print(f"  {'':>12} kpis {i + 1}/{rep}: {kres['wall_s']:7.2f} s (CPU {kres['cpu_s']:.0f} s), "
                          f"peak RSS {kres['peak_mb']:7.0f} MB (ru_maxrss {kres['ru_maxrss_mb']:.0f} MB); "
                          f"{'from the file in batches' if kres['streamed'] else 'IN MEMORY'}, rows {kres['rows']}")
                    if args.kpis_baseline:
                        bres = run_child(project, "kpis_memory", 0, args.src)
                        bruns.append(bres)
                        print(f"  {'':>12} in memory {i + 1}/{rep}: {bres['wall_s']:7.2f} s (CPU {bres['cpu_s']:.0f} s), "
                              f"peak RSS {bres['peak_mb']:7.0f} MB")
                for name, secs, peaks in res["phases"]:
                    print(f"      {name:<8} {secs:7.2f} s   peak RSS so far {peaks['peak_mb']:7.0f} MB,"
                          f" RSS now {peaks.get('VmRSS_mb', float('nan')):7.0f} MB")
                if "verdict" in res:
                    print(f"      {res['verdict']}; outputs written: {res['written'] or 'none'}")
                if res.get("profile"):
                    print(res["profile"])
            wall = statistics.median(r["wall_s"] for r in runs)
            rows.append((n, mb, wall, max(r["peak_mb"] for r in runs), rep))
            cpu[n] = statistics.median(r["cpu_s"] for r in runs)
            for got, into in ((kruns, kpis_rows), (bruns, base_rows)):
                if got:
                    into[n] = (statistics.median(r["wall_s"] for r in got), statistics.median(r["cpu_s"] for r in got),
                               max(r["peak_mb"] for r in got))
            if not args.keep:
                path.unlink()
    finally:
        if tmp is not None:
            tmp.cleanup()
    print()
    print(f"{'lines':>12} {'file MB':>8} {'runs':>4} {'wall s (median)':>16} {'CPU s':>8} {'peak RSS MB':>12} "
          f"{'lines/s':>11}")
    for n, mb, wall, rss, rep in rows:
        print(f"{n:>12,} {mb:>8,.0f} {rep:>4} {wall:>16.2f} {cpu[n]:>8.0f} {rss:>12,.0f} {n / wall:>11,.0f}")
    if len(cpu) >= 2:
        (n0, c0), (n1, c1) = list(cpu.items())[0], list(cpu.items())[-1]
        print(f"CPU({n1:,})/CPU({n0:,}) = {c1 / c0:.2f} for {n1 / n0:g} x the lines (CPU seconds, all threads: "
              "steadier than wall time when others share the machine)")
    print("peak RSS: the child's VmHWM (/proc/self/status; ru_maxrss where there is no /proc), max over its runs;"
          f"\nwall: inside the child, {'stages.check_data' if mode == 'check' else 'ingest.run (read + prepare + save)'}"
          ", imports excluded; median over its runs")
    walls = {n: wall for n, _, wall, _, _ in rows}
    rss = {n: r for n, _, _, r, _ in rows}
    for small, large, rss_target in ((1_000_000, 10_000_000, RSS_TARGET_MB),
                                     (10_000_000, 100_000_000, RSS_TARGET_100M_MB)):
        if small in walls and large in walls:
            ratio = walls[large] / walls[small]
            print(f"time({large // 1_000_000}M)/time({small // 1_000_000}M) = {ratio:.2f}  target <= "
                  f"{RATIO_TARGET:g}: {'PASS' if ratio <= RATIO_TARGET else 'MISS'}")
            print(f"peak RSS at {large // 1_000_000}M = {rss[large]:,.0f} MB  target <= {rss_target:,.0f} MB: "
                  f"{'PASS' if rss[large] <= rss_target else 'MISS'}")
    if len(rows) >= 2 and not ({1_000_000, 10_000_000} <= walls.keys()) \
            and not ({10_000_000, 100_000_000} <= walls.keys()):
        (n0, _, w0, _, _), (n1, _, w1, _, _) = rows[0], rows[-1]
        print(f"time({n1:,})/time({n0:,}) = {w1 / w0:.2f} for {n1 / n0:g} x the lines "
              "(targets apply to 1M and 10M only)")
    if kpis_rows:
        print_kpis(kpis_rows, walls, base_rows)


def print_kpis(kpis_rows: dict[int, tuple[float, float, float]], ingest_walls: dict[int, float],
               base_rows: dict[int, tuple[float, float, float]]) -> None:
    """The kpis stage after stream ingest, per size: wall, CPU, peak RSS, its time over ingest's (same run)."""
    print()
    print("kpis stage (kpis_stage.run: KPI table, active customers, bridge, movers from the file in batches)")
    print(f"{'lines':>12} {'wall s (median)':>16} {'CPU s':>8} {'peak RSS MB':>12} {'lines/s':>11} "
          f"{'kpis/ingest time':>17}")
    for n, (wall, cpu_s, rss) in kpis_rows.items():
        print(f"{n:>12,} {wall:>16.2f} {cpu_s:>8.0f} {rss:>12,.0f} {n / wall:>11,.0f} "
              f"{wall / ingest_walls[n]:>17.2f}")
    for n, (wall, _, rss) in base_rows.items():
        fw, _, frss = kpis_rows[n]
        print(f"{n:>12,} in memory: {wall:.2f} s, peak RSS {rss:,.0f} MB; file / memory: time {fw / wall:.2f}, "
              f"peak RSS {frss / rss:.2f}")
    if 100_000_000 in kpis_rows:
        rss = kpis_rows[100_000_000][2]
        print(f"kpis peak RSS at 100M = {rss:,.0f} MB  target <= {RSS_TARGET_100M_MB:,.0f} MB: "
              f"{'PASS' if rss <= RSS_TARGET_100M_MB else 'MISS'}")
    if len(kpis_rows) >= 2:
        (n0, (w0, _, _)), (n1, (w1, _, _)) = list(kpis_rows.items())[0], list(kpis_rows.items())[-1]
        print(f"kpis time({n1:,})/time({n0:,}) = {w1 / w0:.2f} for {n1 / n0:g} x the lines")


if __name__ == "__main__":
    main()
