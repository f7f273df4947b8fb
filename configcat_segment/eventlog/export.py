"""The event log as a download: the filtered list as CSV, or as JSON Lines with each message.

Streamed: rows are read a chunk at a time by keyset (newest first, as the page lists them)
and written out as they come, so a download of any size holds one chunk in memory and
runs no long query or transaction.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Iterable, Iterator
from typing import Any, Final

from django.http import StreamingHttpResponse
from django.utils import timezone

from ..constants import FLAG_CHANGED, FLAG_EVALUATED
from ..models import Event, SegmentConnection
from .filters import EventFilter
from .pagination import Window

CHUNK: Final = 1_000

COLUMNS: Final = (
    "id",
    "created_at",
    "connection_id",
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
)
# The CSV's header: the columns, the connection's name and the kind after its id and type.
CSV_HEADER: Final = (
    *COLUMNS[:3],
    "connection",
    "kind",
    *COLUMNS[3:],
)
FORMATS: Final = {
    "csv": "text/csv; charset=utf-8",
    "jsonl": "application/jsonl; charset=utf-8",
}
# A spreadsheet runs a cell that starts with one of these as a formula.
FORMULA_START: Final = ("=", "+", "-", "@", "\t", "\r")


def response(event_filter: EventFilter, fmt: str) -> StreamingHttpResponse:
    """The events ``event_filter`` shows, all of them, as a ``fmt`` download (csv, jsonl)."""
    columns = (*COLUMNS, "payload") if fmt == "jsonl" else COLUMNS
    rows = chunks(event_filter.rows(Event.objects.values_list(*columns)))
    names = dict(SegmentConnection.objects.values_list("pk", "name"))
    lines = csv_lines(rows, names) if fmt == "csv" else jsonl_lines(rows, names)
    stream = StreamingHttpResponse((text.encode() for text in lines), content_type=FORMATS[fmt])
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    stream["Content-Disposition"] = f'attachment; filename="events-{stamp}.{fmt}"'
    return stream


def chunks(window: Window[tuple[Any, ...]]) -> Iterator[list[tuple[Any, ...]]]:
    """Every row of ``window``, newest first, ``CHUNK`` at a time (the id first in each)."""
    bound = None
    while rows := window(bound, False, CHUNK):
        yield rows
        bound = rows[-1][0]


def kind(type_: str, event_name: str) -> str:
    """What ``Event.kind`` says, from the two columns."""
    if type_ == Event.Type.IDENTIFY:
        return "identify"
    return {FLAG_CHANGED: "changed", FLAG_EVALUATED: "evaluated"}.get(event_name, event_name)


def moment(value: dt.datetime | None) -> str:
    """UTC ISO 8601, or empty."""
    if value is None:
        return ""
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def cell(value: Any) -> Any:
    """A text a spreadsheet shows as text: one it would run as a formula gets a ``'``."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def csv_lines(rows: Iterable[list[tuple[Any, ...]]], names: dict[Any, str]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_HEADER)
    for chunk in rows:
        for row in chunk:
            record = dict(zip(COLUMNS, row, strict=False))
            writer.writerow(
                [
                    record["id"],
                    moment(record["created_at"]),
                    record["connection_id"],
                    cell(names.get(record["connection_id"], "")),
                    kind(record["type"], record["event_name"]),
                    record["type"],
                    cell(record["event_name"]),
                    cell(record["flag_key"]),
                    cell(record["user_id"]),
                    cell(record["message_id"]),
                    record["status"],
                    record["attempts"],
                    moment(record["next_attempt_at"]),
                    cell(record["last_error"]),
                    moment(record["queued_at"]),
                    moment(record["delivered_at"]),
                ]
            )
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()


def jsonl_lines(rows: Iterable[list[tuple[Any, ...]]], names: dict[Any, str]) -> Iterator[str]:
    for chunk in rows:
        lines = []
        for row in chunk:
            record = dict(zip((*COLUMNS, "payload"), row, strict=True))
            connection = record.pop("connection_id")
            message = record.pop("payload")
            for name in ("created_at", "next_attempt_at", "queued_at", "delivered_at"):
                record[name] = moment(record[name]) or None
            record["connection"] = {"id": str(connection), "name": names.get(connection, "")}
            record["kind"] = kind(record["type"], record["event_name"])
            record["message"] = message
            lines.append(json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n")
        yield "".join(lines)
