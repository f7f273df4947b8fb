"""The "Feature Flag Changed" messages a webhook's change becomes, and the fields they are
made of. Pure functions: no Django, no I/O.

ConfigCat's variables are read here: who made the change (``##ChangedBy##``), which product
(the first segment of ``##URL##``) and the notes and details with their line breaks tidied.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from ..constants import FLAG_CHANGED
from ..segment import payloads
from .body import Change, SettingChange


class ChangeMessage(NamedTuple):
    flag_key: str
    message: dict[str, Any]


# -- reading the fields -------------------------------------------------------------------

# What separates an email from the name around it. Tokens are split on these, once and in
# linear time: a search for "word@word" backtracks quadratically on a long run without @.
_SEPARATORS = re.compile(r"[\s<>()\[\]\"',;:]+")
_BRACKETS = re.compile(r"[()<>\[\]]")


def split_changed_by(changed_by: str) -> tuple[str, str]:
    """``##ChangedBy##`` as (full name, email); either may be empty.

    ConfigCat does not document the format; "Jane Doe (jane@example.com)",
    "Jane Doe <jane@example.com>", a bare email and a bare name all work.
    """
    token = next(
        (t for t in _SEPARATORS.split(changed_by) if t.find("@") not in (-1, 0, len(t) - 1)),
        "",
    )
    rest = changed_by.replace(token, " ", 1) if token else changed_by
    name = " ".join(_BRACKETS.sub(" ", rest).split()).strip(" ,;:-\"'")
    return name, token.rstrip(".")


def product_id_from_url(url: str) -> str:
    """The product id: the first path segment of ``##URL##``, or "" when there is none.

    ConfigCat's links look like ``https://app.configcat.com/{product}/{config}/{env}``.
    """
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return ""
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return ""
    segments = [segment for segment in parts.path.split("/") if segment]
    return segments[0] if segments else ""


def normalise_line_breaks(text: str) -> str:
    """CRLF and CR as LF, without the line breaks ConfigCat puts around the text."""
    return text.replace("\r\n", "\n").replace("\r", "\n").strip("\n")


# -- the messages -------------------------------------------------------------------------


def flag_changed_messages(
    change: Change,
    *,
    key: str,
    timestamp: dt.datetime,
    salt: str,
    product_id: str,
    product_name: str,
    fallback_user_id: str,
) -> list[ChangeMessage]:
    """One "Feature Flag Changed" message per setting change (one for the whole change
    when it lists none).

    ``key`` identifies the webhook (its id); with ``salt`` and each message's position it
    makes the deterministic ``messageId``, so a reprocessed webhook sends the same ids.
    ``product_id`` and ``fallback_user_id`` are used when the webhook has no product id
    in its URL and no changer's email.
    """
    full_name, email = split_changed_by(change.changed_by)
    shared = {
        "change_notes": normalise_line_breaks(change.change_notes),
        "product_id": product_id_from_url(change.url) or product_id,
        "product_name": product_name,
        "config_id": change.config_id,
        "config_name": change.config_name,
        "environment_id": change.environment_id,
        "environment_name": change.environment_name,
        "url": change.url,
        "user_email": email,
        "user_full_name": full_name,
    }
    return [
        ChangeMessage(
            setting.setting_key,
            payloads.track(
                event=FLAG_CHANGED,
                properties={
                    "feature_flag_key": setting.setting_key,
                    "details": normalise_line_breaks(setting.details),
                    **shared,
                },
                user_id=email or fallback_user_id,
                timestamp=timestamp,
                message_id=payloads.message_id(salt, key, position),
            ),
        )
        for position, setting in enumerate(change.settings or (SettingChange(),))
    ]
