"""The private attributes of the ConfigCat SDK and of segment-analytics-python this app
reads, all of them here: neither library has a public way to tell what is needed.

- **Is a ConfigCat client still open?** ``configcatclient.close_all()`` closes every client
  and forgets it; the SDK has no ``is_closed()``, and ``configcatclient.get(key)`` would
  make a new client rather than say. The SDK's registry of clients
  (``ConfigCatClient._instances``, by ``client._sdk_key``) tells.
- **Is a callback already registered for flag evaluations?** ``Hooks`` can add a
  callback but not list them (``Hooks._on_flag_evaluated_callbacks``); closing a client
  empties that list, so a record of our own would go stale.
- **Dropping Segment's pooled connections after fork().**
  ``segment.analytics.request.post`` sends through one module-level ``requests`` session
  (``_session``) that nothing public reaches; a child process must not reuse the sockets
  it inherited from its parent.
- **Sending our requests through our own session.** The same ``_session`` is looked up by
  ``post`` on every call, so :mod:`.segment.network` puts a stand-in there that hands our
  requests to a guarded session and everyone else's to the library's own.

The dependencies are pinned below their next major version (``configcat-client<11``,
``segment-analytics-python<3``), and ``tests/test_compat.py`` fails, naming the attribute,
when an upgrade changes any of these.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from configcatclient.configcatclient import ConfigCatClient
from segment.analytics import request as segment_request


def configcat_client_is_open(client: Any) -> bool:
    """Whether ``client`` is still the SDK's client for its key (not closed since)."""
    return ConfigCatClient._instances.get(client._sdk_key) is client


def flag_evaluated_callbacks(client: Any) -> Sequence[Callable[..., Any]]:
    """The callbacks ``client`` calls for every flag evaluation (the SDK's own list)."""
    callbacks: list[Callable[..., Any]] = client.get_hooks()._on_flag_evaluated_callbacks
    return tuple(callbacks)


def close_segment_connections() -> None:
    """Close the connections segment-analytics-python keeps alive; its session stays usable."""
    segment_request._session.close()


def segment_session() -> Any:
    """The session ``segment.analytics.request.post`` sends through (or its stand-in)."""
    return segment_request._session


def replace_segment_session(session: Any) -> None:
    """Make ``segment.analytics.request.post`` send through ``session`` from now on."""
    segment_request._session = session
