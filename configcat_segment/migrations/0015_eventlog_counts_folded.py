"""The event counts of hours older than two days, folded into one per connection and status.

The overview then reads a bounded number of counts, however long events are kept (see
configcat_segment.database.counts). On SQLite the events table's count triggers are
replaced (they count a folded hour's events in the folded count) and a trigger on the
counts table folds; on PostgreSQL the function that adds the changes in folds, and no trigger on
the events table changes. The counts are then rebuilt in folded form, as 0012 built them:
on PostgreSQL without blocking writers, and the changes pending there are added in (else
every reader would add them up until writes had them added).

Reversed, the folding stays: what 0014 reads of the counts (totals per connection and
status; the last day hour by hour) is the same either way, and 0012 drops it all.
"""

from typing import Any

from django.db import migrations

from configcat_segment.database import counts
from configcat_segment.database.operations import InstallTriggers


def add_pending_changes(apps: Any, schema_editor: Any) -> None:
    counts.add_all_changes(schema_editor.connection.alias)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("configcat_segment", "0014_delivery_claims"),
    ]

    operations = [
        InstallTriggers(
            "configcat_segment.database.counts.SETS",
            replace={
                "sqlite": [
                    "configcat_segment_count_insert",
                    "configcat_segment_count_update",
                    "configcat_segment_count_delete",
                ]
            },
        ),
        migrations.RunPython(add_pending_changes, migrations.RunPython.noop, elidable=True),
    ]
