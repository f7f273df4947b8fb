"""Settings for benchmarks/host_cost.py: the demo's, with the benchmark's flags file.

``DATABASE_URL`` (read by the demo settings) chooses SQLite or PostgreSQL.
"""

import os

from benchmarks.deployed_settings import *  # noqa: F403
from project.settings import CONFIGCAT_SEGMENT

CONFIGCAT_SEGMENT = {
    **CONFIGCAT_SEGMENT,
    "DELIVERY": "thread",
    "FLAG_OVERRIDES": os.environ.get("HOST_COST_CONFIG"),
}
LOGGING = {"version": 1, "disable_existing_loggers": False, "root": {"level": "ERROR"}}
