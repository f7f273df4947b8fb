"""ConfigCat feature flag changes and evaluations, forwarded to Twilio Segment.

``get_client``, ``aget_client``, ``forward_evaluations``, ``flush`` and
``without_forwarding`` are imported on first use, so importing the package loads neither
Django models nor the ConfigCat SDK.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .version import __version__

__all__ = [
    "__version__",
    "aget_client",
    "flush",
    "forward_evaluations",
    "get_client",
    "without_forwarding",
]

if TYPE_CHECKING:
    from .evaluations.buffer import flush
    from .evaluations.client import aget_client, forward_evaluations, get_client
    from .evaluations.context import without_forwarding

_LAZY = {
    "get_client": "evaluations.client",
    "aget_client": "evaluations.client",
    "forward_evaluations": "evaluations.client",
    "flush": "evaluations.buffer",
    "without_forwarding": "evaluations.context",
}


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"{__name__}.{module_name}"), name)
