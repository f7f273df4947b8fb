"""Settings for benchmarks/delivery.py: the demo's, with a SQLite and a PostgreSQL database.

A router sends the app's queries to whichever of the two the benchmark has switched to.
"""

import os
import tempfile
from pathlib import Path

import dj_database_url

from benchmarks.deployed_settings import *  # noqa: F403
from project.settings import CONFIGCAT_SEGMENT, DATABASES

SQLITE_PATH = Path(tempfile.gettempdir()) / f"configcat_segment_bench_{os.getpid()}.sqlite3"

DATABASES = {
    "default": {**DATABASES["default"], "NAME": str(SQLITE_PATH)},
    "postgres": dict(
        dj_database_url.parse(
            os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/cs_issue4"),
            conn_max_age=60,
        )
    ),
}
DATABASE_ROUTERS = ["benchmarks.delivery_settings.SwitchRouter"]

# The demo's settings allow the loopback endpoint the test server listens on.
CONFIGCAT_SEGMENT = {**CONFIGCAT_SEGMENT, "DELIVERY": "worker"}
LOGGING = {"version": 1, "disable_existing_loggers": False, "root": {"level": "ERROR"}}


class SwitchRouter:
    """Every query goes to ``SwitchRouter.alias``."""

    alias = "default"

    def db_for_read(self, model, **hints):
        return self.alias

    def db_for_write(self, model, **hints):
        return self.alias

    def allow_migrate(self, db, app_label, **hints):
        return True
