"""Delivery: from the outbox to Segment.

Everything that produces events writes them to the outbox (:mod:`.outbox`); a dispatcher
(:mod:`.dispatcher`) claims due events with a lease (:mod:`.claims`), sends them in as few
``/v1/batch`` requests as Segment's limits allow, and settles each outcome
(:mod:`.settlement`, :mod:`.connection_state`), finding messages Segment refuses by
halving (:mod:`.halving`). A runner (:mod:`.runner`) runs dispatchers one lane per
connection, and a delivery backend (:mod:`.backends`) decides where and when: a thread of
the web process, workers, Celery, or a list in memory for tests.
"""
