"""Running one piece of work on several threads at once, for the concurrency tests."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from django.db import connections

T = TypeVar("T")

SAFETY_SECONDS = 120  # only ever reached when something is broken


def run_together(
    work: Callable[..., T],
    arguments: Iterable[Sequence[Any]],
    *,
    timeout: float = SAFETY_SECONDS,
) -> list[T]:
    """Call ``work(*args)`` for each of ``arguments``, each on a thread of its own, all
    released at once (a barrier); return what each returned, in the order of ``arguments``.

    Each thread closes its database connections when done. The first error any of them
    raised is raised here, once all have ended; a thread still running after ``timeout``
    fails the test.
    """
    calls = [tuple(args) for args in arguments]
    start = threading.Barrier(len(calls))
    results: dict[int, T] = {}
    errors: list[BaseException] = []

    def run(index: int, args: tuple[Any, ...]) -> None:
        try:
            start.wait(timeout)
            results[index] = work(*args)
        except BaseException as error:  # raised in the test's thread below
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(n, args)) for n, args in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    assert not any(thread.is_alive() for thread in threads), "a thread never ended"
    if errors:
        raise errors[0]
    return [results[n] for n in range(len(calls))]


def assert_fork_waits_until(guard: Any, release: Callable[[], None]) -> None:
    """``guard.before_fork()`` (a ``ForkGuard``'s, on a thread) is still waiting until
    ``release()`` is called, and returns after it; the caller ends the fork."""
    forking = threading.Thread(target=guard.before_fork, args=(SAFETY_SECONDS,))
    forking.start()
    forking.join(0.05)
    assert forking.is_alive()
    release()
    forking.join(SAFETY_SECONDS)
    assert not forking.is_alive()
