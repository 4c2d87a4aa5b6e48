"""Initial schema: accounts, calendars, events, the change feed, channels.

A frozen copy of the models as they were when this migration was written, so
later model edits never change what this step creates.
"""

import peewee

from reconciler.store.dialects import dialect_of


class LongTextField(peewee.TextField):
    field_type = "LONGTEXT"


def up(migrator, db):
    class Base(peewee.Model):
        class Meta:
            database = db
            legacy_table_names = False

    class Account(Base):
        name = peewee.CharField(max_length=255, unique=True)
        state = peewee.CharField(max_length=32, default="ok")
        last_error = peewee.TextField(null=True)
        next_auth_retry = peewee.DateTimeField(null=True)
        primary_calendar_id = peewee.CharField(max_length=1024, null=True)
        calendar_list_sync_token = peewee.TextField(null=True)

    class Calendar(Base):
        calendar_id = peewee.CharField(max_length=1024)
        calendar_key = peewee.CharField(max_length=40, unique=True)
        account = peewee.CharField(max_length=255)
        summary = peewee.TextField(null=True)
        source = peewee.CharField(max_length=16, default="config")
        removed = peewee.BooleanField(default=False)
        gone = peewee.BooleanField(default=False)
        sync_token = peewee.TextField(null=True)
        token_updated_at = peewee.DateTimeField(null=True)
        updated_min_cursor_ms = peewee.BigIntegerField(null=True)
        last_mode = peewee.CharField(max_length=16, null=True)
        last_full_sync = peewee.DateTimeField(null=True)
        last_attempt = peewee.DateTimeField(null=True)
        last_success = peewee.DateTimeField(null=True)
        last_error = peewee.TextField(null=True)
        last_error_kind = peewee.CharField(max_length=64, null=True)
        consecutive_failures = peewee.IntegerField(default=0)
        next_due = peewee.DateTimeField(null=True)
        sync_requested_at = peewee.DateTimeField(null=True)
        interval = peewee.IntegerField(null=True)
        lease_owner = peewee.CharField(max_length=255, null=True)
        lease_expires = peewee.DateTimeField(null=True)

    class Event(Base):
        calendar = peewee.ForeignKeyField(Calendar, on_delete="CASCADE")
        event_id = peewee.CharField(max_length=1024)
        event_key = peewee.CharField(max_length=40)
        etag = peewee.CharField(max_length=255)
        status = peewee.CharField(max_length=32)
        sequence = peewee.IntegerField(null=True)
        updated_ms = peewee.BigIntegerField(null=True)
        summary = peewee.TextField(null=True)
        start_utc = peewee.DateTimeField(null=True)
        end_utc = peewee.DateTimeField(null=True)
        start_date = peewee.DateField(null=True)
        end_date = peewee.DateField(null=True)
        recurring_event_id = peewee.CharField(max_length=1024, null=True)
        original_start = peewee.CharField(max_length=64, null=True)
        raw = LongTextField()
        mirrored_at = peewee.DateTimeField()

        class Meta:
            indexes = ((("calendar", "event_key"), True),)

    class Change(Base):
        id = peewee.BigIntegerField(primary_key=True)
        calendar = peewee.ForeignKeyField(Calendar, on_delete="CASCADE")
        event_id = peewee.CharField(max_length=1024)
        kind = peewee.CharField(max_length=16)
        etag = peewee.CharField(max_length=255)
        at = peewee.DateTimeField()

    class Counter(Base):
        name = peewee.CharField(max_length=32, primary_key=True)
        value = peewee.BigIntegerField(default=0)

    class Channel(Base):
        calendar = peewee.ForeignKeyField(Calendar, on_delete="CASCADE")
        channel_id = peewee.CharField(max_length=64, unique=True)
        resource_id = peewee.CharField(max_length=255, null=True)
        expiration = peewee.DateTimeField(null=True)
        owner = peewee.CharField(max_length=255, null=True)
        state = peewee.CharField(max_length=16, default="open")
        last_message_number = peewee.BigIntegerField(default=0)
        created_at = peewee.DateTimeField()
        error = peewee.TextField(null=True)

    tables = [Account, Calendar, Event, Change, Counter, Channel]
    db.create_tables(tables)
    dialect_of(db).after_create(db, [model._meta.table_name for model in tables])
    Counter.insert(name="change", value=0).execute()
