"""Settings for benchmarks/host_cost.py: the demo's, with the benchmark's flags file.

``DATABASE_URL`` (read by the demo settings) chooses SQLite or PostgreSQL.
"""

import os

# As a production site runs: with DEBUG on, Django keeps every query's text and, on
# SQLite, quotes every parameter of every statement once more (a ``SELECT QUOTE(?), …``)
# to show it, which is CPU no deployment spends.
os.environ.setdefault("DEBUG", "false")
os.environ.setdefault("SECRET_KEY", "benchmark-only-not-secret")

from project.settings import *  # noqa: F403
from project.settings import CONFIGCAT_SEGMENT

CONFIGCAT_SEGMENT = {
    **CONFIGCAT_SEGMENT,
    "DELIVERY": "thread",
    "FLAG_OVERRIDES": os.environ.get("HOST_COST_CONFIG"),
}
LOGGING = {"version": 1, "disable_existing_loggers": False, "root": {"level": "ERROR"}}
