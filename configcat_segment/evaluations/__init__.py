"""Flag evaluations, from the ConfigCat SDK's ``on_flag_evaluated`` hook to the outbox.

``client`` builds the process's ConfigCat client from settings and attaches the hook;
``hook`` decides cheaply, in the evaluating thread, what is worth sending (``dedup``
drops repeats), using what ``context`` knows about the current request and ``users`` about
its user; the recorded evaluations wait in memory (``buffer``) and are written in bulk,
off the request thread, as "Feature Flag Evaluated" and ``identify`` messages
(``payloads``) into the outbox (``store``). Nothing here talks to Segment: ``delivery``
does.
"""
