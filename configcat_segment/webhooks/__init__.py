"""ConfigCat's change webhooks, from the HTTP request to "Feature Flag Changed" events.

``views`` is the REST framework endpoint: ``parsers`` keeps the raw body the signature
covers, ``authentication`` checks that signature (``signing``: pure validators) with the
signing keys of the connection the URL names. A verified request is stored first and then
processed by ``receipts`` (store, process, reprocess), which reads the body with ``body``
(tolerant parsing; ``rendering`` writes bodies as ConfigCat does) and builds the messages with
``changed``, then puts them in the outbox (``delivery.outbox``).
"""
