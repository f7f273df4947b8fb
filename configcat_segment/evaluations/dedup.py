"""Remembering what was already sent, within a time window, in bounded memory. Pure."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable

from ..forksafe import fork_safe_lock


class DedupCache:
    """Answers "was this key seen in the last ``window`` seconds?", thread-safely.

    A key is *sent* when :meth:`first_seen` returns True; it is then a duplicate until
    ``window`` seconds after that, however often it recurs (a hit does not extend the
    window, so a flag evaluated all day is still sent once per window). At most
    ``max_keys`` keys are kept, so memory stays bounded whatever the number of users.
    When full, the least recently used key is forgotten, approximately: keys are
    considered oldest-sent first, and one that was hit since it was last considered gets
    a second chance (the CLOCK approximation of LRU, which lets a hit skip the lock).
    Forgetting a key early only costs one extra event later, never a lost one.

    ``window`` 0 remembers nothing: every key is new. ``clock`` returns seconds (tests
    inject their own). A ``fork()``ed child keeps what the parent remembered, with a lock
    of its own.
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
        # key -> expiry time, negated once the key is hit (its "second chance" mark). A bare
        # float per key keeps memory small; expiry times are positive, so the sign is free.
        self._expiry: OrderedDict[Hashable, float] = OrderedDict()
        self._lock = fork_safe_lock(self)

    def first_seen(self, key: Hashable) -> bool:
        """True when ``key`` was not seen within the window (and remember it from now)."""
        if self.window <= 0:
            return True
        now = self._clock()
        # The hot path, a duplicate, takes no lock: a dict lookup and maybe a store, each
        # atomic under the GIL. (A mark lost to a racing eviction only costs an extra send.)
        expiry = self._expiry.get(key)
        if expiry is not None:
            if expiry > now:
                self._expiry[key] = -expiry
                return False
            if -expiry > now:
                return False
        with self._lock:
            expiry = self._expiry.get(key)
            if expiry is not None and abs(expiry) > now:  # another thread just sent it
                return False
            self._expiry[key] = now + self.window
            self._expiry.move_to_end(key)
            if len(self._expiry) > self.max_keys:
                self._evict(now)
            return True

    def _evict(self, now: float) -> None:
        entries = self._expiry
        while len(entries) > self.max_keys:
            key, expiry = next(iter(entries.items()))
            if expiry < 0 and -expiry > now:  # hit since last considered: a second chance
                entries[key] = -expiry
                entries.move_to_end(key)
            else:
                entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._expiry.clear()

    def __len__(self) -> int:
        return len(self._expiry)
