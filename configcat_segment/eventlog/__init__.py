"""The event log: every event, what exactly was sent, and repairing what failed.

``filters`` and ``pagination`` read the query parameters, ``listing`` joins them into a page,
``overview`` and ``chart`` summarise, ``actions`` retry and replay, ``views`` and ``api``
serve it as HTML and as JSON.
"""
