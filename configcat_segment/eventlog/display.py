"""Showing stored data to people: JSON pretty-printed, raw bodies as text. Pure."""

from __future__ import annotations

import json
from typing import Any


def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


def body_text(body: bytes | memoryview) -> str:
    """A raw request body as text: pretty-printed when it is JSON, as received otherwise."""
    text = bytes(body).decode("utf-8", errors="replace")
    try:
        return pretty_json(json.loads(text))
    except (ValueError, RecursionError):  # not JSON, or nested too deep to show as such
        return text
