"""Print a suite's counts from its JUnit XML; fail when it ran no test, had a failure, or
skipped a test for a reason the suite does not allow.

usage: junit_summary.py NAME PATH [ALLOWED_SKIP_REASON_REGEX]
"""

import re
import sys
import xml.etree.ElementTree as ET

name, path = sys.argv[1], sys.argv[2]
allowed_skip = re.compile(sys.argv[3]) if len(sys.argv) > 3 else None
root = ET.parse(path).getroot()  # noqa: S314 -- our own pytest output
cases = list(root.iter("testcase"))
counts = {"passed": 0, "skipped": 0, "failed": 0}
bad_skips = []
for case in cases:
    if case.find("failure") is not None or case.find("error") is not None:
        counts["failed"] += 1
    elif (skipped := case.find("skipped")) is not None:
        counts["skipped"] += 1
        reason = skipped.get("message", "")
        if not (allowed_skip and allowed_skip.search(reason)):
            bad_skips.append(f"{case.get('classname')}.{case.get('name')}: {reason}")
    else:
        counts["passed"] += 1
print(f"{name}: {counts['passed']} passed, {counts['skipped']} skipped, {counts['failed']} failed")
if counts["passed"] == 0:
    sys.exit(f"{name}: no test ran")
if counts["failed"]:
    sys.exit(f"{name}: failures")
if bad_skips:
    sys.exit(f"{name}: tests skipped that must run here:\n  " + "\n  ".join(bad_skips))
