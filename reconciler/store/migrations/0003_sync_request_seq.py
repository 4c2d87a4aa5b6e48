"""Count "sync soon" requests per calendar, so none is lost to a pass already running.

A timestamp alone cannot tell a request made during a pass from the one the
pass is answering (MySQL DATETIME keeps whole seconds): ``request_sync``
bumps this counter, a pass remembers the value it started from and clears the
request only if the counter did not move meanwhile.
"""

import peewee


def up(migrator, db):
    migrator.migrate(
        migrator.add_column("calendar", "sync_request_seq", peewee.BigIntegerField(default=0)))
