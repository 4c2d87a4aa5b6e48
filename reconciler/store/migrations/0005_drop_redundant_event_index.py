"""Drop ``event(calendar_id)``: the unique ``(calendar_id, event_key)`` index covers it.

Every event insert maintained both; the composite index serves every lookup
by calendar (and MySQL's foreign key) on its own.
"""

import peewee


def up(migrator, db):
    if isinstance(db, peewee.MySQLDatabase):
        # InnoDB lets the foreign key use the composite index instead.
        db.execute_sql("ALTER TABLE `event` DROP INDEX `event_calendar_id`")
    else:
        migrator.migrate(migrator.drop_index("event", "event_calendar_id"))
