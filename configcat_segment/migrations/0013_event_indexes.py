"""Fewer index writes per event: every index on the events table has a page or a query that
needs it (see the model's Meta).

- The connection's own index goes: ``cs_event_conn_newest`` starts with the same column.
- The receipt's index becomes partial (``cs_event_receipt``): evaluations, most events,
  have no receipt and are no longer written to it.
- On PostgreSQL, the ``varchar_pattern_ops`` index Django adds next to the unique
  ``message_id`` goes: nothing looks a messageId up by prefix.
- "Dead events of one flag key" gets a partial index (``cs_event_flag_dead``), which an
  event enters once, when it dies: writing and delivering events never touch it.

Non-atomic: on PostgreSQL every index is built and dropped ``CONCURRENTLY``, never
blocking writes to the events table, and the new indexes are built before the old ones go. Should a build fail half-way, PostgreSQL keeps an invalid index: drop it
(``DROP INDEX CONCURRENTLY name``) and migrate again. No table is rebuilt, on SQLite either.
"""

import django.db.models.deletion
from django.db import migrations, models

from configcat_segment.migration_operations import (
    AddIndexWithoutLocking,
    DropFieldIndexWithoutLocking,
)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("configcat_segment", "0012_eventlog_counts"),
    ]

    operations = [
        AddIndexWithoutLocking(
            model_name="event",
            index=models.Index(
                condition=models.Q(("status", "dead")),
                fields=["flag_key", "-id"],
                name="cs_event_flag_dead",
            ),
        ),
        AddIndexWithoutLocking(
            model_name="event",
            index=models.Index(
                condition=models.Q(("receipt__isnull", False)),
                fields=["receipt"],
                name="cs_event_receipt",
            ),
        ),
        migrations.SeparateDatabaseAndState(
            database_operations=[DropFieldIndexWithoutLocking("event", "receipt")],
            state_operations=[
                migrations.AlterField(
                    model_name="event",
                    name="receipt",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="events",
                        to="configcat_segment.webhookreceipt",
                        verbose_name="webhook receipt",
                    ),
                ),
            ],
        ),
        DropFieldIndexWithoutLocking("event", "message_id", like=True),
        migrations.SeparateDatabaseAndState(
            database_operations=[DropFieldIndexWithoutLocking("event", "connection")],
            state_operations=[
                migrations.AlterField(
                    model_name="event",
                    name="connection",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="events",
                        to="configcat_segment.segmentconnection",
                    ),
                ),
            ],
        ),
    ]
