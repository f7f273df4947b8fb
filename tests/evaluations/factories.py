"""A USER_FACTORY for the tests: anonymous visitors identified by a header's country."""

from __future__ import annotations

from configcatclient.user import User
from django.http import HttpRequest

NOT_CALLABLE = "not a function"


def country_user(request: HttpRequest) -> User:
    country = request.headers.get("X-Country", "")
    return User(f"visitor-{country}", country=country)
