"""Refusals: requests the app answers with an error, as REST framework exceptions.

The webhook view renders each as ``{"error": code, "detail": message}`` with its status,
and stores nothing of the request.
"""

from __future__ import annotations

from rest_framework.exceptions import APIException

from .conf import setting_path


class WebhookRejected(APIException):
    """A request that is not a verified webhook: nothing of it is stored.

    ``code`` is machine-readable (``bad_signature``, ``stale_timestamp``, ...), ``message``
    names the problem for whoever set the webhook up, ``status`` is the HTTP status.
    """

    status_code = 400
    default_code = "rejected"

    def __init__(self, code: str, message: str, *, status: int = 400) -> None:
        super().__init__(detail=message, code=code)
        self.code = code
        self.message = message
        self.status_code = status

    @property
    def status(self) -> int:
        return self.status_code


class UnknownConnection(WebhookRejected):
    """The webhook URL names no Segment connection (or it was deleted meanwhile)."""

    def __init__(self) -> None:
        super().__init__(
            "unknown_connection", "No Segment connection has this webhook URL.", status=404
        )


class BodyTooLarge(WebhookRejected):
    """The body is over ``WEBHOOK_MAX_BODY_BYTES``; refused without reading it whole."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            "body_too_large",
            f"The body is larger than {limit:,} bytes ({setting_path('WEBHOOK_MAX_BODY_BYTES')}).",
            status=413,
        )
