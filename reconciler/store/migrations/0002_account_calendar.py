"""Which account can see which calendar (from config or calendarList).

Needed to decide, every pass, the one account that syncs a calendar several
accounts can see, and to hand it to the next one when that account loses access.
"""

import peewee

from reconciler.store.dialects import dialect_of


def up(migrator, db):
    class AccountCalendar(peewee.Model):
        account = peewee.CharField(max_length=255)
        calendar_id = peewee.CharField(max_length=1024)
        calendar_key = peewee.CharField(max_length=40)
        summary = peewee.TextField(null=True)
        access_role = peewee.CharField(max_length=32, null=True)
        primary = peewee.BooleanField(default=False)
        visible = peewee.BooleanField(default=True)

        class Meta:
            database = db
            legacy_table_names = False
            table_name = "account_calendar"
            indexes = ((("account", "calendar_key"), True),)

    db.create_tables([AccountCalendar])
    dialect_of(db).after_create(db, ["account_calendar"])
