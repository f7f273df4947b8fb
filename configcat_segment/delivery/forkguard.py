"""Keeping ``fork()`` from happening while a delivery thread is inside the database driver.

The runner's lanes (and a lane's settler) hold the guard, shared, while they use the
database; the ``thread`` backend's ``os.register_at_fork`` hooks hold it alone while a fork
happens (``lifecycle``).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator

__all__ = ["ForkGuard"]


class ForkGuard:
    """Makes ``fork()`` wait until no runner thread is inside the database driver.

    A thread that holds a lock inside the driver (SQLite's, libpq's) when another thread
    forks leaves that lock held forever in the child, whose first query then hangs. Runner
    threads hold the guard, shared, while they use the database; a fork holds it alone
    (for at most ``timeout`` seconds of waiting) while it happens.
    """

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._users = 0
        self._forking = False

    @contextlib.contextmanager
    def database(self) -> Iterator[None]:
        with self._condition:
            self._condition.wait_for(lambda: not self._forking)
            self._users += 1
        try:
            yield
        finally:
            with self._condition:
                self._users -= 1
                self._condition.notify_all()

    def share(self) -> Callable[[], None]:
        """One more share, taken at once, for work a thread that holds a share hands to
        another (the settler's): no fork can be under way while the giver holds its own,
        so none starts before this one is given back, by calling what this returns. (The
        taker would otherwise wait for a fork that waits for the giver, which waits for
        the taker, until the fork's timeout.)"""
        with self._condition:
            self._users += 1

        def give_back() -> None:
            with self._condition:
                self._users -= 1
                self._condition.notify_all()

        return give_back

    def before_fork(self, timeout: float) -> None:
        with self._condition:
            self._forking = True
            self._condition.wait_for(lambda: self._users == 0, timeout)

    def after_fork_in_parent(self) -> None:
        with self._condition:
            self._forking = False
            self._condition.notify_all()
