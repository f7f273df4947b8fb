"""What a delivery backend is: the base class every backend extends.

A delivery backend decides *where and when* the dispatcher runs; the dispatcher decides
*what* is sent (:mod:`configcat_segment.delivery.dispatcher`). The project chooses one
with ``CONFIGCAT_SEGMENT["DELIVERY"]``: an alias (``"thread"``, ``"worker"``,
``"celery"``, ``"locmem"``) or the dotted path of a subclass of :class:`DeliveryBackend`,
the way Django chooses its mail and cache backends.

Each process makes one instance, from ``AppConfig.ready()`` (and again when the setting
changes, in tests), and :mod:`configcat_segment.lifecycle` calls its methods: every
process-wide hook is there, the backend only says what to do on each. Every method has a
default that does nothing, so a backend overrides only what it needs. None of them may
raise: log what goes wrong instead (an event that is not delivered now is delivered
later, by this process or another one).
"""

from __future__ import annotations

from typing import ClassVar


class DeliveryBackend:
    """Where and when the dispatcher runs. Subclass it and name the subclass in ``DELIVERY``.

    The base class delivers nothing in this process: events wait in the outbox for
    another process (``manage.py configcat_segment_worker``) to deliver them.
    """

    #: Whether buffered evaluations are written to the outbox unasked: by the background
    #: thread (``EVALUATION_WRITER = "thread"``) and at exit. A test backend says no: a
    #: thread writing outside the test's transaction leaves rows behind and races the
    #: test's assertions, and at exit the test database is gone (and the settings name
    #: the real one). Evaluations are then written only by ``configcat_segment.flush()``
    #: (which ``configcat_segment.testing.sent()`` calls).
    flushes_evaluations: ClassVar[bool] = True

    def install(self) -> None:
        """Called once, when this instance becomes the process's backend (from
        ``AppConfig.ready()``, or when ``DELIVERY`` changes). Keep it quiet: no database,
        no network, no thread; start those on first use instead."""

    def on_enqueued(self) -> None:
        """Events became due: a transaction that wrote (or requeued) them has committed.

        Runs in the thread that wrote them, right after the commit, possibly in the middle
        of a request: keep it cheap (wake a thread, send a task), unless delivering
        synchronously is the point (``locmem``).
        """

    def on_request_started(self) -> None:
        """A request begins: this process serves requests (Django's ``request_started``).

        Runs on every request: return at once when there is nothing to do.
        """

    def prepare_exit(self) -> None:
        """The process is exiting: start nothing that would outlive it.

        Called first at exit, before the evaluations still buffered are written (which may
        call :meth:`on_enqueued`), then :meth:`deliver_at_exit`.
        """

    def deliver_at_exit(self) -> None:
        """Deliver what the exiting process still should, within ``SHUTDOWN_FLUSH_SECONDS``.

        Called at exit, after the evaluations still buffered were written to the outbox.
        """

    def before_fork(self) -> None:
        """The process is about to ``fork()``: make sure no lock is held across it."""

    def after_fork_in_parent(self) -> None:
        """The ``fork()`` is done, in the parent."""

    def after_fork_in_child(self) -> None:
        """In a ``fork()``ed child: the parent's threads do not exist here; forget them."""

    def close(self) -> None:
        """Stop delivering in this process: another backend replaces this one."""
