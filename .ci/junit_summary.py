"""Print a suite's counts from its JUnit XML; fail when it ran no test or had a failure."""

import sys
import xml.etree.ElementTree as ET

name, path = sys.argv[1], sys.argv[2]
root = ET.parse(path).getroot()  # noqa: S314 -- our own pytest output
suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
totals = {
    key: sum(int(s.get(key, 0)) for s in suites)
    for key in ("tests", "failures", "errors", "skipped")
}
passed = totals["tests"] - totals["failures"] - totals["errors"] - totals["skipped"]
print(
    f"{name}: {passed} passed, {totals['skipped']} skipped, "
    f"{totals['failures']} failed, {totals['errors']} errors"
)
if passed <= 0:
    sys.exit(f"{name}: no test ran")
if totals["failures"] or totals["errors"]:
    sys.exit(f"{name}: failures")
