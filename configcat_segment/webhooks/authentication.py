"""ConfigCat's webhook signature as a REST framework authentication class.

ConfigCat has no token and no user: what authenticates a webhook is its signature (V1),
checked (:func:`.signing.verify`) against the signing keys of the connection whose URL it
was sent to, over the raw body (:mod:`.parsers`). A verified request is authenticated
with an anonymous ``request.user`` and a :class:`SignedWebhook` as ``request.auth``; any
other is refused with a :class:`~configcat_segment.exceptions.WebhookRejected`. There is
no CSRF check: that belongs to session authentication, which a webhook never uses.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from django.contrib.auth.models import AnonymousUser
from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request

from ..conf import get_settings
from ..models import SegmentConnection
from .parsers import raw_body
from .signing import VerifiedWebhook, verify


class WebhookEndpoint(Protocol):
    """What the authentication needs of the view it authenticates for."""

    # Seconds since the epoch.
    clock: Callable[[], float]

    def get_connection(self) -> SegmentConnection:
        """The connection the URL names; raises ``UnknownConnection`` (404) when none."""
        ...


@dataclass(frozen=True)
class SignedWebhook:
    """What authentication established: whose webhook, its id and time, and its body."""

    connection: SegmentConnection
    verified: VerifiedWebhook
    raw_body: bytes


class ConfigCatSignatureAuthentication(BaseAuthentication):
    """Authenticates a ConfigCat webhook by its signature; never answers "anonymous".

    In order: the connection (404 when the URL names none), the body (413 over the
    limit), then the signature chain (400 / 403 naming the problem). The view provides
    the connection and the clock (``request.parser_context["view"]``, where REST framework
    keeps it).
    """

    def authenticate(self, request: Request) -> tuple[AnonymousUser, SignedWebhook]:
        view: WebhookEndpoint = request.parser_context["view"]
        connection = view.get_connection()
        body = raw_body(request)
        settings = get_settings()
        verified = verify(
            request.headers,
            body,
            keys=connection.signing_keys,
            now=view.clock(),
            tolerance=settings.WEBHOOK_TOLERANCE_SECONDS,
            allow_unsigned=settings.ALLOW_UNSIGNED_WEBHOOKS,
        )
        return AnonymousUser(), SignedWebhook(connection, verified, body)
