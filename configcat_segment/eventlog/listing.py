"""One page of the event log from query parameters: what the page and the JSON API share."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.db.models.fields.json import KT
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.translation import gettext as _

from ..conf import get_settings
from ..models import Event, SegmentConnection
from .filters import EventFilter, parse
from .pagination import Cursor, InvalidCursor, Page, paginate

CURSOR_PARAM = "cursor"

# A row shows its connection's name only; the connection's other columns (a dozen, most of
# them datetimes to convert) would be read and converted once per row, for nothing.
CONNECTION_NOT_SHOWN = tuple(
    f"connection__{field.name}"
    for field in SegmentConnection._meta.concrete_fields
    if not field.primary_key and field.name != "name"
)


@dataclass(frozen=True)
class Listing:
    filter: EventFilter
    errors: dict[str, str]
    page: Page[Any]  # events, or named tuples (see list_events)

    def query_string(self, cursor: Cursor | None = None) -> str:
        """``?…`` for this filter at ``cursor`` (the first page when None)."""
        params = dict(self.filter.params)
        if cursor is not None:
            params[CURSOR_PARAM] = cursor.encode()
        return "?" + urlencode(params) if params else "?"


def read_filter(params: Mapping[str, str]) -> tuple[EventFilter, dict[str, str]]:
    """The filter in ``params``, times read in the current time zone, and its errors."""
    return parse(params, timezone.get_current_timezone())


def list_events(
    params: Mapping[str, str], *, size: int | None = None, fields: Sequence[str] | None = None
) -> Listing:
    """The events ``params`` ask for: filters, a cursor, and errors for what was not valid.

    Invalid filters are left out and reported; an invalid cursor shows the first page. With
    ``fields``, the page's items are named tuples of ``pk`` and those fields (``values_list``)
    rather than events: what a page that shows only values reads, without building two model
    instances a row (the event and its connection).
    """
    event_filter, errors = read_filter(params)
    cursor = None
    if raw := (params.get(CURSOR_PARAM) or "").strip():
        try:
            cursor = Cursor.decode(raw)
        except InvalidCursor:
            errors[CURSOR_PARAM] = _(
                "This page link is not valid (it may have been cut short); "
                "showing the newest events instead."
            )
    # Event.source, without loading the message.
    marked = Event.objects.annotate(source_marker=KT("payload__properties__source"))
    events = event_filter.rows(
        marked.select_related("connection").defer("payload", *CONNECTION_NOT_SHOWN)
        if fields is None
        else marked.values_list("pk", *fields, named=True)
    )
    page = paginate(events, cursor, size or get_settings().EVENT_LOG_PAGE_SIZE)
    return Listing(filter=event_filter, errors=errors, page=page)
