"""Validators for what users type: shared by the model, the admin form and the commands."""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError

from .constants import SIGNING_KEY_PREFIX
from .segment.regions import InvalidEndpoint, normalise_endpoint

_WHITESPACE = re.compile(r"\s")


def validate_write_key(value: str) -> None:
    if not value:
        raise ValidationError("Enter the write key of the Segment source.", code="required")
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
        normalise_endpoint(value)
    except InvalidEndpoint as exc:
        raise ValidationError(str(exc), code="endpoint") from exc
