"""The one statement a SQL source may send: a single SELECT (or WITH … SELECT) that only reads.

`check` parses `sql.query` with sqlglot, a real SQL parser, in the database's dialect, before anything is
sent. It refuses an empty query, more than one statement, any statement but a query, and a query that
writes: a data-modifying WITH clause, SELECT … INTO, FOR UPDATE/SHARE row locks, or any write, DDL, COPY,
PRAGMA, ATTACH, SET or transaction control nested anywhere in it. SQL it cannot parse is refused too:
what cannot be checked is not sent.

This is the first of two locks. The second is the read-only session that sources/sql.py opens whatever
the URL says; it also stops what a parser cannot see, such as a SELECT calling a function that writes
(nextval, lo_unlink, ...).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

# SQLAlchemy's backend name -> sqlglot's dialect name, where they differ
_DIALECTS = {"postgresql": "postgres", "mssql": "tsql", "mariadb": "mysql"}

FIX = ("write one SELECT (or WITH … SELECT) that only reads, e.g. SELECT * FROM invoice_lines, with no "
       "second statement after a ';'; or name a table or view in sql.table")

# statements (and clauses) that write, change the schema or the session, or leave the query language
_WRITERS: tuple[type[exp.Expression], ...] = (
    exp.DML, exp.DDL, exp.Drop, exp.Alter, exp.TruncateTable, exp.Copy, exp.Into, exp.Lock, exp.Command,
    exp.Pragma, exp.Attach, exp.Detach, exp.Set, exp.Transaction, exp.Commit, exp.Rollback, exp.Grant,
    exp.Revoke, exp.Use, exp.Analyze, exp.Cache, exp.Uncache, exp.Refresh, exp.LoadData, exp.Kill,
    exp.Execute, exp.Export, exp.Install, exp.Describe, exp.Show, exp.Summarize,
)
_NAMES = {exp.TruncateTable: "TRUNCATE", exp.Transaction: "BEGIN", exp.Into: "SELECT … INTO",
          exp.Lock: "FOR UPDATE/SHARE"}


class UnsafeQuery(ValueError):
    """`sql.query` is not one read-only SELECT; `fix` says what to write instead."""

    def __init__(self, problem: str, fix: str = FIX):
        super().__init__(problem)
        self.problem = problem
        self.fix = fix


def dialect(url: str) -> str | None:
    """sqlglot's dialect for a SQLAlchemy URL; None (sqlglot's generic SQL) when it has no such dialect."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError
    from sqlglot.dialects.dialect import Dialect

    try:
        backend = make_url(url).get_backend_name()
    except ArgumentError:
        return None
    name = _DIALECTS.get(backend, backend)
    return name if name in Dialect.classes else None


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """sqlglot logs a warning (echoing the SQL) when it falls back to an unparsed command; refused anyway."""
    log = logging.getLogger("sqlglot")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)


def _kind(node: exp.Expression, dialect: str | None) -> str:
    """What a statement or clause is, as a reader would name it: DROP, COPY, VACUUM, SELECT … INTO."""
    if isinstance(node, exp.Command):
        return str(node.this).upper()
    if isinstance(node, exp.Query):
        return "SELECT"
    for cls, name in _NAMES.items():
        if isinstance(node, cls):
            return name
    if isinstance(node, _WRITERS):
        return node.key.upper()
    words = node.sql(dialect=dialect).split(maxsplit=1)
    return words[0].upper() if words else "?"


def _syntax(exc: SqlglotError) -> str:
    """Where the parser stopped, as a reader can find it: line, column and the word there."""
    errors = getattr(exc, "errors", None) or []
    if not errors:
        return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
    first = errors[0]
    note = first.get("description") or ""
    note = "" if "<" in note else f": {note}"   # sqlglot's internals (class and token reprs) say nothing here
    return f"line {first.get('line')}, column {first.get('col')}, at {first.get('highlight')!r}{note}"


def check(query: str, dialect: str | None = None) -> None:
    """Raise UnsafeQuery unless `query` is exactly one SELECT (or WITH … SELECT) that only reads."""
    try:
        with _quiet():
            parsed = sqlglot.parse(query, read=dialect)
    except SqlglotError as exc:
        raise UnsafeQuery(f"syntax error ({dialect or 'generic'} SQL, {_syntax(exc)}); SQL that cannot be "
                          "checked is not sent",
                          fix="correct the SQL; if the database accepts it but this check cannot read it, "
                              "create a view with it in the database and name the view in sql.table") from None
    statements = [s for s in parsed if s is not None and not isinstance(s, exp.Semicolon)]
    if not statements:
        raise UnsafeQuery("holds no SQL statement")
    if len(statements) > 1:
        kinds = ", ".join(_kind(s, dialect) for s in statements)
        raise UnsafeQuery(f"holds {len(statements)} statements ({kinds}); exactly one SELECT is allowed")
    stmt = statements[0]
    if not isinstance(stmt, exp.Query):
        raise UnsafeQuery(f"{_kind(stmt, dialect)} is not allowed: a SQL source only reads, with one SELECT")
    for node in stmt.walk():
        if isinstance(node, _WRITERS):
            where = " in a WITH clause" if node.find_ancestor(exp.CTE) else ""
            raise UnsafeQuery(f"a SELECT that writes ({_kind(node, dialect)}{where}) is not allowed: a SQL source "
                              "only reads")
