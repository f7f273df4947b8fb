# The last-delivery index becomes partial: an event enters it when it is delivered, not
# when it is written. Built and dropped CONCURRENTLY on PostgreSQL (see
# configcat_segment/migration_operations.py), so the upgrade never blocks writes to the
# events table; the new index is built before the old one goes, so the event log's
# overview always has one.

from django.db import migrations, models

from configcat_segment.migration_operations import (
    AddIndexWithoutLocking,
    RemoveIndexWithoutLocking,
)


class Migration(migrations.Migration):

    atomic = False

    dependencies = [
        ('configcat_segment', '0008_exposure_policies'),
    ]

    operations = [
        AddIndexWithoutLocking(
            model_name='event',
            index=models.Index(condition=models.Q(('delivered_at__isnull', False)), fields=['connection', 'delivered_at'], name='cs_event_conn_delivered_at'),
        ),
        RemoveIndexWithoutLocking(
            model_name='event',
            name='cs_event_conn_delivered',
        ),
    ]
