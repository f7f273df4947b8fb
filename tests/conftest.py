"""Fixtures shared by the whole suite."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db import connection as db_connection
from django.test import Client

from configcat_segment.models import SegmentConnection

WRITE_KEY = "wk_live_0123456789abcdefSECRET"
SIGNING_KEY = "configcat_whsk_VN3juirnVh5pNvCKd81RYRYchxUX4j3NykbZG2fAy88="
SIGNING_KEY_2 = "configcat_whsk_SecondKeyForRotation0000000000000000000000="

IN_CI = bool(os.environ.get("CONFIGCAT_SEGMENT_CI"))


def pytest_collection_modifyitems(config: Any, items: list[Any]) -> None:
    """Tests marked ``postgres`` run only on PostgreSQL (the CI runs a PostgreSQL suite)."""
    if db_connection.vendor == "postgresql":
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL: set DATABASE_URL=postgres://...")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


class CsrfClient(Client):
    """A test client that enforces CSRF like a browser: it must send the token it was given."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(enforce_csrf_checks=True, **kwargs)

    def csrf_token(self) -> str:
        # Like a browser: the token comes from a page with a form (the admin index has the
        # logout form for a signed-in user, the login page for anyone else).
        for page in ("/admin/", "/admin/login/"):
            if "csrftoken" not in self.cookies:
                self.get(page)
        return self.cookies["csrftoken"].value

    def post_form(self, path: str, data: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        payload = {"csrfmiddlewaretoken": self.csrf_token(), **(data or {})}
        return self.post(path, payload, **kwargs)


@pytest.fixture
def make_connection(db: None) -> Callable[..., SegmentConnection]:
    counter = iter(range(1, 1_000_000))

    def make(**fields: Any) -> SegmentConnection:
        n = next(counter)
        values: dict[str, Any] = {
            "name": f"Source {n}",
            "write_key": f"{WRITE_KEY}{n}",
            "region": "us",
            "signing_key": SIGNING_KEY,
        }
        values.update(fields)
        return SegmentConnection.objects.create(**values)

    return make


@pytest.fixture
def segment_connection(make_connection: Callable[..., SegmentConnection]) -> SegmentConnection:
    return make_connection(name="Production", write_key=WRITE_KEY, product_name="Shop")


@pytest.fixture
def superuser(db: None) -> Any:
    return get_user_model().objects.create_superuser("root", "root@example.com", "pw-root-123")


@pytest.fixture
def staff_client(superuser: Any) -> CsrfClient:
    client = CsrfClient()
    client.force_login(superuser)
    return client
