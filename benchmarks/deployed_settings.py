"""The demo's settings as a production site runs them: DEBUG off.

Benchmark settings modules start with ``from benchmarks.deployed_settings import *``. With
DEBUG on, Django keeps every query's text and, on SQLite, quotes every parameter of every
statement once more (a ``SELECT QUOTE(?), …``) to show it: CPU no deployment spends.
"""

import os

os.environ.setdefault("DEBUG", "false")
os.environ.setdefault("SECRET_KEY", "benchmark-only-not-secret")

from project.settings import *  # noqa: F403
