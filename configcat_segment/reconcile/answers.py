"""Reading ConfigCat's audit-log answers: pure functions, no I/O.

An answer is a JSON array of items (older API versions) or a page, ``{"paging": {...},
"data": [...]}`` (newer ones); :func:`read_page` reads either, and :func:`parse_entry`
checks each item field by field. Whatever cannot be read becomes an :class:`AuditLogError`
with a ``kind`` and a message fit to show an operator: the caller concludes nothing from an
answer it could not read whole. :mod:`.client` does the asking.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Final

from ..text import clean

MAX_PAGE_SIZE: Final = 100

# Error kinds: how the connection's reconciliation health reads them.
CREDENTIALS: Final = "credentials"  # 401 / 403: the credential is wrong or not allowed
NOT_FOUND: Final = "not_found"  # 404: no such product (or not visible to the credential)
RATE_LIMITED: Final = "rate_limited"  # 429 longer than the caller can wait
UNAVAILABLE: Final = "unavailable"  # no answer, a timeout, 5xx
REFUSED: Final = "refused"  # another 4xx: ConfigCat refused the request as made
MALFORMED: Final = "malformed"  # an answer that cannot be read whole


class AuditLogError(Exception):
    """The audit log could not be read; nothing may be concluded from this attempt."""

    def __init__(self, kind: str, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.retry_after = retry_after


@dataclass(frozen=True)
class AuditEntry:
    """One audit-log item, as ConfigCat documents it (``AuditLogItemModel``)."""

    audit_log_id: int
    at: dt.datetime  # auditLogDateTime, UTC
    type: str = ""
    change_set_id: str = ""
    truncated: bool = False  # ConfigCat cut ``details``
    user_email: str = ""
    user_name: str = ""
    where: str = ""
    why: str = ""
    action_target: str = ""
    details: str = ""


_TEXT_FIELDS: Final = {
    "auditLogType": "type",
    "changeSetId": "change_set_id",
    "userEmail": "user_email",
    "userName": "user_name",
    "where": "where",
    "why": "why",
    "actionTarget": "action_target",
    "details": "details",
}


def parse_entry(item: Any, position: int) -> AuditEntry:
    """One item of an answer, checked field by field; raises :class:`AuditLogError`."""
    where = f"item {position}"
    if not isinstance(item, dict):
        raise malformed(f"{where} is not a JSON object")
    log_id = item.get("auditLogId")
    if isinstance(log_id, bool) or not isinstance(log_id, int):
        raise malformed(f"{where} has no whole-number auditLogId (got {log_id!r:.40})")
    where = f"item {position} (auditLogId {log_id})"
    at = parse_utc(item.get("auditLogDateTime"))
    if at is None:
        raise malformed(f"{where} has no readable auditLogDateTime")
    texts: dict[str, str] = {}
    for name, attribute in _TEXT_FIELDS.items():
        value = item.get(name)
        if name == "auditLogType" and value is None:
            value = item.get("auditLogTypeEnum")
        if value is not None and not isinstance(value, str):
            raise malformed(f"{where}: {name} is not a string")
        texts[attribute] = clean(value or "")
    truncated = item.get("truncated")
    if truncated is not None and not isinstance(truncated, bool):
        raise malformed(f"{where}: truncated is not true or false")
    return AuditEntry(audit_log_id=log_id, at=at, truncated=bool(truncated), **texts)


def parse_utc(value: Any) -> dt.datetime | None:
    """An ISO-8601 date-time as an aware UTC datetime (naive means UTC), or None."""
    if not isinstance(value, str):
        return None
    try:
        moment = dt.datetime.fromisoformat(value.strip())
        if moment.tzinfo is None:
            return moment.replace(tzinfo=dt.UTC)
        return moment.astimezone(dt.UTC)
    except (ValueError, OverflowError):  # OverflowError: beyond year 1 or 9999 in UTC
        return None


def read_page(data: Any, page: int) -> tuple[list[Any], int | None]:
    """The items of one answer (page number ``page``), and the page size to ask for the
    next page in (None: this was the last)."""
    if isinstance(data, list):
        return data, None
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise malformed("expected a JSON array of items, or an object with a data array")
    paging = data.get("paging")
    if paging is None:
        return data["data"], None
    if not isinstance(paging, dict):
        raise malformed("paging is not a JSON object")
    current = paging.get("currentPage", page)
    if current != page:
        raise malformed(f"asked for page {page}, got page {current!r:.20}")
    has_next = paging.get("hasNext", False)
    if not isinstance(has_next, bool):
        raise malformed("paging.hasNext is not true or false")
    if not has_next:
        return data["data"], None
    size = paging.get("pageSize", MAX_PAGE_SIZE)
    if isinstance(size, bool) or not isinstance(size, int) or not 0 < size <= MAX_PAGE_SIZE:
        raise malformed(f"paging.pageSize is not a number from 1 to {MAX_PAGE_SIZE}")
    return data["data"], size


def malformed(detail: str) -> AuditLogError:
    return AuditLogError(
        MALFORMED, f"ConfigCat's audit log answer could not be read: {detail}. Nothing was used."
    )
