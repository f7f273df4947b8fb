"""What the ORM does not express, in SQL each database runs: the event log's search index
and its event counts, kept in step with the events table by the database itself.

``search``: the substring index on flag keys and user ids (trigram GIN indexes on
PostgreSQL, an FTS5 trigram table kept in step by triggers on SQLite). ``counts``: event
counts per connection, hour and status, kept exact by triggers. ``triggers``: what a set of
triggers is; ``repair``: putting missing ones back after ``migrate``. ``operations``: the
migration operations that install all this without stopping writers. ``connections``: how
the app's background loops (delivery, the evaluation writer) keep their connections from
one turn to the next.
"""
