"""The substring index on flag keys and user ids, one per database.

PostgreSQL: ``pg_trgm`` GIN indexes on ``flag_key`` and ``user_id``, which serve ``ILIKE``
(the :class:`~configcat_segment.eventlog.search.ILike` lookup; Django's own ``icontains``
compares ``UPPER()`` of the column, which these indexes do not cover). They are built
``CONCURRENTLY`` (migration ``0011``), which never blocks writes.

SQLite: an FTS5 table with the trigram tokenizer over the same two columns. It is an
external-content table (it keeps only the index; the text stays in the events table), kept
in step by three triggers on the events table.

Both find a text of at least three characters (one trigram) anywhere in either column,
whatever its case.
"""

from __future__ import annotations

from typing import Final

from django.contrib.postgres.indexes import GinIndex

from .triggers import TriggerSet

TABLE: Final = "configcat_segment_event_search"
MIN_LENGTH: Final = 3  # a trigram: neither index can look for less


def trigram_index(field: str, name: str) -> GinIndex:
    """A GIN trigram index on ``field``, which serves ``field ILIKE '%text%'``."""
    return GinIndex(fields=[field], opclasses=["gin_trgm_ops"], name=name)


TRIGRAM_INDEXES: Final = {
    "cs_event_flag_trgm": "flag_key",
    "cs_event_user_trgm": "user_id",
}

# -- SQLite ----------------------------------------------------------------------------------

_INSERT = (
    "INSERT INTO configcat_segment_event_search(rowid, flag_key, user_id) "
    "VALUES (new.id, new.flag_key, new.user_id);"
)
_DELETE = (
    "INSERT INTO configcat_segment_event_search"
    "(configcat_segment_event_search, rowid, flag_key, user_id) "
    "VALUES ('delete', old.id, old.flag_key, old.user_id);"
)

SQLITE_TRIGGERS: Final = TriggerSet(
    vendor="sqlite",
    table=TABLE,
    triggers={
        "configcat_segment_event_search_insert": (
            f"AFTER INSERT ON configcat_segment_event BEGIN {_INSERT} END"
        ),
        "configcat_segment_event_search_delete": (
            f"AFTER DELETE ON configcat_segment_event BEGIN {_DELETE} END"
        ),
        "configcat_segment_event_search_update": (
            "AFTER UPDATE OF id, flag_key, user_id ON configcat_segment_event "
            f"BEGIN {_DELETE} {_INSERT} END"
        ),
    },
    # Reads the events table again: right whatever was written while triggers were missing.
    rebuild=[
        "INSERT INTO configcat_segment_event_search(configcat_segment_event_search) "
        "VALUES ('rebuild')"
    ],
)

SQLITE_CREATE: Final = [
    "CREATE VIRTUAL TABLE configcat_segment_event_search USING fts5(flag_key, user_id, "
    "content='configcat_segment_event', content_rowid='id', tokenize='trigram')",
    *SQLITE_TRIGGERS.create(),
    *SQLITE_TRIGGERS.rebuild,
]
SQLITE_DROP: Final = [*SQLITE_TRIGGERS.drop(), "DROP TABLE configcat_segment_event_search"]


def fts_query(term: str) -> str:
    """An FTS5 query for ``term`` as one phrase in either column: a substring, any case."""
    return '{flag_key user_id} : "' + term.replace('"', '""') + '"'
