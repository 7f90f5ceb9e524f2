"""The parse-time lock of SQL sources: one SELECT (or WITH … SELECT) that only reads, or a clear refusal.

No database here: what the servers do with a query that fooled the parser is in test_sources_sql.py.
"""

from __future__ import annotations

import logging

import pytest

from datastory.sources.sqlcheck import FIX, UnsafeQuery, check, dialect

READS = [
    "SELECT * FROM invoice_lines",
    "select * from invoice_lines ;  -- the last line",
    "SELECT l.*, c.Name FROM invoice_lines AS l LEFT JOIN customers AS c USING (CustomerID) "
    "WHERE l.Country <> 'Germany' ORDER BY l.InvoiceDate DESC, l.rowid",
    "WITH recent AS (SELECT * FROM invoice_lines WHERE InvoiceDate >= '2025-01-01') SELECT * FROM recent",
    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3) SELECT * FROM n",
    "(SELECT * FROM a) UNION ALL (SELECT * FROM b)",
    "SELECT * FROM invoice_lines WHERE Description LIKE '%; DROP TABLE x; --%'",
    "SELECT 1 /* ; DELETE FROM invoice_lines; */ AS n",
    "SELECT \"odd; name\" FROM invoice_lines",
]
PG_READS = [
    "SELECT amount::numeric(12, 2), $$it's; DROP TABLE x$$ AS note FROM sales.orders",
    "SELECT * FROM orders WHERE placed_at >= now() - interval '90 days'",
    "SELECT * FROM LATERAL (SELECT 1 AS n) AS s",
]


@pytest.mark.parametrize("query", READS)
@pytest.mark.parametrize("name", ["postgres", "sqlite", None])
def test_a_read_is_accepted(query, name):
    check(query, name)


@pytest.mark.parametrize("query", PG_READS)
def test_postgres_reads_are_accepted(query):
    check(query, "postgres")


@pytest.mark.parametrize(("query", "needle"), [
    ("DROP TABLE victim; COMMIT; SELECT * FROM transactions", "holds 3 statements (DROP, COMMIT, SELECT)"),
    ("SELECT 1; SELECT 2", "holds 2 statements (SELECT, SELECT)"),
    ("WITH gone AS (DELETE FROM t RETURNING *) SELECT * FROM gone", "(DELETE in a WITH clause)"),
    ("WITH n AS (INSERT INTO t VALUES (1) RETURNING *) SELECT * FROM n", "(INSERT in a WITH clause)"),
    ("WITH n AS (UPDATE t SET a = 1 RETURNING *) SELECT * FROM n", "(UPDATE in a WITH clause)"),
    ("WITH n AS (SELECT 1) DELETE FROM t", "DELETE is not allowed"),
    ("SELECT * INTO stolen FROM t", "(SELECT … INTO)"),
    ("SELECT * FROM t FOR UPDATE", "(FOR UPDATE/SHARE)"),
    ("COPY t TO '/tmp/t.csv'", "COPY is not allowed"),
    ("COPY t FROM PROGRAM 'echo 1'", "COPY is not allowed"),
    ("INSERT INTO t VALUES (1)", "INSERT is not allowed"),
    ("UPDATE t SET a = 1", "UPDATE is not allowed"),
    ("TRUNCATE t", "TRUNCATE is not allowed"),
    ("CREATE TABLE x AS SELECT * FROM t", "CREATE is not allowed"),
    ("ALTER TABLE t ADD COLUMN b int", "ALTER is not allowed"),
    ("SET default_transaction_read_only = off", "SET is not allowed"),
    ("BEGIN READ WRITE", "BEGIN is not allowed"),
    ("VACUUM", "VACUUM is not allowed"),
    ("CALL wipe()", "CALL is not allowed"),
    ("GRANT ALL ON t TO PUBLIC", "GRANT is not allowed"),
])
def test_postgres_writes_are_refused(query, needle):
    with pytest.raises(UnsafeQuery) as info:
        check(query, "postgres")
    assert needle in str(info.value), str(info.value)
    assert info.value.fix


@pytest.mark.parametrize(("query", "needle"), [
    ("ATTACH DATABASE 'file:evil.db?mode=rwc' AS evil", "ATTACH is not allowed"),
    ("DETACH DATABASE evil", "DETACH is not allowed"),
    ("PRAGMA query_only = OFF", "PRAGMA is not allowed"),
    ("PRAGMA table_info(t)", "PRAGMA is not allowed"),
    ("REPLACE INTO t VALUES (1)", "REPLACE is not allowed"),
    ("INSERT OR REPLACE INTO t VALUES (1)", "INSERT is not allowed"),
    ("DELETE FROM t RETURNING *", "DELETE is not allowed"),
    ("VACUUM INTO 'copy.db'", "VACUUM is not allowed"),
    ("REINDEX", "REINDEX is not allowed"),
    ("SELECT * FROM t; DROP TABLE t", "holds 2 statements (SELECT, DROP)"),
])
def test_sqlite_writes_are_refused(query, needle):
    with pytest.raises(UnsafeQuery) as info:
        check(query, "sqlite")
    assert needle in str(info.value), str(info.value)


@pytest.mark.parametrize("query", ["", "   ", ";", "-- nothing\n", "/* nothing */"])
def test_no_statement_is_refused(query):
    with pytest.raises(UnsafeQuery, match="holds no SQL statement"):
        check(query, "postgres")


def test_sql_the_parser_cannot_read_is_refused_with_where_it_stopped():
    with pytest.raises(UnsafeQuery) as info:
        check("SELEC * FROM orders", "sqlite")
    assert str(info.value) == ("syntax error (sqlite SQL, line 1, column 12, at 'FROM'); SQL that cannot be "
                               "checked is not sent")
    assert "sql.table" in info.value.fix and "view" in info.value.fix
    with pytest.raises(UnsafeQuery, match="syntax error"):
        check("SELECT 'unterminated", "postgres")
    with pytest.raises(UnsafeQuery, match="syntax error"):   # ATTACH is not PostgreSQL: unreadable, refused
        check("ATTACH 'x.db' AS y", "postgres")


def test_the_fix_says_what_to_write():
    with pytest.raises(UnsafeQuery) as info:
        check("DELETE FROM t", "postgres")
    assert info.value.fix == FIX and "SELECT" in FIX and "sql.table" in FIX
    assert info.value.problem == str(info.value)


def test_a_function_that_writes_is_not_the_parsers_business():
    """nextval() writes, but the statement is a SELECT: the read-only session refuses it (test_sources_sql)."""
    check("SELECT nextval('s') AS n", "postgres")


def test_an_unparsed_command_is_refused_quietly(caplog):
    with caplog.at_level(logging.WARNING), pytest.raises(UnsafeQuery):
        check("REFRESH MATERIALIZED VIEW v", "postgres")
    assert "REFRESH" not in caplog.text   # sqlglot's own warning would echo the SQL to the terminal
    assert logging.getLogger("sqlglot").level == logging.NOTSET


@pytest.mark.parametrize(("url", "name"), [
    ("postgresql+psycopg://shop@db.example.com:5432/sales?options=-csearch_path%3Dpublic", "postgres"),
    ("postgresql://shop@db/sales", "postgres"),
    ("sqlite:///data/raw/shop.db", "sqlite"),
    ("mssql+pyodbc://shop@db/sales", "tsql"),
    ("mariadb+mariadbconnector://shop@db/sales", "mysql"),
    ("nosuchdb://user@host/db", None),
    ("not a url", None),
    ("", None),
])
def test_dialect_of_a_url(url, name):
    assert dialect(url) == name
