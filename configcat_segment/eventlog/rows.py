"""A page of events as the page and the JSON API show them, with the per-page work done once.

A page shows 50 events, so whatever is done per row is done 50 times. Per row and field,
``EventSerializer`` (DRF's ``ModelSerializer``) resolved the attribute, asked
``inspect.signature`` whether it was callable, looked the time zone up and reversed the
event's URL; the template looked its URL up and translated its labels per row too. That cost
about 0.4 ms of CPU a row on SQLite: 50 rows cost three times one. Here the URL is reversed,
the labels translated and the time zone read once a page; each row is then a few attribute
reads. ``EventSerializer`` still says what an event looks like (and serves one event, with its
message and receipt): a test holds :func:`events_json` to its output, byte for byte.

The template engine then cost about 0.2 ms a row more, resolving a dozen variables through
``{% include %}``. ``includes/event_row.html`` still says what a row looks like, and a project
may override it; while it is the packaged one, :func:`rows_html` writes the same bytes with
an f-string (a test holds the two together, as for the JSON).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any, Final

from django.conf import settings
from django.template import TemplateDoesNotExist
from django.template.defaultfilters import truncatechars
from django.template.loader import get_template
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import localize
from django.utils.safestring import SafeString, mark_safe
from rest_framework import ISO_8601, serializers
from rest_framework.settings import api_settings

from ..models import Event
from ..models.event import SOURCE_LABELS, event_kind, event_source

# Reversed with this id once, then the id is put in its place for each row.
_ANY_ID = 987654321
ROW_TEMPLATE: Final = "configcat_segment/includes/event_row.html"
_PACKAGED_ROW: Final = Path(__file__).resolve().parent.parent / "templates" / ROW_TEMPLATE
ERROR_SHOWN: Final = 120  # characters of the last error in a row (``truncatechars``)


def detail_url() -> Callable[[int], str]:
    """``url(pk)``: an event's page in the event log, from one ``reverse()``."""
    head, _, tail = reverse("configcat_segment:event_detail", args=[_ANY_ID]).partition(
        str(_ANY_ID)
    )
    return lambda pk: f"{head}{pk}{tail}"


@dataclass(frozen=True)
class Labels:
    """The translated labels a page shows, looked up once (in the active language)."""

    status: dict[str, str]
    source: dict[str, str]

    @classmethod
    def current(cls) -> Labels:
        return cls(
            status={str(value): str(label) for value, label in Event.Status.choices},
            source={key: str(label) for key, label in SOURCE_LABELS.items()},
        )


@dataclass(frozen=True)
class EventRow:
    """One row of the event log's table: the event, and what it shows already worked out."""

    event: Event
    url: str
    created: str  # as ``{{ event.created_at|date:"Y-m-d H:i:s" }}`` shows it
    status_display: str
    source_display: str


def event_rows(events: Iterable[Event]) -> list[EventRow]:
    """The rows of the event log's table."""
    url = detail_url()
    labels = Labels.current()
    seconds = _seconds_in(timezone.get_current_timezone() if settings.USE_TZ else None)
    return [
        EventRow(
            event=event,
            url=url(event.pk),
            created=seconds(event.created_at),
            status_display=labels.status.get(event.status, event.status),
            source_display=labels.source.get(event.source, ""),
        )
        for event in events
    ]


def _seconds_in(zone: dt.tzinfo | None) -> Callable[[dt.datetime], str]:
    """``moment`` in ``zone`` (the current time zone) as ``Y-m-d H:i:s``: what the ``date``
    filter writes, without parsing the format or looking the zone up for every row."""

    def seconds(moment: dt.datetime) -> str:
        if zone is not None and moment.utcoffset() is not None:  # as templates show them
            moment = moment.astimezone(zone)
        return (
            f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d} "
            f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}"
        )

    return seconds


def row_template_is_packaged() -> bool:
    """Whether ``event_row.html`` is this app's own (else a project overrides it)."""
    try:
        origin = get_template(ROW_TEMPLATE).origin  # type: ignore[attr-defined]
    except TemplateDoesNotExist:  # pragma: no cover - the app ships it
        return False
    return Path(str(origin.name)).resolve() == _PACKAGED_ROW


