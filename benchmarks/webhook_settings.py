"""Settings for benchmarks/webhooks.py: the demo's, quiet, with a bare comparison view."""

from project.settings import *  # noqa: F403
from project.settings import CONFIGCAT_SEGMENT

DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1"]
ROOT_URLCONF = "benchmarks.webhook_urls"
# Nothing is delivered during the benchmark; only the webhook path is measured.
CONFIGCAT_SEGMENT = {**CONFIGCAT_SEGMENT, "DELIVERY": "worker"}
LOGGING = {"version": 1, "disable_existing_loggers": False, "root": {"level": "ERROR"}}
