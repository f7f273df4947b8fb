"""Settings for processes that tests start (workers, scripts): the test's own database.

The test passes its database connection settings and any ``CONFIGCAT_SEGMENT`` overrides
as JSON in the environment (see ``conftest.subprocess_env``).
"""

import json
import os

from tests.settings import *  # noqa: F403
from tests.settings import CONFIGCAT_SEGMENT, DATABASES

DATABASES["default"] = json.loads(os.environ["CONFIGCAT_SEGMENT_TEST_DATABASE"])
CONFIGCAT_SEGMENT = {
    **CONFIGCAT_SEGMENT,
    **json.loads(os.environ.get("CONFIGCAT_SEGMENT_TEST_SETTINGS", "{}")),
}
