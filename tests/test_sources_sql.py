"""SQL source: a real SQLite file and a real PostgreSQL server, read by datastory.sources.sql.

SQLite databases are written with the sqlite3 module into tmp_path. PostgreSQL comes from the session
fixture `pg`: the server in DATASTORY_TEST_PG_URL (a URL without password) with the password in
DATASTORY_TEST_PG_PASSWORD, else a throwaway server started with Debian's initdb/pg_ctl (PATH, then
/usr/lib/postgresql/<version>/bin), else the PostgreSQL tests are skipped (set DATASTORY_TEST_PG_REQUIRE=1
to make that an error instead, e.g. in CI).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import re
import shutil
import socket
import sqlite3
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import yaml
from pydantic import ValidationError

from datastory import cli, config, ingest
from datastory.config import ColumnsParams, DataParams, RulesParams, SqlParams
from datastory.errors import DataError, ParamsError
from datastory.sources import sql, sqlcheck

TABLE = "invoice_lines"
COLUMNS = ["InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID",
           "Country"]
SQLITE_DDL = (f"CREATE TABLE {TABLE} (InvoiceNo TEXT NOT NULL, StockCode TEXT, Description TEXT, "
              "Quantity INTEGER, InvoiceDate TEXT, UnitPrice REAL, CustomerID INTEGER NULL, Country TEXT)")
ROWS = [
    ("536365", "85123A", "WHITE HANGING HEART T-LIGHT HOLDER", 6, "2025-03-31 14:05:00", 2.55, 17850, "Norway"),
    ("536365", "71053", "Crème brûlée dish — ☕ 日本", 6, "2025-03-31 14:05:00", 3.39, 17850, "Norway"),
    ("536365", "71053", "Crème brûlée dish — ☕ 日本", 6, "2025-03-31 14:05:00", 3.39, 17850, "Norway"),  # dup
    ("536366", "22633", "Hand warmer Ølstue", 2, "2025-04-02 09:15:00", 1.85, 13047, "Spain"),
    ("C536379", "22556", "Zürich plasters", -1, "2025-04-05 10:00:00", 4.25, 14527, "Poland"),  # a return
    ("536380", "POST", "Postage", 1, "2025-04-06 11:00:00", 18.0, 12583, "Portugal"),  # excluded: code
    ("536381", "21730", "Glass star frosted", 3, "2025-04-07 12:30:00", 4.25, None, "Ireland"),  # excluded
    ("536382", "22752", "Set of 7 babushka boxes", 2, "31/04/2025 10:00", 7.65, 13047, "Spain"),  # bad date
    ("536383", "84879", "Assorted colour bird ornament", 32, "2025-05-01 08:45:00", 1.69, 15100, "Germany"),
]
MAPPING = {"order_id": "InvoiceNo", "customer_id": "CustomerID", "timestamp": "InvoiceDate", "amount": "",
           "quantity": "Quantity", "unit_price": "UnitPrice", "discount": "", "region": "", "country": "Country",
           "product": "StockCode", "product_line": "", "customer_name": ""}
RULES = {"date_format": "%Y-%m-%d %H:%M:%S", "cancelled_prefix": "C", "non_product_codes": ["POST"],
         "segment_by": "country", "country_regions": {"Norway": "North", "Spain": "South", "Poland": "East",
                                                      "Portugal": "West", "Ireland": "West"},
         "max_timestamp": "2026-01-01"}
NOW = pd.Timestamp("2026-01-01")
SECRET = "Tr0ub4dor&3 s@lt:/%?#x"   # URL-hostile on purpose: it must never be spliced into a URL string
PW_ENV = "SHOP_DB_PASSWORD"


def params(url: str, table: str = TABLE, query: str = "", on_bad_rows: str = "quarantine",
           **columns: str) -> DataParams:
    return DataParams(source="sql", on_bad_rows=on_bad_rows,
                      sql=SqlParams(url=url, table=table if not query else "", query=query, password_env=PW_ENV),
                      columns=ColumnsParams(**{**MAPPING, **columns}), rules=RulesParams(**RULES))


def make_sqlite(path: Path, rows: list[tuple] = ROWS) -> Path:
    """A real database file holding the invoice table (and one other table, for messages)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(path)
    with con:
        con.execute(SQLITE_DDL)
        con.executemany(f"INSERT INTO {TABLE} VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
        con.execute("CREATE TABLE customers (CustomerID INTEGER PRIMARY KEY, Name TEXT)")
    con.close()
    return path


def write_params(project: Path, cfg: DataParams) -> None:
    (project / "params" / "data.yaml").write_text(
        yaml.safe_dump(cfg.model_dump(mode="json"), allow_unicode=True, sort_keys=False), encoding="utf-8")


def fails(cfg: DataParams, root: Path, *needles: str) -> DataError:
    """The DataError of reading `cfg`; it names the source and gives a fix; `needles` are in its text."""
    with pytest.raises(DataError) as info:
        sql.read(cfg, root)
    err = info.value
    assert err.file and err.fix, str(err)
    text = str(err)
    for needle in needles:
        assert needle in text, text
    return err


def files_of(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.fixture(autouse=True)
def _no_ambient_settings(monkeypatch):
    monkeypatch.delenv("DATASTORY_ROOT", raising=False)
    monkeypatch.setenv(PW_ENV, "placeholder")   # recorded, so a value set later (.env) is undone
    monkeypatch.delenv(PW_ENV)


@pytest.fixture
def shop(project: Path) -> Path:
    """The project's data/raw/shop.db."""
    return make_sqlite(project / "data" / "raw" / "shop.db")


@pytest.fixture
def parser_fooled(monkeypatch):
    """The parse-time check lets everything through, as if a query had fooled it: only the session is left."""
    monkeypatch.setattr(sqlcheck, "check", lambda query, dialect=None: None)


# ---------------------------------------------------------------- SQLite: reading
def test_reads_table_mapped_and_renamed_with_native_values(project, shop):
    raw = sql.read(params("sqlite:///data/raw/shop.db"), project)
    cfg = params("sqlite:///data/raw/shop.db")
    assert list(raw.frame.columns) == list(cfg.columns.mapped())
    assert len(raw.frame) == len(ROWS) and isinstance(raw.frame.index, pd.RangeIndex)
    assert raw.frame["order_id"].tolist() == [r[0] for r in ROWS]
    assert raw.frame["quantity"].tolist() == [r[3] for r in ROWS]
    assert raw.frame["unit_price"].tolist() == [r[5] for r in ROWS]
    assert raw.frame["timestamp"][0] == "2025-03-31 14:05:00"
    assert raw.frame["customer_id"].isna().tolist() == [r[6] is None for r in ROWS]
    assert raw.name == f"{Path('data/raw/shop.db')} (table '{TABLE}')"
    assert raw.first_row == 1 and raw.row(0) == 1
    assert raw.column("customer_id") == "CustomerID" and raw.source_columns == cfg.columns.mapped()


def test_reads_query_in_the_order_the_database_returns(project, shop):
    query = (f"SELECT l.*, c.Name FROM {TABLE} AS l LEFT JOIN customers AS c USING (CustomerID) "
             "WHERE l.Country <> 'Germany' ORDER BY l.InvoiceDate DESC, l.rowid")
    raw = sql.read(params("sqlite:///data/raw/shop.db", query=query), project)
    expected = sorted((r for r in ROWS if r[7] != "Germany"), key=lambda r: r[4], reverse=True)
    assert raw.frame["order_id"].tolist() == [r[0] for r in expected]
    assert raw.frame["product"].tolist() == [r[1] for r in expected]
    assert "the query" in raw.name and "data/raw/shop.db" in raw.name.replace(os.sep, "/")


def test_non_ascii_text_survives(project, shop):
    cfg = params("sqlite:///data/raw/shop.db", product="Description")
    raw = sql.read(cfg, project)
    assert raw.frame["product"][1] == "Crème brûlée dish — ☕ 日本"
    assert raw.frame["product"][3] == "Hand warmer Ølstue"


def test_round_trip_into_prepare_counts_every_row(project, shop):
    cfg = params("sqlite:///data/raw/shop.db")
    out = ingest.prepare(sql.read(cfg, project), cfg, now=NOW)
    q = out.quality
    excluded, rejected = sum(q["excluded"].values()), sum(q["rejected"].values())
    assert q["rows_read"] == len(ROWS)
    assert q["rows_read"] == q["rows_kept"] + q["duplicates_removed"] + excluded + rejected
    assert (q["rows_kept"], q["duplicates_removed"], excluded, rejected) == (5, 1, 2, 1)
    assert q["excluded"] == {"no customer id": 1, "non-product line": 1}
    assert list(q["rejected"]) == ["timestamp is not the column's format (%Y-%m-%d %H:%M:%S)"]
    assert q["source"] == "sql" and q["cancelled_lines"] == 1 and q["return_lines"] == 1
    assert len(out.rejected) == 4 and sorted(out.rejected["row"]) == [3, 6, 7, 8]
    tx = out.tx
    assert set(tx["customer_id"]) == {"17850", "13047", "14527", "15100"}   # not "17850.0"
    assert set(tx["region"]) == {"North", "South", "East", ingest.OTHER}   # Germany is not in country_regions
    assert q["unmapped_countries"] == {"Germany": 1}
    ret = tx[tx["order_id"] == "C536379"].iloc[0]
    assert ret["amount"] == pytest.approx(-4.25) and ret["quantity"] == -1 and ret["is_return"]
    assert tx["amount"].sum() == pytest.approx(6 * 2.55 + 6 * 3.39 + 2 * 1.85 - 4.25 + 32 * 1.69)


def test_set_aside_rows_show_integral_ids_as_written(project, shop):
    cfg = params("sqlite:///data/raw/shop.db")
    rejected = ingest.prepare(sql.read(cfg, project), cfg, now=NOW).rejected
    assert rejected["CustomerID"].tolist()[:1] == ["17850"]    # the duplicate of row 2


def test_relative_url_is_resolved_against_the_project_not_the_cwd(project, shop, tmp_path_factory, monkeypatch):
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    make_sqlite(elsewhere / "data" / "raw" / "shop.db", ROWS[:1])   # a decoy with one row
    monkeypatch.chdir(elsewhere)
    raw = sql.read(params("sqlite:///data/raw/shop.db"), project)
    assert len(raw.frame) == len(ROWS)
    absolute = sql.read(params(f"sqlite:///{shop}"), elsewhere)
    assert len(absolute.frame) == len(ROWS)


def test_database_is_opened_read_only(project, shop, monkeypatch):
    folder = shop.parent
    before = files_of(folder)
    sql.read(params("sqlite:///data/raw/shop.db"), project)
    sql.read(params("sqlite:///data/raw/shop.db", query=f"SELECT * FROM {TABLE}"), project)
    assert files_of(folder) == before   # same bytes, same mtime, no -journal/-wal/-shm left
    # a writing query is refused by the parser, and by the read-only connection when the parser is fooled
    with pytest.raises(ValidationError, match="DELETE is not allowed"):
        params("sqlite:///data/raw/shop.db", query=f"DELETE FROM {TABLE} RETURNING *")
    monkeypatch.setattr(sqlcheck, "check", lambda query, dialect=None: None)
    err = fails(params("sqlite:///data/raw/shop.db", query=f"DELETE FROM {TABLE} RETURNING *"), project,
                "data/raw/shop.db".replace("/", os.sep), "readonly")
    assert "read" in err.problem
    assert files_of(folder) == before


def test_url_with_characters_special_in_sqlite_uris(tmp_path):
    """A folder named with '#', '?', '%' and a space is still the folder (SQLite URIs give them meaning)."""
    root = tmp_path / "shop #1 ?x=%41"
    db = make_sqlite(root / "data" / "shop.db")
    before = files_of(db.parent)
    listing = sorted(p.name for p in tmp_path.rglob("*"))
    raw = sql.read(params("sqlite:///data/shop.db"), root)
    assert len(raw.frame) == len(ROWS)
    assert files_of(db.parent) == before
    assert sorted(p.name for p in tmp_path.rglob("*")) == listing   # no stray empty database elsewhere


# ---------------------------------------------------------------- SQLite: errors
def test_missing_database_file_is_an_error_and_is_not_created(project):
    fails(params("sqlite:///data/raw/shop.db"), project, "not found", "data/raw/shop.db".replace("/", os.sep),
          "sql.url")
    assert not (project / "data" / "raw" / "shop.db").exists()
    assert not (project / "data").exists()


def test_sqlite_url_without_a_file_is_refused(project):
    for url in ("sqlite://", "sqlite:///:memory:"):
        err = fails(params(url), project, "names no database file", "sqlite:///data/raw/shop.db")
        assert err.column == "sql.url"


def test_missing_table_lists_the_tables(project, shop):
    err = fails(params("sqlite:///data/raw/shop.db", table="invoices"), project,
                "'invoices' does not exist", f"tables: customers, {TABLE}", "sql.table")
    assert "shop.db" in err.file


def test_failing_query_names_the_source_and_the_database_message(project, shop):
    # a syntax error is found by the parser, before anything is sent; params/data.yaml is the place to fix it
    with pytest.raises(ValidationError, match=r"syntax error \(sqlite SQL, line 1, column 12, at 'FROM'\)"):
        params("sqlite:///data/raw/shop.db", query=f"SELEC * FROM {TABLE}")
    err = fails(params("sqlite:///data/raw/shop.db", query="SELECT * FROM invoices"), project,
                "no such table: invoices", "sql.table (or the query)")
    assert "shop.db" in err.file


def test_failing_sqlite_query_points_at_the_query(project, shop):
    err = fails(params("sqlite:///data/raw/shop.db", query=f"SELECT NoSuchColumn FROM {TABLE}"), project,
                "no such column: NoSuchColumn")
    assert "sql.query" in err.fix and "server" not in err.fix


@pytest.mark.parametrize("mode", ["table", "query"])
def test_mapped_column_absent_names_column_and_what_was_found(project, shop, mode):
    if mode == "table":   # a mapping that does not match the table's column name
        cfg = params("sqlite:///data/raw/shop.db", product="Stockcode")
        missing, fieldname = "Stockcode", "product"
    else:                 # a query that does not select a mapped column
        cfg = params("sqlite:///data/raw/shop.db", query=f"SELECT InvoiceNo, Quantity, InvoiceDate, UnitPrice, "
                     f"Country FROM {TABLE}")
        missing, fieldname = "CustomerID", "customer_id"
    err = fails(cfg, project, f"'{missing}' (mapped to {fieldname}) is not in", "'InvoiceNo'", "'UnitPrice'",
                f"columns.{fieldname}")
    assert err.column == missing and "shop.db" in err.file
    assert (mode == "table") == ("'StockCode'" in str(err))


def test_a_file_that_is_not_a_database_is_an_error(project):
    path = project / "data" / "raw" / "shop.db"
    path.parent.mkdir(parents=True)
    path.write_text("InvoiceNo,StockCode\n536365,85123A\n", encoding="utf-8")
    before = files_of(path.parent)
    err = fails(params("sqlite:///data/raw/shop.db"), project, "not a database")
    assert "shop.db" in err.file
    assert files_of(path.parent) == before


def test_empty_table_is_an_error(project):
    make_sqlite(project / "data" / "raw" / "shop.db", [])
    fails(params("sqlite:///data/raw/shop.db"), project, "no data rows")


def test_connection_refused_names_host_and_fix(project, monkeypatch):
    port = free_port()   # nothing listens there
    monkeypatch.setenv(PW_ENV, SECRET)
    err = fails(params(f"postgresql+psycopg://shop@127.0.0.1:{port}/sales"), project,
                "cannot connect", f"127.0.0.1:{port}", "host, port")
    assert SECRET not in str(err)


@pytest.mark.parametrize(("url", "needle"), [("nosuchdb://user@host/db", "unknown database kind"),
                                             ("mysql+nosuchdriver://user@host/db", "unknown database kind"),
                                             ("oracle+cx_oracle://user@host/db", "driver is not installed")])
def test_unknown_dialect_or_missing_driver_is_a_clear_error(project, url, needle):
    fails(params(url), project, needle, "sql.url" if "unknown" in needle else "pip install")


def test_wal_database_read_leaves_no_files(project):
    db = make_sqlite(project / "data" / "raw" / "shop.db")
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA journal_mode=WAL").fetchone() == ("wal",)
    con.close()
    before = files_of(db.parent)
    assert sorted(before) == ["shop.db"]
    assert len(sql.read(params("sqlite:///data/raw/shop.db"), project).frame) == len(ROWS)
    assert files_of(db.parent) == before


# ---------------------------------------------------------------- through the CLI and ingest.run
def test_check_data_prints_a_summary_for_a_sqlite_source(project, shop, capsys):
    write_params(project, params("sqlite:///data/raw/shop.db"))
    # the table reads, but five lines over a month cannot train the churn model: summary, verdict, exit 2
    assert cli.main(["--root", str(project), "check-data"]) == 2
    captured = capsys.readouterr()
    out = captured.out
    assert f"(table '{TABLE}') (sql, on_bad_rows: quarantine)" in out
    assert re.search(r"rows read\s+9\b", out) and re.search(r"kept\s+5\b", out)
    assert "verdict       unusable: churn: " in out and "days of history" in out
    assert captured.err.startswith("datastory: error: ") and "shop.db" in captured.err and "fix:" in captured.err


@pytest.mark.parametrize("case", ["no file", "no table", "bad query", "absent column", "bad row"])
def test_check_data_exits_2_without_traceback(project, capsys, case):
    url = "sqlite:///data/raw/shop.db"
    if case != "no file":
        make_sqlite(project / "data" / "raw" / "shop.db")
    cfg = {"no file": params(url), "no table": params(url, table="invoices"),
           "bad query": params(url, query=f"SELECT NoSuchColumn FROM {TABLE}"),
           "absent column": params(url, customer_id="Customer ID"),
           "bad row": params(url, on_bad_rows="fail")}[case]
    write_params(project, cfg)
    assert cli.main(["--root", str(project), "check-data"]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("datastory: error: ") and "fix: " in captured.err
    assert "shop.db" in captured.err
    assert "Traceback" not in captured.err + captured.out
    assert not (project / "data" / "interim").exists()   # check-data writes nothing
    if case == "no file":
        assert not (project / "data").exists()


def test_ingest_run_writes_the_artifacts(project, shop):
    write_params(project, params("sqlite:///data/raw/shop.db"))
    quality = ingest.run(project)
    paths = config.paths(project)
    tx = pd.read_parquet(paths.transactions)
    assert len(tx) == quality["rows_kept"] == 5
    assert len(pd.read_parquet(paths.rejected)) == 4


# ---------------------------------------------------------------- PostgreSQL
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class PgServer:
    host: str
    port: int
    user: str
    database: str
    password: str

    def url(self, user: str | None = None) -> str:
        """A URL without password, as params/data.yaml holds it."""
        return f"postgresql+psycopg://{user or self.user}@{self.host}:{self.port}/{self.database}"

    def connect(self):
        import psycopg

        return psycopg.connect(host=self.host, port=self.port, user=self.user, password=self.password,
                               dbname=self.database, connect_timeout=10)


def pg_binaries() -> tuple[str, str] | None:
    """initdb and pg_ctl: from PATH, else the newest /usr/lib/postgresql/<version>/bin (Debian)."""
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if initdb and pg_ctl:
        return initdb, pg_ctl

    def version(folder: str) -> tuple[int, ...]:
        return tuple(int(x) for x in re.findall(r"\d+", Path(folder).parent.name))

    for folder in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version, reverse=True):
        tools = [os.path.join(folder, t) for t in ("initdb", "pg_ctl")]
        if all(os.access(t, os.X_OK) for t in tools):
            return tools[0], tools[1]
    return None


def as_unprivileged() -> tuple[list[str], int, int]:
    """A command prefix that runs as 'postgres' (else 'nobody') when we are root: postgres refuses root."""
    if os.geteuid() != 0:
        return [], os.geteuid(), os.getegid()
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            user = pwd.getpwnam(name)
            if shutil.which("runuser"):
                return ["runuser", "-u", name, "--"], user.pw_uid, user.pw_gid
            if shutil.which("setpriv"):
                return (["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups"],
                        user.pw_uid, user.pw_gid)
    raise RuntimeError("running as root, and neither runuser nor setpriv with a 'postgres' or 'nobody' user")


@contextlib.contextmanager
def throwaway_server(initdb: str, pg_ctl: str) -> Iterator[PgServer]:
    """initdb + pg_ctl start in a fresh temp folder (password login only, 127.0.0.1); always stopped."""
    prefix, uid, gid = as_unprivileged()
    home = Path(tempfile.mkdtemp(prefix="datastory-pg-"))   # /tmp: reachable by the unprivileged user
    data, log, pwfile = home / "data", home / "server.log", home / "pwfile"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C"

    def run(*cmd: str) -> subprocess.CompletedProcess:
        return subprocess.run([*prefix, *cmd], cwd=home, env=env, capture_output=True, text=True, timeout=60)

    started = False
    try:
        pwfile.write_text(SECRET + "\n", encoding="utf-8")
        for p in (home, pwfile):
            os.chown(p, uid, gid)
        home.chmod(0o700)
        res = run(initdb, "-D", str(data), "-U", "shopadmin", "--auth=scram-sha-256", f"--pwfile={pwfile}",
                  "-E", "UTF8", "--locale=C", "--no-sync")
        if res.returncode:
            raise RuntimeError(f"initdb failed: {res.stderr[-2000:]}")
        pwfile.unlink()
        for _ in range(3):   # the free port may be taken between picking it and listening on it
            port = free_port()
            opts = f"-c listen_addresses=127.0.0.1 -p {port} -k {home} -F"
            res = run(pg_ctl, "-D", str(data), "-l", str(log), "-o", opts, "-w", "-t", "30", "start")
            started = res.returncode == 0
            if started:
                break
        if not started:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"pg_ctl start failed: {res.stdout}{res.stderr}\n{tail}")
        server = PgServer("127.0.0.1", port, "shopadmin", "postgres", SECRET)
        with server.connect() as con:
            con.autocommit = True
            con.execute("CREATE DATABASE shop")
        yield PgServer("127.0.0.1", port, "shopadmin", "shop", SECRET)
    finally:
        if started or (data / "postmaster.pid").exists():
            run(pg_ctl, "-D", str(data), "-m", "fast", "-w", "-t", "30", "stop")
        shutil.rmtree(home, ignore_errors=True)


def unavailable(reason: str) -> None:
    if os.environ.get("DATASTORY_TEST_PG_REQUIRE") == "1":
        pytest.fail(f"PostgreSQL required (DATASTORY_TEST_PG_REQUIRE=1) but {reason}")
    pytest.skip(f"PostgreSQL not available: {reason}; set DATASTORY_TEST_PG_URL (+ DATASTORY_TEST_PG_PASSWORD) "
                "or install Debian's postgresql package")


@pytest.fixture(scope="session")
def pg() -> Iterator[PgServer]:
    """A PostgreSQL server with a password login (see module doc)."""
    external = os.environ.get("DATASTORY_TEST_PG_URL")
    if external:
        from sqlalchemy.engine import make_url

        url = make_url(external)
        if url.password or url.get_backend_name() != "postgresql":
            pytest.fail("DATASTORY_TEST_PG_URL must be a postgresql URL without password; the password goes in "
                        "DATASTORY_TEST_PG_PASSWORD")
        yield PgServer(url.host or "127.0.0.1", url.port or 5432, url.username or "postgres",
                       url.database or "postgres", os.environ.get("DATASTORY_TEST_PG_PASSWORD", ""))
        return
    tools = pg_binaries()
    if tools is None:
        unavailable("no initdb/pg_ctl on PATH or in /usr/lib/postgresql/*/bin")
    with throwaway_server(*tools) as server:
        yield server


@pytest.fixture(scope="session")
def pg_table(pg: PgServer) -> Iterator[str]:
    """The invoice table in PostgreSQL: the same rows and layout as the SQLite one (quoted mixed-case names)."""
    name = f"{TABLE}_{os.getpid()}"
    cols = ('"InvoiceNo" text NOT NULL, "StockCode" text, "Description" text, "Quantity" integer, '
            '"InvoiceDate" text, "UnitPrice" double precision, "CustomerID" integer NULL, "Country" text')
    quoted = ", ".join(f'"{c}"' for c in COLUMNS)
    with pg.connect() as con:
        con.execute(f"DROP TABLE IF EXISTS {name}")
        con.execute(f"CREATE TABLE {name} ({cols})")
        with con.cursor() as cur:
            cur.executemany(f"INSERT INTO {name} ({quoted}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)", ROWS)
    try:
        yield name
    finally:
        with pg.connect() as con:
            con.execute(f"DROP TABLE IF EXISTS {name}")


def pg_params(pg: PgServer, table: str, **kw) -> DataParams:
    return params(pg.url(), table=table, **kw)


def test_postgres_reads_the_same_transactions_as_sqlite(project, shop, pg, pg_table, monkeypatch):
    monkeypatch.setenv(PW_ENV, pg.password)
    lite = params("sqlite:///data/raw/shop.db")
    post = pg_params(pg, pg_table)
    raw_pg = sql.read(post, project)
    shown = f"postgresql+psycopg://{pg.user}:***@{pg.host}:{pg.port}/{pg.database}"
    assert raw_pg.name == f"{shown} (table '{pg_table}')"
    assert raw_pg.frame["product"].tolist() == [r[1] for r in ROWS]
    a = ingest.prepare(sql.read(lite, project), lite, now=NOW)
    b = ingest.prepare(raw_pg, post, now=NOW)
    pd.testing.assert_frame_equal(a.tx, b.tx)
    assert b.quality == a.quality
    assert "17850" in set(b.tx["customer_id"])
    by_query = sql.read(pg_params(pg, "", query=f'SELECT * FROM {pg_table} WHERE "Country" = \'Norway\''), project)
    assert by_query.frame["customer_id"].tolist() == [17850] * 3


def test_postgres_wrong_password_is_a_refused_login(project, pg, pg_table, monkeypatch):
    wrong = "not-the-Passw0rd!"
    monkeypatch.setenv(PW_ENV, wrong)
    err = fails(pg_params(pg, pg_table), project, "refused the login", f"user '{pg.user}'", PW_ENV)
    assert PW_ENV in err.fix
    assert wrong not in str(err) and pg.password not in str(err)
    assert f"{pg.host}:{pg.port}/{pg.database}" in err.file


def test_postgres_missing_password_is_a_refused_login(project, pg, pg_table):
    if not pg.password:
        pytest.skip("the server under test needs no password")
    err = fails(pg_params(pg, pg_table), project, "refused the login", PW_ENV)
    assert pg.password not in str(err)


def test_postgres_missing_table_lists_the_tables(project, pg, pg_table, monkeypatch):
    monkeypatch.setenv(PW_ENV, pg.password)
    err = fails(pg_params(pg, "invoices"), project, "'invoices' does not exist", pg_table, "sql.table")
    assert pg.password not in str(err)
    fails(pg_params(pg, "", query="SELECT * FROM invoices"), project, "invoices", "does not exist")


def test_postgres_writing_query_changes_nothing(project, pg, pg_table, monkeypatch, parser_fooled):
    monkeypatch.setenv(PW_ENV, pg.password)
    with pg.connect() as con:
        before = con.execute(f"SELECT count(*) FROM {pg_table}").fetchone()[0]
    fails(pg_params(pg, "", query=f"DELETE FROM {pg_table} RETURNING *"), project, "read-only transaction")
    with pg.connect() as con:
        assert con.execute(f"SELECT count(*) FROM {pg_table}").fetchone()[0] == before == len(ROWS)


def test_postgres_query_cannot_commit_a_write(project, pg, monkeypatch, parser_fooled):
    monkeypatch.setenv(PW_ENV, pg.password)
    name = f"scratch_{os.getpid()}"
    with pg.connect() as con:
        con.execute(f"DROP TABLE IF EXISTS {name}")
        con.execute(f"CREATE TABLE {name} (n integer)")
        con.execute(f"INSERT INTO {name} VALUES (1), (2)")
    try:
        fails(pg_params(pg, "", query=f"DELETE FROM {name}; COMMIT; SELECT 1 AS n"), project, "multiple commands")
        with pg.connect() as con:
            assert con.execute(f"SELECT count(*) FROM {name}").fetchone()[0] == 2
    finally:
        with pg.connect() as con:
            con.execute(f"DROP TABLE IF EXISTS {name}")


def test_postgres_mapped_column_absent(project, pg, pg_table, monkeypatch):
    monkeypatch.setenv(PW_ENV, pg.password)
    fails(pg_params(pg, pg_table, customer_id="customerid"), project, "'customerid' (mapped to customer_id)",
          "'CustomerID'")


def test_postgres_password_never_reaches_messages_artifacts_or_summary(project, pg, pg_table, monkeypatch,
                                                                       capsys):
    write_params(project, pg_params(pg, pg_table))
    if pg.password:   # from the project's .env, as an analyst would keep it
        (project / ".env").write_text(f"{PW_ENV}={pg.password}\n", encoding="utf-8")
    assert cli.main(["--root", str(project), "check-data"]) == 2   # read, summarised; too short for churn
    captured = capsys.readouterr()
    out = captured.out
    assert f"@{pg.host}:{pg.port}/{pg.database}" in out and re.search(r"kept\s+5\b", out)
    assert "verdict       unusable: " in out
    if pg.password:
        assert pg.password not in captured.err + out
    monkeypatch.setenv(PW_ENV, pg.password)
    ingest.run(project)
    data = project / "data"
    written = [p for p in data.rglob("*") if p.is_file()]
    assert written
    secret = pg.password.encode()
    assert all(secret not in p.read_bytes() for p in written)
    assert all(pg.password not in str(v) for v in ingest.run(project).values())
    monkeypatch.setenv(PW_ENV, pg.password + "x")   # wrong: the CLI message must not echo either one
    assert cli.main(["--root", str(project), "check-data"]) == 2
    captured = capsys.readouterr()
    assert "refused the login" in captured.err and PW_ENV in captured.err
    if pg.password:
        assert pg.password not in captured.err + captured.out
    assert "Traceback" not in captured.err


# ---------------------------------------------------------------- read-only by construction: hostile params
# Each hostile query is refused twice over. check-params refuses it (file, key, value, fix) before any
# connection, and so does every stage; and with the parser fooled, the read-only session datastory opens
# itself refuses it. Either way the target table is still there with all its rows, and no file appears.
SQLITE_HOSTILE = {
    "attach": "ATTACH DATABASE 'file:evil.db?mode=rwc' AS evil",
    "pragma": "PRAGMA user_version = 7",
    "pragma off": "PRAGMA query_only = OFF",
    "insert": f"INSERT INTO {TABLE} (InvoiceNo) VALUES ('X1')",
    "update": f"UPDATE {TABLE} SET Quantity = 0",
    "delete": f"DELETE FROM {TABLE} RETURNING *",
    "drop": f"DROP TABLE {TABLE}",
    "create as": f"CREATE TABLE stolen AS SELECT * FROM {TABLE}",
    "replace": f"REPLACE INTO {TABLE} (InvoiceNo) VALUES ('X1')",
    "vacuum into": "VACUUM INTO 'evil.db'",
    "two statements": f"SELECT * FROM {TABLE}; DELETE FROM {TABLE}",
    "with delete": f"WITH gone AS (DELETE FROM {TABLE} RETURNING *) SELECT * FROM gone",
}


def write_raw_params(project: Path, url: str, query: str) -> None:
    """params/data.yaml as a user could write it: not validated here (params() would refuse it)."""
    data = params(url).model_dump(mode="json")
    data["sql"].update(table="", query=query)
    (project / "params" / "data.yaml").write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False),
                                                   encoding="utf-8")


