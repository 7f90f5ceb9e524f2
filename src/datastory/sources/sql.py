"""SQL source: a table or a query through SQLAlchemy, from SQLite or PostgreSQL, read-only by construction.

The URL in params/data.yaml carries no password: it is read from the environment variable named by
`sql.password_env` (or the project's git-ignored .env) and never appears in a message, log or artifact
(messages show the URL with the password hidden). A SQLite file must exist; SQLite would otherwise
create an empty database and the message would be a confusing "no such table".
Rows are numbered from 1 in the order the database returns them.

Nothing is written to the database, whatever params say. Two locks, each enough alone for a plain write:
- `sql.query` must be one SELECT (or WITH … SELECT) that only reads, checked by a SQL parser
  (sqlcheck.py) when params are validated and again here, before anything is sent;
- the session is made read-only by datastory itself after connecting, and checked, so no URL option can
  undo it. PostgreSQL: the transaction and the session's default are READ ONLY, and psycopg sends every
  statement through the extended protocol, where the server accepts exactly one statement. SQLite: the
  file is opened with mode=ro, PRAGMA query_only is on, and no database can be attached (ATTACH could
  create a file). The read-only session also stops what a parser cannot see, such as a SELECT calling a
  function that writes (nextval). Other databases are refused: datastory cannot vouch for their sessions.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pandas as pd
import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import NullPool

from ..config import DataParams
from ..errors import DataError
from . import Raw, check_header, display, no_rows, sqlcheck

READ_ONLY = ("postgresql", "sqlite")   # the databases whose sessions datastory makes read-only itself


def _url(cfg: DataParams, root: Path) -> tuple[URL, str]:
    """The connectable URL (password from the environment) and its display form (password hidden)."""
    url = make_url(cfg.sql.url)
    if url.get_backend_name() == "sqlite":
        db = url.database or ""
        if not db or db == ":memory:":
            raise DataError("the SQLite URL names no database file", file="params/data.yaml", column="sql.url",
                            fix="write sqlite:///data/raw/shop.db (a path relative to the project)")
        path = Path(db) if Path(db).is_absolute() else root / db
        shown = display(path, root)
        if not path.is_file():
            raise DataError("SQLite database file not found", file=shown,
                            fix="check the path in sql.url (relative to the project folder)")
        # as_uri() percent-encodes '#', '?', '%' and spaces: spliced raw they would cut the path short,
        # drop mode=ro and make SQLite create an empty database elsewhere
        options = "mode=ro"
        if _is_wal(path) and not path.with_name(path.name + "-wal").exists():
            options += "&immutable=1"   # nothing to recover; a plain read-only open would leave -wal/-shm behind
        ro = sa.engine.URL.create("sqlite", database=f"{path.resolve().as_uri()}?{options}", query={"uri": "true"})
        return ro, shown
    password = os.environ.get(cfg.sql.password_env, "")
    if password:
        url = url.set(password=password)
    return url, url.render_as_string(hide_password=True)


def _connect_args(url: URL) -> dict[str, object]:
    """PostgreSQL: a bounded wait for an unreachable host; with psycopg, every statement prepared, so it goes
    through the extended protocol and the server refuses a string holding more than one statement."""
    if url.get_backend_name() != "postgresql" or url.get_driver_name() not in ("psycopg", "psycopg2"):
        return {}
    args: dict[str, object] = {"connect_timeout": 15}
    if url.get_driver_name() == "psycopg":
        args["prepare_threshold"] = 0
    return args


def _check_query(cfg: DataParams) -> None:
    """The parse-time lock (sqlcheck.py), here too so that nothing else is ever sent."""
    try:
        sqlcheck.check(cfg.sql.query, sqlcheck.dialect(cfg.sql.url))
    except sqlcheck.UnsafeQuery as exc:
        raise DataError(f"sql.query {cfg.sql.query!r} is refused: {exc.problem}", file="params/data.yaml",
                        column="sql.query", fix=exc.fix) from None


def _read_only(conn: sa.Connection, backend: str, shown: str) -> None:
    """Make this connection unable to write, before anything from params is sent, and check that it is."""
    if backend == "postgresql":
        conn.exec_driver_sql("SET TRANSACTION READ ONLY")   # first in the transaction: wins over any URL option
        conn.exec_driver_sql("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")   # and any later one
        state = [conn.exec_driver_sql(f"SHOW {name}").scalar()
                 for name in ("transaction_read_only", "default_transaction_read_only")]
        ok = state == ["on", "on"]
    else:
        raw = conn.connection.driver_connection
        raw.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)   # ATTACH 'file:x?mode=rwc' would create a file
        conn.exec_driver_sql("PRAGMA query_only = ON")
        state = [conn.exec_driver_sql("PRAGMA query_only").scalar(), raw.getlimit(sqlite3.SQLITE_LIMIT_ATTACHED)]
        ok = state == [1, 0]
    if not ok:
        raise DataError(f"the database session could not be made read-only ({state}); nothing was read",
                        file=shown, fix="connect as a database role that can only read (see the README)")


def _is_wal(path: Path) -> bool:
    """SQLite's header says WAL mode (bytes 18 and 19 are 2)."""
    with open(path, "rb") as fh:
        head = fh.read(20)
    return head.startswith(b"SQLite format 3\x00") and head[18:20] == b"\x02\x02"


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip().splitlines()
    return text[0][:300] if text else type(orig).__name__


