"""Mail the site's ``ADMINS`` when a connection turns unhealthy or events go dead.

Off unless ``CONFIGCAT_SEGMENT["ALERT_EMAILS"]`` is on. At most one mail per connection per
``ALERT_INTERVAL_SECONDS``, whatever happens meanwhile and however many processes see it:
the first to claim the connection's key in the ``ALERT_CACHE`` cache (an atomic
``cache.add``) sends, the others stay quiet until the key expires. The mail says what
happened and links to the connection's events in the event log (absolute when ``SITE_URL``
is set).

The mails listen to the app's signals, ``event_dead`` and ``connection_unhealthy``, which
are also the hook for any other channel (Slack, PagerDuty, …): see ``docs/operations.md``.
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from django.core.cache import caches
from django.core.mail import mail_admins
from django.urls import NoReverseMatch, reverse
from django.utils.http import urlencode

from ..conf import AppSettings, get_settings
from ..models import Event, SegmentConnection
from ..signals import connection_unhealthy, event_dead

logger = logging.getLogger(__name__)

SUBJECT_PREFIX = "configcat_segment: "
_ERROR_CHARS = 500


def cache_key(connection_id: uuid.UUID | str) -> str:
    return f"configcat_segment:alert:{connection_id}"


def claim(connection_id: uuid.UUID | str, settings: AppSettings) -> bool:
    """True for the first caller per connection per interval (across processes when the
    cache is shared), False while an alert for it was sent less than an interval ago."""
    cache = caches[settings.ALERT_CACHE]
    return bool(cache.add(cache_key(connection_id), 1, timeout=settings.ALERT_INTERVAL_SECONDS))


def event_log_url(connection_id: uuid.UUID | str, settings: AppSettings, **params: str) -> str:
    try:
        path = reverse("configcat_segment:event_list")
    except NoReverseMatch:
        return ""
    url = path + "?" + urlencode({"connection": str(connection_id), **params})
    return settings.SITE_URL.rstrip("/") + url if settings.SITE_URL else url


def send(connection: SegmentConnection, subject: str, lines: Sequence[str], link: str) -> bool:
    """Mail ``ADMINS`` about ``connection`` unless it was alerted on within the interval.

    Returns whether a mail was sent. Never raises: a mail that cannot be sent is logged.
    """
    settings = get_settings()
    if not settings.ALERT_EMAILS or not claim(connection.pk, settings):
        return False
    minutes = settings.ALERT_INTERVAL_SECONDS / 60
    paragraphs = [
        *lines,
        f"Event log: {link}" if link else "",
        f"Further alerts about “{connection.name}” are held back for {minutes:g} minutes "
        "(ALERT_INTERVAL_SECONDS); the event log and the health endpoint show the current "
        "state.",
    ]
    body = "\n\n".join(paragraph for paragraph in paragraphs if paragraph)
    try:
        mail_admins(SUBJECT_PREFIX + subject, body, fail_silently=False)
    except Exception:
        logger.exception("configcat_segment: the alert mail about %s could not be sent", connection)
        # Not sent, so not throttled: the next alert about it tries again.
        caches[settings.ALERT_CACHE].delete(cache_key(connection.pk))
        return False
    return True


# -- receivers ---------------------------------------------------------------------------


def on_unhealthy(
    sender: Any, connection: SegmentConnection, reason: str = "", **kwargs: Any
) -> None:
    settings = get_settings()
    if not settings.ALERT_EMAILS:
        return
    send(
        connection,
        f"“{connection.name}” is unhealthy",
        [
            f"Segment refuses the connection “{connection.name}” (endpoint "
            f"{connection.endpoint}): its events wait until this is fixed.",
            f"Segment's answer: {_short(reason)}" if reason else "",
            "Usual causes: a wrong or revoked write key (copy it again from Segment: "
            "Connections → Sources → your source → Settings → API Keys), or a custom "
            "endpoint that is not a Segment Tracking API. Saving the corrected connection "
            "in the admin sends its waiting events at once.",
        ],
        event_log_url(connection.pk, settings, status=Event.Status.FAILED),
    )


def on_dead(sender: Any, events: Sequence[Event] = (), **kwargs: Any) -> None:
    settings = get_settings()
    if not settings.ALERT_EMAILS or not events:
        return
    by_connection: dict[Any, list[Event]] = defaultdict(list)
    for event in events:
        by_connection[event.connection_id].append(event)
    connections = SegmentConnection.objects.in_bulk(list(by_connection))
    for connection_id, dead in by_connection.items():
        connection = connections.get(connection_id)
        if connection is None:
            continue
        count = len(dead)
        noun = "event is" if count == 1 else "events are"
        send(
            connection,
            f"{count} {noun} dead on “{connection.name}”",
            [
                f"{count} {noun} dead on “{connection.name}”: they will not be retried "
                "and Segment does not have them.",
                f"Last error: {_short(dead[-1].last_error)}" if dead[-1].last_error else "",
                "Once the cause is fixed, retry them from the event log (same messageId, so "
                "nothing is duplicated in Segment).",
            ],
            event_log_url(connection.pk, settings, status=Event.Status.DEAD),
        )


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _ERROR_CHARS else text[: _ERROR_CHARS - 1] + "…"


def connect_signals() -> None:
    uid = "configcat_segment.operations.alerts"
    connection_unhealthy.connect(on_unhealthy, dispatch_uid=uid)
    event_dead.connect(on_dead, dispatch_uid=uid)
