"""Delivery: moving events from the outbox (the ``Event`` table) to Segment.

``outbox`` writes events and puts them back in the queue; the ``dispatcher`` runs one
round for one connection (claim due events, send them through ``segment``, settle each
as delivered, retried later or dead); the runner and its backends decide where rounds
run (a background thread, ``configcat_segment_worker`` processes, Celery) and wake them
when events are written; ``credentials`` gives a connection a fresh start when its write
key or endpoint changes.
"""
