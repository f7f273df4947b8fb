"""The URLconf and USER_FACTORY of ``benchmarks/evaluations.py``: a view doing 5 evaluations."""

from __future__ import annotations

from typing import Any

from configcatclient.user import User
from django.http import HttpRequest, HttpResponse
from django.urls import path

import configcat_segment

FLAGS = ("flag00", "flag01", "flag02", "flag03", "flag04")
# Set by the benchmark: a ConfigCat client without forwarding, on the same flags file.
bare_client: Any = None


def visitor_user(request: HttpRequest) -> User:
    """Each visitor is a ConfigCat user, identified by their analytics.js anonymous id."""
    visitor = request.COOKIES.get("ajs_anonymous_id", "unknown")
    return User(visitor, email=f"{visitor}@example.com", country="HU", custom={"plan": "pro"})


def _render(values: list[Any]) -> HttpResponse:
    return HttpResponse(",".join(str(value) for value in values))


def with_middleware(request: HttpRequest) -> HttpResponse:
    flags = request.flags  # type: ignore[attr-defined]
    return _render([flags.get_value(key, False) for key in FLAGS])


def forwarded_without_middleware(request: HttpRequest) -> HttpResponse:
    client, user = configcat_segment.get_client(), visitor_user(request)
    return _render([client.get_value(key, False, user) for key in FLAGS])


def bare(request: HttpRequest) -> HttpResponse:
    user = visitor_user(request)
    return _render([bare_client.get_value(key, False, user) for key in FLAGS])


urlpatterns = [
    path("with/", with_middleware),
    path("forwarded/", forwarded_without_middleware),
    path("bare/", bare),
]
