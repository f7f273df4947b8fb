"""Search on flag keys and user ids, part 1: what the indexes need.

PostgreSQL: the ``pg_trgm`` extension (trusted since PostgreSQL 13: the database owner may
create it). SQLite: an FTS5 trigram table, its triggers, and the index of the events
already stored. PostgreSQL's indexes follow in 0011, built concurrently.
"""

from django.db import migrations

from configcat_segment.database import search
from configcat_segment.database.operations import OnVendor


class Migration(migrations.Migration):
    dependencies = [
        ("configcat_segment", "0009_lean_indexes"),
    ]

    operations = [
        OnVendor("postgresql", "django.contrib.postgres.operations.TrigramExtension"),
        OnVendor(
            "sqlite",
            "django.db.migrations.operations.RunSQL",
            sql=search.SQLITE_CREATE,
            reverse_sql=search.SQLITE_DROP,
        ),
    ]
