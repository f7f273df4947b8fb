"""Seed the demo: a superuser ``admin`` (password printed once, or DEMO_ADMIN_PASSWORD)."""

from __future__ import annotations

import os
import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create the demo's superuser 'admin'. Safe to run again."

    def handle(self, *args: Any, **options: Any) -> None:
        self.seed_admin()

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
