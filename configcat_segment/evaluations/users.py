"""Who the ConfigCat user of a request is: ``USER_FACTORY``, and its default."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from configcatclient.user import User
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from ..conf import get_settings, setting_path

if TYPE_CHECKING:
    from django.http import HttpRequest

UserFactory = Callable[["HttpRequest"], Any]


def default_user_factory(request: HttpRequest) -> User | None:
    """The signed-in Django user as a ConfigCat ``User``: identifier ``str(pk)``, email.

    Anonymous visitors get None: the SDK evaluates without a user, and their events are
    sent with the visitor's anonymous id.
    """
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return None
    return User(str(user.pk), email=getattr(user, "email", None) or None)


@functools.cache
def load_user_factory(dotted_path: str) -> UserFactory:
    """The function ``USER_FACTORY`` names; ``ImproperlyConfigured`` when it cannot be used.

    ``manage.py check`` calls it (``configcat_segment.E006``); at run time it is called
    only when a request evaluates a flag, so a wrong path breaks nothing else.
    """
    try:
        factory = import_string(dotted_path)
    except ImportError as exc:
        raise ImproperlyConfigured(
            f"{setting_path('USER_FACTORY')} is {dotted_path!r}, which cannot be imported: {exc}"
        ) from None
    except Exception as exc:  # the module itself fails while it is imported
        raise ImproperlyConfigured(
            f"{setting_path('USER_FACTORY')} is {dotted_path!r}, which cannot be imported: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    if not callable(factory):
        raise ImproperlyConfigured(
            f"{setting_path('USER_FACTORY')} is {dotted_path!r}, which is not a function."
        )
    return factory  # type: ignore[no-any-return]


def user_for(request: HttpRequest) -> Any:
    """The ConfigCat user ``USER_FACTORY`` makes for ``request``."""
    return load_user_factory(get_settings().USER_FACTORY)(request)
