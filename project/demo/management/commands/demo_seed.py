"""Seed the demo: a superuser ``admin`` (password printed once, or DEMO_ADMIN_PASSWORD),
and the connection "Local debugger" that sends to the demo's own Segment-compatible
receiver (``DEMO_DEBUGGER_URL``, default ``http://127.0.0.1:8000/debugger``)."""

from __future__ import annotations

import os
import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from configcat_segment.constants import SIGNING_KEY_PREFIX
from configcat_segment.models import Region, SegmentConnection

DEBUGGER_NAME = "Local debugger"
DEBUGGER_URL = "http://127.0.0.1:8000/debugger"
# Not a secret: the local receiver accepts any key.
DEBUGGER_WRITE_KEY = "demo-local-debugger-write-key"


class Command(BaseCommand):
    help = "Create the demo's superuser 'admin' and 'Local debugger' connection. Safe to rerun."

    def handle(self, *args: Any, **options: Any) -> None:
        self.seed_admin()
        self.seed_debugger_connection()

    def seed_debugger_connection(self) -> None:
        wanted = os.environ.get("DEMO_DEBUGGER_URL")
        endpoint = wanted or DEBUGGER_URL
        connection = SegmentConnection.objects.filter(name=DEBUGGER_NAME).first()
        created = connection is None
        if connection is None:
            connection = SegmentConnection(
                name=DEBUGGER_NAME,
                write_key=DEBUGGER_WRITE_KEY,
                # So configcat_segment_sample_webhook can sign a change for the demo.
                signing_key=SIGNING_KEY_PREFIX + secrets.token_urlsafe(32),
            )
        elif not wanted or connection.endpoint == wanted.rstrip("/"):
            self.stdout.write(
                f"Connection {DEBUGGER_NAME!r} exists; left as it is "
                "(set DEMO_DEBUGGER_URL to point it elsewhere)."
            )
            return
        connection.region = Region.CUSTOM
        connection.custom_endpoint = endpoint
        try:
            connection.full_clean()
        except ValidationError as exc:
            raise CommandError(f"DEMO_DEBUGGER_URL: {' '.join(exc.messages)}") from None
        connection.save()
        verb = "Created" if created else "Updated"
        self.stdout.write(
            self.style.SUCCESS(
                f"{verb} connection {DEBUGGER_NAME!r}: events go to {connection.endpoint}/v1/batch "
                "and show on /debugger/."
            )
        )

    def seed_admin(self) -> None:
        user_model = get_user_model()
        wanted = os.environ.get("DEMO_ADMIN_PASSWORD")
        user = user_model.objects.filter(username="admin").first()
        if user is None:
            password = wanted or secrets.token_urlsafe(12)
            user_model.objects.create_superuser("admin", "admin@example.com", password)
            shown = "(from DEMO_ADMIN_PASSWORD)" if wanted else password
            self.stdout.write(
                self.style.SUCCESS(f"Created superuser 'admin' with password: {shown}")
            )
            if not wanted:
                self.stdout.write("This password is shown once; it is not stored anywhere else.")
        elif wanted:
            user.set_password(wanted)
            user.save(update_fields=["password"])
            self.stdout.write("Superuser 'admin' exists; password set from DEMO_ADMIN_PASSWORD.")
        else:
            self.stdout.write(
                "Superuser 'admin' exists; its password is unchanged "
                "(set DEMO_ADMIN_PASSWORD to reset it)."
            )