def _explain(exc: BaseException, cfg: DataParams, shown: str, where: str) -> DataError:
    msg = _first_line(exc)
    low = msg.lower()
    if isinstance(exc, sa_exc.NoSuchModuleError):
        return DataError(f"unknown database kind in sql.url ({msg})", file="params/data.yaml", column="sql.url",
                         fix="use a SQLAlchemy URL such as sqlite:///data/raw/shop.db or postgresql+psycopg://...")
    if isinstance(exc, ModuleNotFoundError):
        return DataError(f"the database driver is not installed ({msg})", file=shown,
                         fix="install the driver named in sql.url into the environment (pip install ...)")
    if any(k in low for k in ("password authentication failed", "authentication failed", "access denied",
                              "no password supplied", "password")):
        user = make_url(cfg.sql.url).username or "?"
        return DataError(f"the database refused the login of user '{user}': {msg}", file=shown,
                         fix=f"check the user in sql.url and the password in the environment variable "
                             f"{cfg.sql.password_env} (or .env); never put it in params")
    if any(k in low for k in ("read-only transaction", "readonly database", "attached databases",
                              "multiple commands", "one statement at a time")):
        return DataError(f"the read-only session refused {where}: {msg}", file=shown,
                         fix="sql.query must be one SELECT that only reads: no write, and no function that "
                             "writes (such as nextval)")
    if "no such table" in low or "does not exist" in low:
        return DataError(f"{where}: {msg}", file=shown, column=cfg.sql.table or None,
                         fix="check sql.table (or the query) against the database's tables")
    if make_url(cfg.sql.url).get_backend_name() == "sqlite":  # the file exists: SQLite errors are about the SQL
        if "not a database" in low or "unable to open" in low:
            return DataError(f"cannot open the SQLite database: {msg}", file=shown,
                             fix="sql.url must name a SQLite database file the pipeline can read")
        return DataError(f"{where} failed: {msg}", file=shown, fix="check sql.table or sql.query in params/data.yaml")
    if isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError):
        return DataError(f"cannot connect to or read the database: {msg}", file=shown,
                         fix="check the host, port and database in sql.url, and that the server is running")
    return DataError(f"{where} failed: {msg}", file=shown, fix="check sql.table or sql.query in params/data.yaml")


def read(cfg: DataParams, root: Path) -> Raw:
    """The mapped columns of the configured table or query (see module doc)."""
    url, shown = _url(cfg, root)
    mapped = cfg.columns.mapped()
    where = f"table {cfg.sql.table!r}" if cfg.sql.table else "the query"
    name = f"{shown} ({where})"
    if not cfg.sql.table:
        _check_query(cfg)
    engine = None
    try:
        engine = sa.create_engine(url, poolclass=NullPool, connect_args=_connect_args(url))
        backend = url.get_backend_name()
        if backend not in READ_ONLY:
            raise DataError(f"datastory reads SQL only from PostgreSQL and SQLite, whose sessions it makes "
                            f"read-only itself; not from {backend}", file="params/data.yaml", column="sql.url",
                            fix="export the table to CSV or Parquet in data/raw/ and read that (source: csv "
                                "or parquet)")
        with engine.connect() as conn:   # closed without a commit: the transaction is rolled back
            _read_only(conn, backend, shown)
            if cfg.sql.table:
                inspector = sa.inspect(conn)
                tables = inspector.get_table_names() + inspector.get_view_names()
                if cfg.sql.table not in tables:
                    shown_tables = ", ".join(sorted(tables)[:20]) or "none"
                    raise DataError(f"table {cfg.sql.table!r} does not exist (tables: {shown_tables})", file=shown,
                                    fix="set sql.table in params/data.yaml to one of those")
                table = sa.Table(cfg.sql.table, sa.MetaData(), autoload_with=conn)
                check_header([c.name for c in table.columns], mapped, name, header_row=None)
                stmt = sa.select(*[table.c[col] for col in dict.fromkeys(mapped.values())])
            else:
                stmt = sa.text(cfg.sql.query)
            result = conn.execute(stmt)
            names = list(map(str, result.keys()))  # iterating a Result would yield rows, not names
            if not cfg.sql.table:
                check_header(names, mapped, name, header_row=None)
            frame = pd.DataFrame.from_records(result.fetchall(), columns=names)
    except DataError:
        raise
    except (sa_exc.SQLAlchemyError, ModuleNotFoundError) as exc:
        raise _explain(exc, cfg, shown, where) from None
    finally:
        if engine is not None:
            engine.dispose()
    if frame.empty:
        raise no_rows(name)
    return Raw(frame=pd.DataFrame({f: frame[c] for f, c in mapped.items()}), name=name, first_row=1,
               source_columns=mapped)
