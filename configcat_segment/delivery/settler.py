"""Settling a round's delivered events while the next round is claimed and sent.

A lane (:mod:`.runner`) delivers a backlog round after round: claim, send, settle. The
settling of a request Segment accepted is the round's biggest write (on PostgreSQL about
half a round's time: every event row gets a new version and a new entry in each index),
and nothing the next round does depends on it: its events are held by their live claims
until it commits, and then they are no longer due. So a lane hands that settling to a
:class:`Settler`, a thread of its own with its own database connection, and claims and
sends the next round meanwhile: the database writes one round while Segment reads the
next.

At most one settling is in hand at a time, and every other settling (a retry, a pause, a
dead letter, events put back) waits for it first, so outcomes are recorded in the order
Segment gave them: a "healthy again" from a delivery never lands after the next round's
"unavailable". What a worker killed meanwhile had not settled is sent again once its lease
runs out, with the same ``messageId``s, as before.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Protocol

from django.db import connections

__all__ = ["Guard", "Settler"]

Settlement = Callable[[], None]


class Guard(Protocol):
    """What a settler needs of the runner's fork guard (``forkguard.ForkGuard``)."""

    def database(self) -> AbstractContextManager[None]:
        """Held while a thread uses the database (waits while a fork is under way)."""

    def share(self) -> Callable[[], None]:
        """One more share for a thread that holds one, at once; returns its release."""


class _Job:
    """A settlement handed to the thread, the share of the guard it holds, and how it ended."""

    __slots__ = ("done", "error", "release", "settle")

    def __init__(self, settle: Settlement, release: Callable[[], None]) -> None:
        self.settle = settle
        self.release = release
        self.done = threading.Event()
        self.error: BaseException | None = None


class Settler:
    """Runs settlements one at a time, in order, on a thread of its own.

    With the runner's fork ``guard``, each settlement holds a share of it taken by the
    thread that submits it (which holds one: it is delivering), so a fork waits for the
    settlement and no settlement waits for a fork. :meth:`wait` returns once the
    settlement in hand is done and re-raises its error; :meth:`close` waits, then closes
    the thread's database connections and ends it.
    """

    def __init__(self, guard: Guard | None = None) -> None:
        self._guard = guard
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._in_hand: _Job | None = None

    def submit(self, settle: Settlement) -> None:
        """Settle in the background, once the settlement in hand is done.

        If that one failed, ``settle`` runs here and now (what Segment accepted is still
        recorded if the database lets it), and then the failure is raised.
        """
        try:
            self.wait()
        except BaseException:
            settle()
            raise
        if self._thread is None:
            thread = threading.Thread(
                target=self._run, name="configcat-segment-settle", daemon=True
            )
            try:
                thread.start()
            except RuntimeError:  # "can't create new thread at interpreter shutdown"
                settle()  # the exit flush: settle here and now
                return
            self._thread = thread
        release = self._guard.share() if self._guard is not None else _nothing
        self._in_hand = job = _Job(settle, release)
        self._jobs.put(job)

    def wait(self) -> bool:
        """Return once nothing is being settled (true if something was); raise what the
        last settlement raised."""
        job, self._in_hand = self._in_hand, None
        if job is None:
            return False
        job.done.wait()
        if job.error is not None:
            raise job.error
        return True

    def close(self) -> None:
        """Wait for the settlement in hand (raising its error), then end the thread."""
        try:
            self.wait()
        finally:
            thread, self._thread = self._thread, None
            if thread is not None:
                self._jobs.put(None)
                thread.join()

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            try:
                job.settle()
            except BaseException as error:  # handed to the lane by wait()
                job.error = error
            finally:
                job.release()
                job.done.set()
        if self._guard is None:
            connections.close_all()  # this thread's connections only
            return
        with self._guard.database():
            connections.close_all()


def _nothing() -> None:
    pass
