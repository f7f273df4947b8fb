"""Talking to Twilio Segment: everything this app knows about Segment's Tracking API.

``payloads`` builds every message sent (``track``, ``identify``: one shared ``context``,
UTC timestamps, JSON-safe values, deterministic ``messageId``), ``batching`` splits them into
``/v1/batch`` requests within Segment's limits, ``retry`` decides what an answer means and
when to try again, ``regions`` names the endpoints, and ``transport`` is the only module
that speaks HTTP to Segment (through segment-analytics-python). All but ``transport`` are
pure functions, free of Django and I/O.
"""
