"""Field-level diffs, event history and event types.

* ``change.fields``: the sorted changed top-level keys of an ``updated`` row
  (JSON text); ``change.diff``: their before/after values (JSON text, long
  values kept whole; the CLI truncates). Both NULL on other kinds and on rows
  written before this migration.
* ``event.event_type``: Google's ``eventType`` (``default`` when absent).
* ``calendar.event_types``: the ``eventTypes`` set the stored sync token was made
  with (JSON text, NULL = every type); a different set forces a full listing.
* ``event_version``: the last ``[store] history`` versions of each event.
"""

import peewee
from playhouse.migrate import migrate

from reconciler.store.dialects import dialect_of


def up(migrator, db):
    dialect = dialect_of(db)
    text = dialect.long_text()
    migrate(
        migrator.add_column("change", "fields", peewee.TextField(null=True)),
        migrator.add_column("change", "diff", text(null=True)),
        migrator.add_column("event", "event_type",
                            peewee.CharField(max_length=64, default="default")),
        migrator.add_column("calendar", "event_types", peewee.TextField(null=True)),
    )

    class Calendar(peewee.Model):
        class Meta:
            database = db
            legacy_table_names = False
            table_name = "calendar"

    class EventVersion(peewee.Model):
        calendar = peewee.ForeignKeyField(Calendar, on_delete="CASCADE", index=False)
        event_id = peewee.CharField(max_length=1024)
        event_key = peewee.CharField(max_length=40)
        change_id = peewee.BigIntegerField(null=True)
        raw = text()
        at = peewee.DateTimeField()

        class Meta:
            database = db
            legacy_table_names = False
            table_name = "event_version"
            indexes = ((("calendar", "event_key", "id"), False),)

    db.create_tables([EventVersion])
    dialect.after_create(db, ["event_version"])
