"""Validators for what users type: shared by the model, the admin form and the commands."""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError

from .conf import endpoint_policy, setting_path
from .constants import SIGNING_KEY_PREFIX
from .segment.addresses import host_refusal
from .segment.regions import InvalidEndpoint, normalise_endpoint

_WHITESPACE = re.compile(r"\s")


def _control_character(value: str) -> str | None:
    """The first control character in ``value`` (line breaks and tabs included), if any."""
    return next((c for c in value if unicodedata.category(c) == "Cc"), None)


def validate_single_line(value: str) -> None:
    """One line of text: names and ids shown in pages, logs and commands' output."""
    character = _control_character(value)
    if character is not None:
        raise ValidationError(
            "Enter one line of text without control characters (this has %(character)s).",
            code="control_characters",
            params={"character": repr(character)},
        )


def validate_write_key(value: str) -> None:
    if not value:
        raise ValidationError("Enter the write key of the Segment source.", code="required")
    validate_single_line(value)
    if _WHITESPACE.search(value):
        raise ValidationError(
            "A Segment write key has no spaces or line breaks; check what was pasted.",
            code="whitespace",
        )
    if len(value) < 8:
        raise ValidationError("This is too short to be a Segment write key.", code="short")


def validate_signing_key(value: str) -> None:
    if not value:
        return
    validate_single_line(value)
    if _WHITESPACE.search(value):
        raise ValidationError(
            "A ConfigCat signing key has no spaces or line breaks; check what was pasted.",
            code="whitespace",
        )
    if not value.startswith(SIGNING_KEY_PREFIX) or len(value) <= len(SIGNING_KEY_PREFIX):
        raise ValidationError(
            f"ConfigCat webhook signing keys start with {SIGNING_KEY_PREFIX!r}; copy the whole "
            "key from the webhook's page in ConfigCat.",
            code="prefix",
        )


def validate_endpoint(value: str) -> None:
    if not value:
        return
    try:
        url = normalise_endpoint(value)
    except InvalidEndpoint as exc:
        raise ValidationError(str(exc), code="endpoint") from exc
    host = urlsplit(url).hostname or ""
    problem = endpoint_policy().host_problem(host)
    if problem:
        # Names are resolved, and checked again, when sending (DNS may answer differently).
        raise ValidationError(
            f"{host_refusal(host, problem)}: events would be sent there from this server, "
            f"write key included. If that is intended, allow it with "
            f"{setting_path('ALLOWED_ENDPOINT_HOSTS')}.",
            code="endpoint_not_allowed",
        )