def refused_by_params(project: Path, query: str, capsys) -> str:
    """check-params, check-data and the ingest stage all refuse params/data.yaml; the message of check-params."""
    assert cli.main(["--root", str(project), "check-params"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("datastory: error: params/data.yaml: key 'sql.query' has value "), err
    assert query in err and "\n  fix: " in err and "Traceback" not in err
    assert cli.main(["--root", str(project), "check-data"]) == 2
    assert "key 'sql.query'" in capsys.readouterr().err
    with pytest.raises(ParamsError, match="sql.query"):
        ingest.run(project)
    return err


def sqlite_rows(db: Path) -> int:
    with contextlib.closing(sqlite3.connect(db)) as con:
        return con.execute(f"SELECT count(*) FROM {TABLE}").fetchone()[0]


@pytest.mark.parametrize("case", list(SQLITE_HOSTILE))
def test_sqlite_hostile_query_is_refused_by_check_params(project, shop, capsys, monkeypatch, case):
    monkeypatch.chdir(shop.parent)   # where a relative ATTACH or VACUUM INTO would create its file
    query = SQLITE_HOSTILE[case]
    write_raw_params(project, "sqlite:///data/raw/shop.db", query)
    before, listing = files_of(shop.parent), sorted(p.name for p in project.rglob("*"))
    err = refused_by_params(project, query, capsys)
    assert "only reads" in err or "statements" in err
    assert files_of(shop.parent) == before and sorted(p.name for p in project.rglob("*")) == listing
    assert sqlite_rows(shop) == len(ROWS)


@pytest.mark.parametrize("case", list(SQLITE_HOSTILE))
def test_sqlite_session_refuses_what_a_fooled_parser_lets_through(project, shop, monkeypatch, parser_fooled,
                                                                   case):
    monkeypatch.chdir(shop.parent)
    before = files_of(shop.parent)
    err = fails(params("sqlite:///data/raw/shop.db", query=SQLITE_HOSTILE[case]), project)
    assert "shop.db" in err.file
    if case not in ("pragma off", "with delete"):   # those two: a query with no rows; SQLite's own syntax error
        assert err.problem.startswith("the read-only session refused the query: "), err.problem
    assert files_of(shop.parent) == before   # no evil.db, no journal, same bytes and mtime
    assert sqlite_rows(shop) == len(ROWS)


def test_sqlite_connection_is_read_only_and_cannot_attach(project, shop, monkeypatch):
    query = ("SELECT InvoiceNo, CustomerID, InvoiceDate, Quantity, UnitPrice, Country, "
             f"(SELECT query_only FROM pragma_query_only) AS StockCode FROM {TABLE}")
    raw = sql.read(params("sqlite:///data/raw/shop.db", query=query), project)
    assert set(raw.frame["product"]) == {1}   # PRAGMA query_only is on while the query runs
    monkeypatch.setattr(sqlcheck, "check", lambda query, dialect=None: None)   # now fool the parser
    fails(params("sqlite:///data/raw/shop.db", query=SQLITE_HOSTILE["attach"]), project,
          "too many attached databases")
    fails(params("sqlite:///data/raw/shop.db", query=SQLITE_HOSTILE["insert"]), project,
          "read-only session refused the query", "readonly database", "only reads")


def test_an_unchecked_query_is_refused_before_connecting(project):
    """Params built without validation still go through the parser: nothing is sent, not even a login."""
    port = free_port()   # nothing listens there: had it tried to connect, the error would say so
    cfg = params(f"postgresql+psycopg://shop@127.0.0.1:{port}/sales")
    hostile = SqlParams.model_construct(url=cfg.sql.url, password_env=PW_ENV, table="",
                                        query="DROP TABLE victim; COMMIT; SELECT * FROM transactions")
    err = fails(cfg.model_copy(update={"sql": hostile}), project, "holds 3 statements (DROP, COMMIT, SELECT)")
    assert err.file == "params/data.yaml" and err.column == "sql.query" and "cannot connect" not in str(err)


def test_databases_without_a_read_only_session_are_refused(project, shop, monkeypatch):
    monkeypatch.setattr(sql, "READ_ONLY", ("postgresql",))   # as if SQLite were a database datastory cannot lock
    err = fails(params("sqlite:///data/raw/shop.db"), project, "only from PostgreSQL and SQLite", "not from sqlite",
                "CSV or Parquet")
    assert err.column == "sql.url"


@pytest.fixture
def victim(pg: PgServer) -> Iterator[str]:
    """A table of the invoice rows and a sequence beside it, made afresh for one test, dropped after."""
    name = f"victim_{os.getpid()}"
    with pg.connect() as con:
        con.execute(f"DROP TABLE IF EXISTS {name}")
        con.execute(f"DROP SEQUENCE IF EXISTS {name}_seq")
        con.execute(f'CREATE TABLE {name} ("n" integer, "InvoiceNo" text, "CustomerID" integer)')
        with con.cursor() as cur:
            cur.executemany(f"INSERT INTO {name} VALUES (%s, %s, %s)", [(i, r[0], r[6]) for i, r in enumerate(ROWS)])
        con.execute(f"CREATE SEQUENCE {name}_seq")
    try:
        yield name
    finally:
        with pg.connect() as con:
            for kind, obj in (("TABLE", name), ("TABLE", "stolen"), ("SEQUENCE", f"{name}_seq")):
                con.execute(f"DROP {kind} IF EXISTS {obj}")


def pg_state(pg: PgServer, name: str) -> tuple[int | None, bool, tuple]:
    """The victim's row count (None: the table is gone), whether a table 'stolen' exists, the sequence."""
    with pg.connect() as con:
        exists = con.execute("SELECT to_regclass(%s) IS NOT NULL", (name,)).fetchone()[0]
        rows = con.execute(f"SELECT count(*) FROM {name}").fetchone()[0] if exists else None
        stolen = con.execute("SELECT to_regclass('stolen') IS NOT NULL").fetchone()[0]
        seq = con.execute(f"SELECT last_value, is_called FROM {name}_seq").fetchone()
    return rows, stolen, seq


def pg_hostile(name: str) -> dict[str, str]:
    return {
        "drop then commit": f"DROP TABLE {name}; COMMIT; SELECT * FROM transactions",
        "two statements": f"SELECT * FROM {name}; DELETE FROM {name}",
        "break out of the transaction": f"COMMIT; BEGIN READ WRITE; DROP TABLE {name}; COMMIT; SELECT 1 AS n",
        "with delete": f"WITH gone AS (DELETE FROM {name} RETURNING *) SELECT * FROM gone",
        "select into": f"SELECT * INTO stolen FROM {name}",
        "copy from program": f"COPY {name} FROM PROGRAM 'echo 99'",
        "copy to file": f"COPY {name} TO '/tmp/datastory-copied-{os.getpid()}.csv'",
        "drop": f"DROP TABLE {name}",
    }


PG_CASES = ["drop then commit", "two statements", "break out of the transaction", "with delete", "select into",
            "copy from program", "copy to file", "drop"]
SESSION_CASES = [c for c in PG_CASES if c != "copy to file"]   # see test_postgres_copy_to_a_file_is_...
READ_WRITE_URL = "?options=-c%20default_transaction_read_only%3Doff"   # the URL asks for a writable session
SEARCH_PATH_URL = "?options=-csearch_path%3Dpublic"                    # the URL


@pytest.mark.parametrize("case", PG_CASES)
def test_postgres_hostile_query_is_refused_by_check_params(project, pg, victim, monkeypatch, capsys, case):
    monkeypatch.setenv(PW_ENV, pg.password)
    query = pg_hostile(victim)[case]
    before = pg_state(pg, victim)
    for options in (SEARCH_PATH_URL, READ_WRITE_URL):
        write_raw_params(project, pg.url() + options, query)
        err = refused_by_params(project, query, capsys)
        assert "only reads" in err or "statements" in err
        assert pg.password not in err
    assert pg_state(pg, victim) == before and before[0] == len(ROWS)
    assert not (project / "data").exists()


@pytest.mark.parametrize("case", SESSION_CASES)
def test_postgres_session_refuses_what_a_fooled_parser_lets_through(project, pg, victim, monkeypatch,
                                                                     parser_fooled, case):
    monkeypatch.setenv(PW_ENV, pg.password)
    before = pg_state(pg, victim)
    query = pg_hostile(victim)[case]
    for options in (SEARCH_PATH_URL, READ_WRITE_URL):
        err = fails(params(pg.url() + options, query=query), project)
        assert pg.password not in str(err)
        assert any(k in str(err) for k in ("read-only transaction", "multiple commands", "must be superuser",
                                           "permission denied")), str(err)   # the last two: a role without rights
        assert pg_state(pg, victim) == before


def test_postgres_copy_to_a_file_is_stopped_by_the_parser(pg, victim):
    """A read-only transaction still lets COPY TO write a server-side file (for a role allowed to): the parser
    refuses it, and the README recommends a read-only role, which cannot write server files at all."""
    with pytest.raises(ValidationError, match="COPY is not allowed"):
        params(pg.url(), query=pg_hostile(victim)["copy to file"])


def test_postgres_writing_function_passes_the_parser_and_the_session_refuses_it(project, pg, victim, monkeypatch):
    monkeypatch.setenv(PW_ENV, pg.password)
    before = pg_state(pg, victim)
    query = f"SELECT nextval('{victim}_seq') AS n, * FROM {victim}"
    sqlcheck.check(query, "postgres")   # a SELECT: the parser cannot know that nextval writes
    for options in ("", READ_WRITE_URL):
        fails(params(pg.url() + options, query=query), project, "read-only session refused the query",
              "cannot execute nextval() in a read-only transaction", "nextval")
    assert pg_state(pg, victim) == before


def test_postgres_session_is_read_only_whatever_the_url_says(project, pg, monkeypatch):
    monkeypatch.setenv(PW_ENV, pg.password)
    query = ("SELECT current_setting('transaction_read_only') AS \"InvoiceNo\", 1 AS \"CustomerID\", "
             "current_setting('default_transaction_read_only') AS \"StockCode\", "
             "current_setting('search_path') AS \"InvoiceDate\", 1 AS \"Quantity\", 2.5 AS \"UnitPrice\", "
             "'Norway' AS \"Country\"")
    seen = {}
    for options in ("", SEARCH_PATH_URL, READ_WRITE_URL):
        frame = sql.read(params(pg.url() + options, query=query), project).frame
        assert frame.loc[0, ["order_id", "product"]].tolist() == ["on", "on"], options
        seen[options] = frame.loc[0, "timestamp"]
    assert seen[SEARCH_PATH_URL] == "public" and seen[""] != "public"   # the URL's other options still apply


def test_the_readmes_read_only_role_reads_and_cannot_write_even_a_server_file(project, pg, victim, monkeypatch,
                                                                               parser_fooled):
    """The README's CREATE ROLE block, run as written (names filled in): the role reads the table, and what
    slips past a fooled parser and a read-only transaction (COPY … TO a server file) is denied to it."""
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```sql\n(\s*CREATE ROLE analyst.*?)```", text, re.S)
    assert block, "the README's read-only role block is missing"
    role, password = f"analyst_{os.getpid()}", "r3ad-0nly pw"
    script = (block.group(1).replace("analyst", role).replace("'...'", f"'{password}'")
              .replace("DATABASE sales", f"DATABASE {pg.database}").replace("invoice_lines", victim))
    try:
        with pg.connect() as con:
            if not con.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()[0]:
                pytest.skip("the server under test gives no superuser to create a role with")
            con.execute(f"DROP ROLE IF EXISTS {role}")
            for statement in filter(str.strip, re.sub(r"--[^\n]*", "", script).split(";")):
                con.execute(statement)
        monkeypatch.setenv(PW_ENV, password)
        cfg = params(pg.url(role), query=f'SELECT "InvoiceNo", "CustomerID", \'2025-01-01\' AS "InvoiceDate", '
                     f'n AS "Quantity", 1.5 AS "UnitPrice", \'x\' AS "StockCode", \'Spain\' AS "Country" '
                     f"FROM {victim}")
        assert len(sql.read(cfg, project).frame) == len(ROWS)
        target = f"/tmp/datastory-role-{os.getpid()}.csv"
        fails(params(pg.url(role), query=f"COPY {victim} TO '{target}'"), project, "pg_write_server_files")
        assert not os.path.exists(target)
        fails(params(pg.url(role), query=f"COPY {victim} TO PROGRAM 'true'"), project, "pg_execute_server_program")
        assert pg_state(pg, victim)[0] == len(ROWS)
    finally:
        with pg.connect() as con:
            if con.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone():
                con.execute(f"DROP OWNED BY {role}")
                con.execute(f"DROP ROLE {role}")
