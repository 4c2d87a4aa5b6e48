"""``calendar.lease_since``: when the current sync lease was taken.

``status`` shows the syncs in flight (calendars whose lease is held now) with
their owner and since when; renewals move ``lease_expires`` but never this.
"""

import peewee
from playhouse.migrate import migrate


def up(migrator, db):
    migrate(migrator.add_column("calendar", "lease_since", peewee.DateTimeField(null=True)))
