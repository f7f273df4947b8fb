"""Test settings: the demo's, with nothing delivering in the background unless a test asks.

Tests that exercise a runner start it themselves; the rest must never reach the internet.
"""

import os
import tempfile
from pathlib import Path

from project.settings import *  # noqa: F403
from project.settings import CONFIGCAT_SEGMENT, DATABASES

CONFIGCAT_SEGMENT = {
    **CONFIGCAT_SEGMENT,
    "DELIVERY": "worker",
    # Evaluations are written when a test calls configcat_segment.flush(), not by a thread.
    "EVALUATION_WRITER": "manual",
    # The app's default; the demo turns it on (tests/evaluations/test_anonymous_ids.py).
    "SET_ANONYMOUS_ID_COOKIE": False,
    # tests/segment_server.py listens on loopback; tests of the refusal turn this off.
    "ALLOWED_ENDPOINT_HOSTS": ["127.0.0.0/8", "::1"],
}

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not Django's default shared-cache memory database: delivery threads and
    # worker subprocesses must see the test's data and wait for each other's locks (the
    # busy timeout) as they do in production; shared-cache memory fails at once instead.
    DATABASES["default"]["TEST"] = {
        "NAME": str(Path(tempfile.gettempdir()) / f"configcat_segment_test_{os.getpid()}.sqlite3")
    }
