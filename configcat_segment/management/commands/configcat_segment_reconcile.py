from __future__ import annotations

import argparse
import datetime as dt
from collections import Counter
from typing import Any

from django.core.management.base import CommandError, CommandParser
from django.utils import timezone

from ...conf import get_settings, setting_path
from ...models import SegmentConnection
from ...reconcile import Busy, Outcome, reconcilable, reconcile
from ...reconcile.answers import parse_utc
from ..base import JSONCommand, get_connection


def moment(value: str) -> dt.datetime:
    """An argument type: an ISO-8601 date-time (UTC when it names no offset)."""
    parsed = parse_utc(value)
    if parsed is None:
        raise argparse.ArgumentTypeError(
            f"give an ISO-8601 date-time such as 2026-09-21T10:00:00Z, not {value!r}"
        )
    return parsed


def why_not(connection: SegmentConnection) -> str | None:
    """Why ``connection`` is not reconciled, or None when it is."""
    if not connection.connected:
        return "it is disconnected"
    if not connection.forward_changes:
        return "it does not forward flag changes"
    if not connection.product_id:
        return "it has no ConfigCat product id"
    if not (connection.configcat_api_user and connection.configcat_api_password):
        return "it has no ConfigCat Public API credential (username and password)"
    return None


class Command(JSONCommand):
    help = (
        "Read ConfigCat's audit log since each connection's reconciled point (or --since) "
        "and forward the flag changes no webhook delivered. Prints one JSON object: entries "
        "read, matched, forwarded and skipped (with reasons), per connection and in total. "
        "Exits non-zero when reading the audit log failed."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--connection",
            metavar="ID_OR_NAME",
            help="Only this connection (default: every connection with a credential).",
        )
        parser.add_argument(
            "--since",
            type=moment,
            metavar="ISO-8601",
            help="Read from this moment instead of the reconciled point (its point only "
            "moves forward).",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Read and match, list what would be forwarded; write nothing.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        now = timezone.now()
        since: dt.datetime | None = options["since"]
        if since is not None:
            self._check_since(since, now)
        if options["connection"] is not None:
            connection = get_connection(options["connection"])
            reason = why_not(connection)
            if reason:
                raise CommandError(f"{connection.name!r} cannot be reconciled: {reason}.")
            connections = [connection]
        else:
            connections = list(reconcilable())
        outcomes: list[Outcome] = []
        busy = []
        for connection in connections:
            try:
                outcomes.append(
                    reconcile(connection, since=since, dry_run=options["dry_run"], now=now)
                )
            except Busy:
                busy.append({"id": str(connection.pk), "name": connection.name})
        self.emit(self._summary(outcomes, busy, dry_run=options["dry_run"]))
        failed = [o for o in outcomes if o.error]
        if failed or (busy and options["connection"] is not None):
            names = ", ".join(
                [f"{o.connection.name!r}: {o.error}" for o in failed]
                + [f"{b['name']!r}: another process is reconciling it now" for b in busy]
            )
            raise CommandError(f"Not everything was reconciled ({names})")

    @staticmethod
    def _check_since(since: dt.datetime, now: dt.datetime) -> None:
        if since > now:
            raise CommandError("--since: give a moment in the past, not in the future.")
        days = get_settings().RETENTION_DAYS
        if since < now - dt.timedelta(days=days):
            raise CommandError(
                f"--since: at most {days} days ago ({setting_path('RETENTION_DAYS')}): older "
                "delivered events are pruned, so changes from then could not be matched with "
                "their webhooks and would be forwarded twice."
            )

    @staticmethod
    def _summary(outcomes: list[Outcome], busy: list[dict[str, str]], *, dry_run: bool) -> Any:
        skipped: Counter[str] = Counter()
        for outcome in outcomes:
            skipped.update(outcome.skipped)
        return {
            "dry_run": dry_run,
            "entries": sum(o.entries for o in outcomes),
            "matched": sum(o.matched for o in outcomes),
            "forwarded": sum(o.forwarded for o in outcomes),
            "skipped": dict(sorted(skipped.items())),
            "errors": sum(1 for o in outcomes if o.error),
            "connections": [o.as_dict() for o in outcomes],
            "busy": busy,
        }
