"""Text from outside, made storable. Pure functions: no Django, no I/O.

Webhook bodies and headers, flag keys, user ids, evaluated values, command arguments and
search terms all come from outside, and some of what arrives cannot be stored: NUL
(PostgreSQL refuses it in text and JSON) and lone surrogates (no database can encode one,
and a JSON body may well contain ``"\\ud800"``). Every boundary cleans or refuses text with
these functions, so they all agree on what "storable" means.
"""

from __future__ import annotations

from typing import Final

NUL: Final = "\x00"
REPLACEMENT: Final = "\ufffd"


def clean(text: str) -> str:
    """``text`` made storable as database text and JSON.

    NUL becomes U+FFFD, and so does a lone surrogate. A surrogate pair left as two code
    points is joined into the character it stands for.
    """
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text.replace(NUL, REPLACEMENT) if NUL in text else text


def is_clean(text: str) -> bool:
    """Whether ``text`` is stored as it is (:func:`clean` leaves it unchanged)."""
    return clean(text) == text


def contains_nul(text: str) -> bool:
    """Whether ``text`` has a NUL character, which no stored text has (:func:`clean`)."""
    return NUL in text