def rows_html(rows: Sequence[EventRow]) -> SafeString:
    """What ``{% include "…/event_row.html" with event=row.event %}`` writes for each row,
    with the packaged template: every value escaped as the template escapes it."""
    # Numbers as the template localizes them (a thousands separator only if configured).
    number: Callable[[int], str] = localize if settings.USE_THOUSAND_SEPARATOR else str
    return mark_safe(  # noqa: S308 - every value below is escaped
        "".join(
            f'<tr data-event-id="{escape(number(event.pk))}">\n'
            f'  <td class="nowrap"><a href="{escape(row.url)}" data-field="created_at">'
            f"{escape(row.created)}</a></td>\n"
            f'  <td data-field="connection">{escape(event.connection.name)}</td>\n'
            f'  <td><span data-field="kind">{escape(event.kind)}</span> '
            f'<small class="cs-source" data-field="source_display">'
            f"{escape(row.source_display)}</small></td>\n"
            f'  <td data-field="flag_key"><code>{escape(event.flag_key)}</code></td>\n'
            f'  <td data-field="user_id">{escape(event.user_id)}</td>\n'
            f'  <td><span class="cs-badge cs-status-{escape(event.status)}" '
            f'data-field="status">{escape(row.status_display)}</span></td>\n'
            f'  <td class="cs-number" data-field="attempts">{escape(number(event.attempts))}'
            "</td>\n"
            f'  <td class="cs-error" data-field="last_error" title="{escape(event.last_error)}">'
            f"{escape(_shortened(event.last_error))}</td>\n"
            "</tr>\n"
            for row in rows
            for event in [row.event]
        )
    )


def _shortened(text: str) -> str:
    """``text|truncatechars:120``; short ASCII text (most errors) as it is, which is what
    the filter returns for it, without reading it a character at a time."""
    if len(text) <= ERROR_SHOWN and text.isascii():
        return text
    return str(truncatechars(text, ERROR_SHOWN))


def _moments() -> Callable[[dt.datetime | None], str | None]:
    """``DateTimeField().to_representation`` as DRF formats a datetime (ISO 8601, "Z" for
    UTC, the API's DATETIME_FORMAT), with the current time zone read once rather than once
    a value, and the usual case (an aware datetime, ISO 8601) written out."""
    zone = timezone.get_current_timezone() if settings.USE_TZ else None
    drf: Callable[[dt.datetime], str] = serializers.DateTimeField(
        default_timezone=zone
    ).to_representation
    output = api_settings.DATETIME_FORMAT
    iso = zone is not None and output is not None and output.lower() == ISO_8601

    def moment(value: dt.datetime | None) -> str | None:
        if value is None:  # what DRF answers for it too
            return None
        if not iso or value.utcoffset() is None:  # naive: DRF's errors and all
            return drf(value)
        text = value.astimezone(zone).isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text

    return moment


# What events_json() reads of each event (with ``pk``): list_events(fields=JSON_FIELDS).
JSON_FIELDS: Final = (
    "created_at",
    "connection_id",
    "connection__name",
    "type",
    "event_name",
    "flag_key",
    "user_id",
    "message_id",
    "status",
    "attempts",
    "next_attempt_at",
    "last_error",
    "queued_at",
    "delivered_at",
    "source_marker",
)


def events_json(events: Iterable[Any]) -> list[dict[str, Any]]:
    """The events as ``EventSerializer(events, many=True).data`` has them, in its order,
    from the rows of ``list_events(fields=JSON_FIELDS)``."""
    url = detail_url()
    labels = Labels.current()
    moment = _moments()
    return [
        {
            "id": event.pk,
            "url": url(event.pk),
            "created_at": moment(event.created_at),
            "connection": {"id": str(event.connection_id), "name": event.connection__name},
            "kind": event_kind(event.type, event.event_name),
            "change_source": source,
            "source_display": labels.source.get(source, ""),
            "type": event.type,
            "event_name": event.event_name,
            "flag_key": event.flag_key,
            "user_id": event.user_id,
            "message_id": event.message_id,
            "status": event.status,
            "status_display": labels.status.get(event.status, event.status),
            "attempts": event.attempts,
            "next_attempt_at": moment(event.next_attempt_at),
            "last_error": event.last_error,
            "queued_at": moment(event.queued_at),
            "delivered_at": moment(event.delivered_at),
        }
        for event in events
        for source in [event_source(event.event_name, event.source_marker)]
    ]
