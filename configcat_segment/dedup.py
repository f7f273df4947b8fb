"""Remembering what was already sent, within a time window, in bounded memory. Pure."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable


class DedupCache:
    """Answers "was this key seen in the last ``window`` seconds?", thread-safely.

    A key is *sent* when :meth:`first_seen` returns True; it is then a duplicate until
    ``window`` seconds after that, however often it recurs (a hit does not extend the
    window, so a flag evaluated all day is still sent once per window). At most
    ``max_keys`` keys are kept; beyond that the least recently used one is forgotten, so
    memory stays bounded whatever the number of users, and the keys that recur most stay.
    Forgetting a key early only costs one extra event later, never a lost one.

    ``window`` 0 remembers nothing: every key is new. ``clock`` returns seconds (tests
    inject their own).
    """

    def __init__(
        self,
        window: float,
        max_keys: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_keys < 1:
            raise ValueError("max_keys must be at least 1")
        self.window = window
        self.max_keys = max_keys
        self._clock = clock
        self._expiry: OrderedDict[Hashable, float] = OrderedDict()
        self._lock = threading.Lock()

    def first_seen(self, key: Hashable) -> bool:
        """True when ``key`` was not seen within the window (and remember it from now)."""
        if self.window <= 0:
            return True
        now = self._clock()
        with self._lock:
            expiry = self._expiry.get(key)
            if expiry is not None and expiry > now:
                self._expiry.move_to_end(key)
                return False
            self._expiry[key] = now + self.window
            self._expiry.move_to_end(key)
            if len(self._expiry) > self.max_keys:
                self._expiry.popitem(last=False)
            return True

    def forget(self, key: Hashable) -> None:
        """Make ``key`` new again (used when what it stood for could not be recorded)."""
        with self._lock:
            self._expiry.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._expiry.clear()

    def __len__(self) -> int:
        return len(self._expiry)
