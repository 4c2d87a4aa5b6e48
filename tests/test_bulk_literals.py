"""The MySQL bulk path renders the same SQL literals PyMySQL would, only faster.

``reconciler.store.bulk`` escapes long strings with ``str.replace`` and renders
datetimes itself; a byte of difference would store different text, so the
escaping is compared with PyMySQL's own for arbitrary text and instants.
"""

from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st
from pymysql.converters import escape_date, escape_datetime, escape_string

from reconciler.store.dialects.mysql import _Literal, _mysql_escape, _mysql_literals

SPECIAL = st.sampled_from(["\\", "\0", "\n", "\r", "\x1a", "'", '"', "é", "\u2028", "\udfff"])
TEXT = st.lists(st.one_of(SPECIAL, st.text(max_size=5)), max_size=60).map("".join)


@given(TEXT)
def test_escape_equals_pymysql(text: str) -> None:
    assert _mysql_escape(text) == escape_string(text)


class _Conn:
    server_status = 0

    def __init__(self) -> None:
        self.encoders: dict[type, object] = {}


@given(st.tuples(TEXT, st.datetimes(), st.dates(), st.integers() | st.none()))
def test_rows_render_as_pymysql_would(row: tuple[object, ...]) -> None:
    (out,) = list(_mysql_literals(_Conn(), [row]))
    text, when, day, number = row
    assert isinstance(text, str) and isinstance(when, dt.datetime) and isinstance(day, dt.date)
    rendered = [v.sql if isinstance(v, _Literal) else v for v in out]
    expected_text = f"'{escape_string(text)}'" if len(text) >= 64 else text
    assert rendered == [expected_text, escape_datetime(when), escape_date(day), number]


def test_no_backslash_escapes_mode_keeps_pymysql_path() -> None:
    conn = _Conn()
    conn.server_status = 512  # SERVER_STATUS_NO_BACKSLASH_ESCAPES
    rows = [("x" * 100, dt.datetime(2024, 1, 1))]
    assert _mysql_literals(conn, rows) is rows
