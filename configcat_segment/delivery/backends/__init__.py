"""Delivery backends: where and when the dispatcher runs, chosen by ``DELIVERY``.

``CONFIGCAT_SEGMENT["DELIVERY"]`` names one, the way Django names its mail and cache
backends: an alias (:data:`ALIASES`) or the dotted path of a subclass of
:class:`~configcat_segment.delivery.backends.base.DeliveryBackend`. Each process has one
instance, made from ``AppConfig.ready()`` by :mod:`configcat_segment.lifecycle` and
returned by :func:`get_backend`. A backend that cannot be loaded is reported by
``manage.py check`` (``configcat_segment.E005``); the process then delivers nothing, and
no request fails for it.
"""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from ...conf import setting_path
from .base import DeliveryBackend

ALIASES = {
    "thread": "configcat_segment.delivery.backends.thread.ThreadBackend",
    "worker": "configcat_segment.delivery.backends.worker.WorkerBackend",
    "celery": "configcat_segment.delivery.backends.celery.CeleryBackend",
    "locmem": "configcat_segment.delivery.backends.locmem.LocmemBackend",
}

# The process's backend: one that delivers nothing until lifecycle.install() chooses.
_backend: DeliveryBackend = DeliveryBackend()


def backend_path(delivery: str) -> str:
    """The dotted path ``delivery`` (an alias or a dotted path) stands for."""
    return ALIASES.get(delivery, delivery)


def load_backend_class(delivery: str) -> type[DeliveryBackend]:
    """The backend class ``delivery`` names. Raises ``ImproperlyConfigured`` saying why
    it cannot be used, naming the setting."""
    path = backend_path(delivery)
    try:
        backend_class = import_string(path)
    except ImportError as exc:
        raise ImproperlyConfigured(
            f"{setting_path('DELIVERY')} names {path!r}, which cannot be imported: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    except Exception as exc:  # the module itself is broken
        raise ImproperlyConfigured(
            f"{setting_path('DELIVERY')} names {path!r}, whose module fails on import: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    if not (isinstance(backend_class, type) and issubclass(backend_class, DeliveryBackend)):
        raise ImproperlyConfigured(
            f"{setting_path('DELIVERY')} names {path!r}, which is not a delivery backend: "
            "a subclass of configcat_segment.delivery.backends.base.DeliveryBackend."
        )
    return backend_class


def get_backend() -> DeliveryBackend:
    """The process's delivery backend."""
    return _backend


def set_backend(backend: DeliveryBackend) -> DeliveryBackend:
    """Make ``backend`` the process's backend; returns the one it replaces (not closed)."""
    global _backend
    previous, _backend = _backend, backend
    return previous
