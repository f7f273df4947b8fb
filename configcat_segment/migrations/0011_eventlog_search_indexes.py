"""Search on flag keys and user ids, part 2: PostgreSQL's trigram indexes.

Built ``CONCURRENTLY``, so events are written and delivered while they are built; that
needs a migration outside a transaction. Should a build fail half-way, PostgreSQL keeps an
invalid index: drop it (``DROP INDEX CONCURRENTLY cs_event_flag_trgm``) and migrate again.
"""

from django.db import migrations

from configcat_segment.database import search
from configcat_segment.database.operations import OnVendor


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("configcat_segment", "0010_eventlog_search"),
    ]

    operations = [
        OnVendor(
            "postgresql",
            "django.contrib.postgres.operations.AddIndexConcurrently",
            model_name="event",
            index=search.trigram_index(field, name),
        )
        for name, field in search.TRIGRAM_INDEXES.items()
    ]
