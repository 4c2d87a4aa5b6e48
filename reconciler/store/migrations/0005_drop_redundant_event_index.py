"""Drop ``event(calendar_id)``: the unique ``(calendar_id, event_key)`` index covers it.

Every event insert maintained both; the composite index serves every lookup
by calendar (and MySQL's foreign key) on its own.
"""

from reconciler.store.dialects import dialect_of


def up(migrator, db):
    # MySQL: ALTER TABLE, so InnoDB lets the foreign key use the composite index instead.
    dialect_of(db).drop_index(migrator, db, "event", "event_calendar_id")
