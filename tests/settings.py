"""Test settings: the demo's, with nothing delivering in the background unless a test asks.

Tests that exercise a runner start it themselves; the rest must never reach the internet.
"""

from project.settings import *  # noqa: F403
from project.settings import CONFIGCAT_SEGMENT

CONFIGCAT_SEGMENT = {
    **CONFIGCAT_SEGMENT,
    "DELIVERY": "worker",
    # Evaluations are written when a test calls configcat_segment.flush(), not by a thread.
    "EVALUATION_WRITER": "manual",
}

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
