"""SQL source: a table or a query through SQLAlchemy (SQLite, PostgreSQL, or any dialect with a driver).

The URL in params/data.yaml carries no password: it is read from the environment variable named by
`sql.password_env` (or the project's git-ignored .env) and never appears in a message, log or artifact
(messages show the URL with the password hidden). A SQLite file is opened read-only and must exist;
SQLite would otherwise create an empty database and the message would be a confusing "no such table".
Rows are numbered from 1 in the order the database returns them.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import NullPool

from ..config import DataParams
from ..errors import DataError
from . import Raw, check_header, display, no_rows


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
    """PostgreSQL: every transaction read-only (a query cannot write, not even after its own COMMIT), and
    a bounded wait for an unreachable host."""
    if url.get_backend_name() != "postgresql" or url.get_driver_name() not in ("psycopg", "psycopg2"):
        return {}
    args: dict[str, object] = {"connect_timeout": 15}
    if "options" not in url.query:
        args["options"] = "-c default_transaction_read_only=on"
    return args


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
    engine = None
    try:
        engine = sa.create_engine(url, poolclass=NullPool, connect_args=_connect_args(url))
        with engine.connect() as conn:
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
