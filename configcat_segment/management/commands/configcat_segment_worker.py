from __future__ import annotations

import logging
import signal
from types import FrameType
from typing import Any

from django.core.management.base import CommandError, CommandParser
from django.template.defaultfilters import pluralize

from ...delivery.runner import Runner
from ..base import JSONCommand

logger = logging.getLogger("configcat_segment.worker")


class Command(JSONCommand):
    help = (
        "Deliver events to Segment until stopped. SIGTERM or SIGINT (Ctrl-C) lets the "
        "batches in hand finish, then exits 0. With --once, delivers everything due and "
        "exits, non-zero if looking for events or delivering failed. Prints what it did "
        "as one JSON object."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--once", action="store_true", help="Deliver everything due now, then exit."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        runner = Runner()
        received: list[int] = []

        def stop(signum: int, frame: FrameType | None) -> None:
            # Nothing that takes a lock (not even logging): the thread this interrupts may
            # hold it.
            received.append(signum)
            runner.stop_from_signal()

        previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            if not options["once"]:
                logger.info(
                    "configcat_segment: delivering events (%d lanes, polling every %gs)",
                    runner.threads,
                    runner.poll_seconds,
                )
            report = runner.run(until_idle=options["once"])
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        if received:
            logger.info(
                "configcat_segment: stopped on %s, the requests in hand finished",
                signal.Signals(received[0]).name,
            )
        self.emit({**report.as_dict(), "errors": runner.errors})
        if options["once"] and runner.errors:
            raise CommandError(
                f"Not everything due was delivered: {runner.errors} "
                f"error{pluralize(runner.errors)} (see the log)."
            )
