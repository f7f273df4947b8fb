"""Evaluations: from ``get_value`` to the outbox.

The process's ConfigCat client (:mod:`.client`) calls the hook (:mod:`.hook`) on every
evaluation; it skips repeats (:mod:`.dedup`) and records what it needs, with the request's
context (:mod:`.context`, :mod:`.users`). Recorded evaluations wait in a buffer
(:mod:`.buffer`) and are written in bulk, off the request thread, as Segment messages
(:mod:`.payloads`) into the outbox (:mod:`.store`).
"""
