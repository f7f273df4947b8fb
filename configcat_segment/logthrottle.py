"""Logging a recurring problem at most once per interval, saying how often it recurred."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from .forksafe import fork_safe_lock


class LogThrottle:
    """Lets one message through per ``interval`` seconds and counts the ones held back.

    For problems that can recur thousands of times a second (a full buffer, a failing
    flag): the first is logged at once, then at most one a minute, each saying how many
    were held back since the one before. ``clock`` returns seconds (tests inject one).
    """

    def __init__(self, interval: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self._clock = clock
        self._lock = fork_safe_lock(self)
        self._logged_at: float | None = None
        self._held_back = 0

    def log(self, logger: logging.Logger, level: int, msg: str, *args: Any, **kwargs: Any) -> bool:
        """``logger.log(level, msg, *args, **kwargs)``, unless one was logged within the
        interval. Returns whether it was logged."""
        now = self._clock()
        with self._lock:
            if self._logged_at is not None and now - self._logged_at < self.interval:
                self._held_back += 1
                return False
            held_back, self._held_back = self._held_back, 0
            self._logged_at = now
        if held_back:
            msg += " (%d more like this since the last message)"
            args += (held_back,)
        logger.log(level, msg, *args, **kwargs)
        return True
