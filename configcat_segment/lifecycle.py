"""Every process-wide hook of the app, in one place, installed from ``AppConfig.ready()``.

The modules that keep per-process state (the settings snapshot, the ConfigCat client, the
evaluation hook, the evaluation buffer, the Segment transport, the delivery backend) only
expose plain functions: forget the settings, close, start again after ``fork()``. This
module decides when each is called:

- **settings change** (``setting_changed`` for ``CONFIGCAT_SEGMENT``, as
  ``override_settings`` sends it): the settings are read again, connections to Segment
  checked under the old endpoint policy are closed, the ConfigCat client is closed (the
  next use builds one from the new settings), the hook forgets what it saw, and the
  delivery backend is replaced if ``DELIVERY`` changed.
- **delivery loops run**: every runner that runs for good also pokes the periodic
  reconciliation with ConfigCat's audit log (``delivery.runner.add_periodic_job``).
- **a request starts** (``request_started``): the delivery backend is told (the thread
  backend starts its runner with a process's first request).
- **events are written** (the outbox's commit hook): the delivery backend is told.
- **fork()**: the delivery backend holds the fork until no delivery thread is inside the
  database driver; in the child, fork-safe locks are renewed, the parent's ConfigCat
  client, buffered evaluations and pooled HTTP connections are set aside, and the
  backend forgets the parent's threads.
- **exit** (``atexit``), in this order: the backend starts nothing more; the evaluations
  still buffered are written (unless the backend is a test backend: the test database is
  gone by then); then what is due is delivered (the backend's ``deliver_at_exit``); then
  the ConfigCat client is closed.

:func:`install` does nothing else: no database, no network, no thread.
"""

from __future__ import annotations

import atexit
import logging
import os
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.signals import request_started, setting_changed

from . import conf, forksafe
from .delivery import backends, outbox
from .delivery.backends.base import DeliveryBackend
from .delivery.runner import add_periodic_job
from .evaluations import buffer, client
from .evaluations.hook import recorder
from .reconcile.schedule import Periodic as PeriodicReconciliation
from .segment import network, transport

logger = logging.getLogger(__name__)

# Hooks that cannot be removed (fork, exit) are registered once per process.
_registered = False
# The DELIVERY value the process's backend was made from (None: the settings were invalid).
_chosen_for: str | None = None
_chosen = False


def install() -> None:
    """Connect every hook and choose the delivery backend. Safe to call again."""
    global _registered
    setting_changed.connect(settings_changed, dispatch_uid="configcat_segment.lifecycle")
    request_started.connect(on_request_started, dispatch_uid="configcat_segment.lifecycle")
    outbox.on_enqueued(on_enqueued)
    # Runners reconcile with ConfigCat's audit log now and then (delivery knows nothing of it).
    add_periodic_job("reconcile", PeriodicReconciliation)
    transport.install_log_filter()
    if not _registered:
        atexit.register(at_exit)
        os.register_at_fork(
            before=before_fork,
            after_in_parent=after_fork_in_parent,
            after_in_child=after_fork_in_child,
        )
        _registered = True
    choose_backend()


def choose_backend() -> DeliveryBackend:
    """Make the backend ``DELIVERY`` names the process's backend, if it is not already.

    Never raises: a setting that cannot be read, or a backend that cannot be loaded, is
    reported by ``manage.py check``; meanwhile this process delivers nothing.
    """
    global _chosen, _chosen_for
    try:
        delivery: str | None = conf.get_settings().DELIVERY
    except ImproperlyConfigured:
        delivery = None
    if _chosen and delivery == _chosen_for:
        return backends.get_backend()
    backend = _make_backend(delivery)
    previous = backends.set_backend(backend)
    _chosen, _chosen_for = True, delivery
    if previous is not backend:
        previous.close()
    buffer.allow_background_writer(backend.flushes_evaluations)
    try:
        backend.install()
    except Exception:
        logger.exception("configcat_segment: could not install the delivery backend")
    return backend


def _make_backend(delivery: str | None) -> DeliveryBackend:
    if delivery is not None:
        try:
            return backends.load_backend_class(delivery)()
        except ImproperlyConfigured:  # configcat_segment.E005 reports it
            pass
        except Exception:  # the class cannot be made: a bug in it
            logger.exception("configcat_segment: could not make the delivery backend")
    return DeliveryBackend()  # delivers nothing


# -- the hooks ------------------------------------------------------------------------------


def settings_changed(*, setting: str, **kwargs: Any) -> None:
    if setting != conf.SETTING_NAME:
        return
    conf.forget_settings()
    network.close_checked_connections()  # checked under the old ALLOWED_ENDPOINT_HOSTS
    client.close()
    recorder.reset()
    buffer.forget_settings()
    choose_backend()


def on_request_started(**kwargs: Any) -> None:
    try:
        backends.get_backend().on_request_started()
    except Exception:  # delivery is never a reason to fail a request
        logger.exception("configcat_segment: the delivery backend failed at a request")


def on_enqueued() -> None:
    backends.get_backend().on_enqueued()


def before_fork() -> None:
    backends.get_backend().before_fork()


def after_fork_in_parent() -> None:
    backends.get_backend().after_fork_in_parent()


def after_fork_in_child() -> None:
    forksafe.renew_locks()
    client.after_fork_in_child()
    buffer.after_fork_in_child()
    transport.after_fork()
    backends.get_backend().after_fork_in_child()


def at_exit() -> None:
    """The shutdown order: write the evaluations still buffered, then deliver."""
    backend = backends.get_backend()
    backend.prepare_exit()
    if backend.flushes_evaluations:
        buffer.flush_at_exit()
    try:
        backend.deliver_at_exit()
    except Exception:
        logger.exception("configcat_segment: delivering at exit failed")
    client.close()
