"""The ``occurrence`` table: every occurrence of every live event inside a window.

One row per occurrence (recurring series expanded, exceptions substituted,
cancelled instances left out) whose span meets the calendar's window, kept in
``occurrence_window`` (one row per calendar). Unique per calendar, series and
instance (which also finds a series' rows to replace). ``series_key`` and
``instance_key`` are SHA-1s of the ids, like ``event_key``: ids can be 1,024
bytes, which MySQL cannot index in utf8mb4. All-day occurrences carry their
dates and, in ``start_utc``/``end_utc``, the UTC midnights of those dates, so
one index answers "everything overlapping [from, to)" for both kinds.
"""

import peewee

from reconciler.store.dialects import dialect_of


def up(migrator, db):
    class Calendar(peewee.Model):
        class Meta:
            database = db
            legacy_table_names = False
            table_name = "calendar"

    class Occurrence(peewee.Model):
        calendar = peewee.ForeignKeyField(Calendar, on_delete="CASCADE", index=False)
        series_id = peewee.CharField(max_length=1024)
        series_key = peewee.CharField(max_length=40)
        instance_id = peewee.TextField()
        instance_key = peewee.CharField(max_length=40)
        start_utc = peewee.DateTimeField()
        end_utc = peewee.DateTimeField()
        start_date = peewee.DateField(null=True)
        end_date = peewee.DateField(null=True)
        all_day = peewee.BooleanField(default=False)
        status = peewee.CharField(max_length=32)
        from_exception = peewee.BooleanField(default=False)
        summary = peewee.TextField(null=True)

        class Meta:
            database = db
            legacy_table_names = False
            table_name = "occurrence"
            indexes = (
                (("calendar", "series_key", "instance_key"), True),
                (("calendar", "start_utc", "end_utc"), False),
                (("start_utc", "end_utc"), False),
            )

    class OccurrenceWindow(peewee.Model):
        calendar = peewee.ForeignKeyField(Calendar, on_delete="CASCADE", unique=True)
        window_start = peewee.DateTimeField()
        window_end = peewee.DateTimeField()

        class Meta:
            database = db
            legacy_table_names = False
            table_name = "occurrence_window"

    db.create_tables([Occurrence, OccurrenceWindow])
    dialect_of(db).after_create(db, ("occurrence", "occurrence_window"))
