"""Locks a ``fork()``ed child can use, whoever held them at the moment of the fork.

A lock held by another thread when the process forks stays held for good in the child,
where that thread does not exist, and the first ``with lock:`` there hangs forever
(gunicorn ``--preload``, uWSGI without ``lazy-apps``, ``multiprocessing``). Objects that
get their ``_lock`` from :func:`fork_safe_lock` get a new one in every child:
:mod:`configcat_segment.lifecycle` calls :func:`renew_locks` there.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

# The objects whose ``_lock`` is replaced in a child; weakly, so they can go away.
_owners: weakref.WeakSet[Any] = weakref.WeakSet()


def fork_safe_lock(owner: object) -> threading.Lock:
    """A new lock for ``owner._lock``, replaced by a fresh one after ``fork()`` in the child."""
    _owners.add(owner)
    return threading.Lock()


def renew_locks() -> None:
    """In a ``fork()``ed child: a fresh ``_lock`` for every owner."""
    for owner in list(_owners):
        owner._lock = threading.Lock()
