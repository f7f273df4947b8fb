"""What the ORM does not express: the event log's search index, in SQL each database runs.

``operations`` holds the migration operation that runs SQL on one database only; ``search``
the substring index on flag keys and user ids (trigram GIN indexes on PostgreSQL, an FTS5
trigram table kept in step by triggers on SQLite).
"""
