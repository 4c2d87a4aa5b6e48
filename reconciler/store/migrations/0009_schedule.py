"""The adaptive schedule's plan, in the calendar rows (``[sync] schedule = "adaptive"``).

``change_rate`` (changes per second) and ``rate_weight`` (seconds of decayed
observation behind it) are the calendar's change-rate estimate, updated in
the same UPDATE that records a pass (``reconciler.schedule.estimate``);
``planned_interval`` (seconds) is what the fleet's last replanning gave the
calendar. In the database, so the plan survives restarts and every ``run``
process on the database spends one budget together.
"""

import peewee
from playhouse.migrate import migrate


def up(migrator, db):
    migrate(migrator.add_column("calendar", "change_rate", peewee.FloatField(null=True)),
            migrator.add_column("calendar", "rate_weight", peewee.FloatField(null=True)),
            migrator.add_column("calendar", "planned_interval", peewee.FloatField(null=True)))
