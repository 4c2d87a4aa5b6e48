"""Many rows, one parameterised statement: the driver's ``executemany`` on the hot path.

Peewee renders a multi-row ``VALUES`` list node by node, which on a page of
2,500 events costs more than the database's own work. Here the statement is
rendered once by Peewee (so dialect quirks such as ``ON CONFLICT`` versus
``ON DUPLICATE KEY UPDATE`` stay Peewee's), cached, and bound per row by the
driver: SQLite steps a prepared statement, PyMySQL folds the rows into
multi-row INSERTs itself.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import peewee

from reconciler.store.db import dialect
from reconciler.store.models import database_proxy


def bulk_execute(db: peewee.Database, sql: str, columns: Sequence[peewee.Field],
                 rows: Sequence[tuple[Any, ...]]) -> None:
    """Run one parameterised statement for many rows with the driver's ``executemany``.

    Peewee would render a multi-row VALUES list node by node, which costs more
    than the database's own work; the driver binds a prepared statement per
    row (SQLite) or folds the rows into multi-row INSERTs itself (PyMySQL).
    Values go through each field's ``db_value`` exactly as Peewee would send them.
    """
    converters = [None if isinstance(column, _PASS_THROUGH) else column.db_value
                  for column in columns]
    if all(convert is None for convert in converters):
        params: Any = rows
    else:  # a generator: the converted copy of a page is never held whole
        params = (tuple([value if convert is None else convert(value)
                         for convert, value in zip(converters, row, strict=True)])
                  for row in rows)
    with peewee.__exception_wrapper__:  # driver errors become Peewee's, as with execute()
        cursor = db.cursor()
        try:
            cursor.executemany(sql, params)
        finally:
            cursor.close()


# Fields whose db_value is the identity for the str/int/None values the store
# builds rows from: skipping the call saves a Python call per value.
_PASS_THROUGH = (peewee.CharField, peewee.TextField, peewee.IntegerField,
                 peewee.BigIntegerField, peewee.ForeignKeyField)

_SQL_CACHE: dict[tuple[Any, ...], str] = {}


def write_many(name: str, columns: Sequence[peewee.Field],
               build: Callable[[Sequence[tuple[Any, ...]], str], Any],
               rows: Sequence[tuple[Any, ...]]) -> None:
    """Insert (or upsert) many rows in the current transaction.

    SQLite and MySQL get one cached statement run with the driver's
    ``executemany``; PostgreSQL (where psycopg2's executemany is a round trip
    per row) gets Peewee's multi-row statements in batches of 500.
    """
    if not rows:
        return
    db = database_proxy.obj
    kind = dialect(db)
    if kind in ("sqlite", "mysql"):
        bulk_execute(db, statement_for(name, kind, build, len(columns)), columns, rows)
        return
    for start in range(0, len(rows), 500):
        build(rows[start:start + 500], kind).execute()


def cached_sql(key: tuple[Any, ...], render: Callable[[], Any], params: int) -> str:
    """The SQL text of a query Peewee renders once per ``key`` (name, dialect, width).

    Rendering is the cost on the hot path, not the database's work; the
    parameter count is checked so a literal that crept in can never misalign
    the values bound later.
    """
    sql = _SQL_CACHE.get(key)
    if sql is None:
        sql, bound = render().sql()
        if len(bound) != params:
            raise RuntimeError(f"statement {key}: expected {params} parameters, got {len(bound)}")
        _SQL_CACHE[key] = sql
    return str(sql)


def statement_for(name: str, kind: str,
                  build: Callable[[Sequence[tuple[Any, ...]], str], Any], width: int) -> str:
    """The SQL text of a one-row statement Peewee renders, cached per dialect."""
    return cached_sql((name, kind), lambda: build([tuple(range(width))], kind), width)


