"""Delivery: moving events from the outbox (the ``Event`` table) to Segment.

``outbox`` writes events and puts them back in the queue; the ``dispatcher`` runs one
round for one connection: ``claims`` takes due events with a lease, the dispatcher sends
them through ``segment``, finding the messages Segment refuses by ``halving``, and the
round (``settlement``) settles each as delivered, retried later or dead, pausing the
connection or marking it unhealthy (``connection_state``). The ``runner`` runs rounds one
lane per connection, and the delivery ``backends`` decide where and when (a background
thread, ``configcat_segment_worker`` processes, Celery, a list in memory for tests);
``credentials`` gives a connection a fresh start when its write key or endpoint changes.
"""
