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
from reconciler.store.dialects import dialect_of
from reconciler.store.models import database_proxy


def bulk_execute(db: peewee.Database, sql: str, columns: Sequence[peewee.Field],
                 rows: Sequence[tuple[Any, ...]]) -> None:
    """Run one parameterised statement for many rows with the driver's ``executemany``.

    Peewee would render a multi-row VALUES list node by node, which costs more
    than the database's own work; the driver binds a prepared statement per
    row (SQLite) or folds the rows into multi-row INSERTs itself (PyMySQL).
    Values go through each field's ``db_value`` exactly as Peewee would send
    them; the dialect may pre-render them for its driver (MySQL: long strings and
    datetimes as byte-identical literals, faster than PyMySQL's own escaping).
    """
    converters = [None if isinstance(column, _BULK_PASS_THROUGH) else column.db_value
                  for column in columns]
    params: Any = rows
    if any(convert is not None for convert in converters):
        # A generator: the converted copy of a page is never held whole.
        params = (tuple([value if convert is None else convert(value)
                         for convert, value in zip(converters, row, strict=True)])
                  for row in params)
    with peewee.__exception_wrapper__:  # driver errors become Peewee's, as with execute()
        cursor = db.cursor()
        try:
            cursor.executemany(sql, dialect_of(db).bulk_params(cursor, params))
        finally:
            cursor.close()


# Fields whose db_value is the identity for the str/int/None values the store
# builds rows from: skipping the call saves a Python call per value.
_PASS_THROUGH = (peewee.CharField, peewee.TextField, peewee.IntegerField,
                 peewee.BigIntegerField, peewee.ForeignKeyField)
# In bulk rows, dates and datetimes are always date/datetime objects (or None),
# for which Peewee's db_value is the identity too (it only parses strings).
_BULK_PASS_THROUGH = (*_PASS_THROUGH, peewee.DateTimeField, peewee.DateField)


_SQL_CACHE: dict[tuple[Any, ...], str] = {}


def write_many(name: str, columns: Sequence[peewee.Field],
               build: Callable[[Sequence[tuple[Any, ...]], str], Any],
               rows: Sequence[tuple[Any, ...]]) -> None:
    """Insert (or upsert) many rows in the current transaction.

    Dialects with ``bulk_executemany`` (SQLite, MySQL) get one cached statement
    run with the driver's ``executemany``; others (PostgreSQL, where psycopg2's
    executemany is a round trip per row) get Peewee's multi-row statements in
    batches of 500.
    """
    if not rows:
        return
    db = database_proxy.obj
    found = dialect_of(db)
    if found.bulk_executemany:
        bulk_execute(db, statement_for(name, found.name, build, len(columns)), columns, rows)
        return
    for start in range(0, len(rows), 500):
        build(rows[start:start + 500], found.name).execute()


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




class _Slot:
    """A placeholder bound in a statement rendered once; ``field`` converts its value."""

    __slots__ = ("field", "index")

    def __init__(self, index: int, field: peewee.Field | None) -> None:
        self.index = index
        self.field = field


def _as_is(value: Any) -> Any:
    return value


def slot(index: int, field: peewee.Field | None = None) -> peewee.Value:
    """Parameter ``index`` of a cached statement (see :func:`execute_cached`).

    ``field`` is the column whose ``db_value`` the bound value goes through, as
    Peewee would convert it; None binds it unchanged.
    """
    return peewee.Value(_Slot(index, field), converter=_as_is)


_Bind = tuple[int, "peewee.Field | None", Any]  # (slot index or -1, converter field, constant)
_STATEMENTS: dict[tuple[Any, ...], tuple[str, tuple[_Bind, ...]]] = {}


def cached_statement(key: tuple[Any, ...],
                     build: Callable[[], Any]) -> tuple[str, tuple[_Bind, ...]]:
    """The SQL of the query ``build()`` makes from :func:`slot` placeholders, rendered once per key.

    Returns the SQL and, per ``?`` in order, which slot fills it (or the
    constant Peewee rendered there, such as a ``THEN NULL``).
    """
    cached = _STATEMENTS.get(key)
    if cached is None:
        sql, params = build().sql()
        binds = tuple((p.index, p.field, None) if isinstance(p, _Slot) else (-1, None, p)
                      for p in params)
        cached = _STATEMENTS[key] = (str(sql), binds)
    return cached


def execute_cached(name: str, build: Callable[[], Any], values: Sequence[Any],
                   variant: tuple[Any, ...] = ()) -> Any:
    """Run a single-row statement whose SQL Peewee renders once per (name, variant, dialect).

    ``build`` makes the Peewee query with :func:`slot` ``i`` standing for
    ``values[i]``; the values are converted by each slot's field exactly as
    Peewee would, and the statement goes through ``Database.execute_sql`` (so
    it is counted, logged and error-wrapped as any Peewee query). Returns the
    cursor. Rendering is most of a no-change poll's SQL cost; the database's
    own work is the same statement either way.
    """
    db = database_proxy.obj
    sql, binds = cached_statement((name, dialect(db), *variant), build)
    return db.execute_sql(sql, bound(binds, values))


def bound(binds: Sequence[_Bind], values: Sequence[Any]) -> list[Any]:
    """The parameters of a cached statement, in its order, for ``values`` by slot index."""
    params = []
    for index, field, constant in binds:
        if index < 0:
            params.append(constant)
            continue
        value = values[index]
        params.append(value if field is None or isinstance(field, _PASS_THROUGH)
                      else field.db_value(value))
    return params
