"""Watch mode: failed ``events.watch`` attempts back off; channel work is claimed per calendar.

A calendar whose watch fails (push unsupported, 403, any API error) is polled
as usual; ``channel.retry_after`` keeps the process from asking Google again
every cycle and ``channel.failures`` lets the wait grow.
``calendar.watch_owner``/``watch_until`` is a short claim, taken with a
conditional UPDATE while a process opens, renews or stops a calendar's
channel, so two ``run`` processes never open two channels for one calendar;
it is separate from the sync lease so channel work never delays a sync.
"""

import peewee
from playhouse.migrate import migrate


def up(migrator, db):
    migrate(
        migrator.add_column("channel", "retry_after", peewee.DateTimeField(null=True)),
        migrator.add_column("channel", "failures", peewee.IntegerField(default=0)),
        migrator.add_column("calendar", "watch_owner", peewee.CharField(max_length=255, null=True)),
        migrator.add_column("calendar", "watch_until", peewee.DateTimeField(null=True)),
    )
