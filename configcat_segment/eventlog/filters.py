"""The event log's filters: query parameters in, a validated filter out.

:func:`parse` is pure (no database, no request): it turns the query parameters of the page
or of the JSON API into an :class:`EventFilter` plus one message per parameter it could
not use. :meth:`EventFilter.apply` narrows a queryset lazily; it runs no query itself.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

from django.db import connections
from django.db.models import Q, QuerySet
from django.utils.formats import number_format
from django.utils.text import Truncator
from django.utils.translation import gettext_lazy as _

from ..constants import EXPERIMENT_VIEWED, FLAG_CHANGED, FLAG_EVALUATED
from ..models import Event
from ..text import contains_nul
from . import search as search_index
from .pagination import Window, keyset

# The query parameters, in the order the page shows them.
PARAMS: Final = ("connection", "kind", "status", "flag_key", "user_id", "since", "until", "q")

KINDS: Final = {
    "changed": _("Changed"),
    "evaluated": _("Evaluated"),
    "experiment": _("Experiment viewed"),
    "identify": _("Identify"),
}

_KIND_LOOKUPS: Final = {
    "changed": Q(type=Event.Type.TRACK, event_name=FLAG_CHANGED),
    "evaluated": Q(type=Event.Type.TRACK, event_name=FLAG_EVALUATED),
    "experiment": Q(type=Event.Type.TRACK, event_name=EXPERIMENT_VIEWED),
    "identify": Q(type=Event.Type.IDENTIFY),
}

# Every value is bounded before it is read: the text filters, and the rest (a time or an
# id is never longer than this), so that a link built from a filter stays short.
MAX_TEXT_LENGTH: Final = 255
MAX_MOMENT_LENGTH: Final = 40
MAX_LENGTHS: Final = {
    "connection": 45,  # a UUID, as urn:uuid:{...} at the longest
    "kind": 40,
    "status": 40,
    "since": MAX_MOMENT_LENGTH,
    "until": MAX_MOMENT_LENGTH,
}
# How much of a value an error message repeats.
ECHO_LENGTH: Final = 40

R = TypeVar("R")  # what a queryset's rows are (models, tuples)


@dataclass(frozen=True)
class EventFilter:
    """What the event log shows. Empty values mean "any"."""

    connection: uuid.UUID | None = None
    kind: str = ""
    status: str = ""
    flag_key: str = ""
    user_id: str = ""
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    search: str = ""
    # The parameters as the user wrote them (valid ones only), to build links with.
    params: Mapping[str, str] = field(default_factory=dict, compare=False)

    @property
    def is_active(self) -> bool:
        return bool(self.params)

    def apply(self, queryset: QuerySet[Event]) -> QuerySet[Event]:
        """``queryset`` narrowed to the events this filter shows (lazy: no query runs)."""
        narrowed = self.narrow(queryset)
        if not self.search:
            return narrowed
        return narrowed.filter(search_index.condition(self.search, connections[queryset.db].vendor))

    def rows(self, queryset: QuerySet[Event, R]) -> Window[R]:
        """The events this filter shows, read by keyset (see ``pagination``): what a page or
        an export reads. A search walks its index (see ``search``)."""
        narrowed = self.narrow(queryset)
        if not self.search:
            return keyset(narrowed)
        others = any(name != "q" for name in self.params)
        return search_index.window(narrowed, self.search, narrowed=others)

    def narrow(self, queryset: QuerySet[Event, R]) -> QuerySet[Event, R]:
        """``queryset`` narrowed by every filter but the search."""
        lookups = Q()
        if self.connection is not None:
            lookups &= Q(connection_id=self.connection)
        if self.kind:
            lookups &= _KIND_LOOKUPS[self.kind]
        if self.status:
            lookups &= Q(status=self.status)
        if self.flag_key:
            lookups &= Q(flag_key=self.flag_key)
        if self.user_id:
            lookups &= Q(user_id=self.user_id)
        if self.since is not None:
            lookups &= Q(created_at__gte=self.since)
        if self.until is not None:
            lookups &= Q(created_at__lt=self.until)
        return queryset.filter(lookups)


def parse(params: Mapping[str, str], tz: dt.tzinfo = dt.UTC) -> tuple[EventFilter, dict[str, str]]:
    """The filter ``params`` describe, and a message for each parameter that was not valid.

    An invalid parameter is left out of the filter (and out of ``params``), so a caller that
    acts on the filter must check the errors first. Times without an offset are read in
    ``tz``; a bare date in ``until`` means up to the end of that day.
    """
    errors: dict[str, str] = {}
    valid: dict[str, str] = {}
    values: dict[str, Any] = {}
    for name in PARAMS:
        limit = MAX_LENGTHS.get(name, MAX_TEXT_LENGTH)
        if len(raw := str(params.get(name) or "").strip()) > limit:
            errors[name] = too_long(limit, len(raw))

    def text(name: str) -> str:
        return "" if name in errors else str(params.get(name) or "").strip()

    if raw := text("connection"):
        try:
            values["connection"] = uuid.UUID(raw)
            valid["connection"] = str(values["connection"])
        except ValueError:
            errors["connection"] = str(
                _("“%(value)s” is not a connection id.") % {"value": echo(raw)}
            )

    for name, choices in (("kind", KINDS), ("status", dict(Event.Status.choices))):
        if raw := text(name):
            if raw in choices:
                values[name] = valid[name] = raw
            else:
                errors[name] = str(
                    _("“%(value)s” is not one of: %(choices)s.")
                    % {"value": echo(raw), "choices": ", ".join(choices)}
                )

    for name, attribute in (("flag_key", "flag_key"), ("user_id", "user_id"), ("q", "search")):
        if raw := text(name):
            if contains_nul(raw):
                # No stored text contains one (they are replaced when written), and
                # PostgreSQL refuses it in a query.
                errors[name] = str(_("A NUL character cannot be searched for."))
            elif name == "q" and len(raw) < search_index.MIN_LENGTH:
                errors[name] = str(
                    _(
                        "Search for at least %(min)d characters; for a shorter flag key or "
                        "user id, use its exact filter."
                    )
                    % {"min": search_index.MIN_LENGTH}
                )
            else:
                values[attribute] = valid[name] = raw

    for name in ("since", "until"):
        if raw := text(name):
            try:
                values[name] = parse_moment(raw, tz, end_of_day=name == "until")
                valid[name] = raw
            except ValueError:
                errors[name] = str(
                    _("“%(value)s” is not a date or time such as 2025-05-01 or 2025-05-01T14:30.")
                    % {"value": echo(raw)}
                )
    since, until = values.get("since"), values.get("until")
    if isinstance(since, dt.datetime) and isinstance(until, dt.datetime) and since >= until:
        errors["until"] = str(_("The end of the time range must be after its start."))
        del values["until"], valid["until"]

    return EventFilter(params={n: valid[n] for n in PARAMS if n in valid}, **values), errors


def too_long(limit: int, length: int) -> str:
    return str(
        _("At most %(max)s characters, not %(length)s.")
        % {"max": limit, "length": number_format(length, force_grouping=True)}
    )


def echo(value: str) -> str:
    """``value`` as an error message repeats it: the start of it, when it is long."""
    return Truncator(value).chars(ECHO_LENGTH)


def parse_moment(raw: str, tz: dt.tzinfo, *, end_of_day: bool = False) -> dt.datetime:
    """An aware datetime from ISO-8601 text. ``end_of_day``: a bare date means the next midnight.

    Raises ``ValueError`` for anything else, including moments the database cannot hold
    (``9999-12-31`` as an end of day, or a time zone pushing ``0001-01-01`` out of range).
    """
    text = raw.strip()
    try:
        if len(text) == 10:
            day = dt.date.fromisoformat(text)
            if end_of_day:
                day += dt.timedelta(days=1)
            moment = dt.datetime.combine(day, dt.time(), tzinfo=tz)
        elif "T" in text or " " in text:
            moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
            moment = moment if moment.tzinfo else moment.replace(tzinfo=tz)
        else:
            raise ValueError(raw)
        # Stored as UTC: a moment that cannot be converted cannot be compared either.
        moment.astimezone(dt.UTC)
    except OverflowError as exc:
        raise ValueError(raw) from exc
    return moment
