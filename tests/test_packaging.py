"""`pip install .` builds a wheel with everything the app needs at run time."""

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_contains_templates_static_migrations_and_py_typed(tmp_path):
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--disable-pip-version-check",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    [wheel] = tmp_path.glob("configcat_segment-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = [
        "configcat_segment/py.typed",
        "configcat_segment/migrations/0001_initial.py",
        "configcat_segment/static/configcat_segment/admin.js",
        "configcat_segment/templates/admin/configcat_segment/segmentconnection/change_form.html",
        "configcat_segment/management/commands/configcat_segment_connect.py",
    ]
    assert [name for name in expected if name not in names] == []
    assert not any(name.startswith(("project/", "tests/", "benchmarks/")) for name in names)
    metadata = next(n for n in names if n.endswith("METADATA"))
    text = zipfile.ZipFile(wheel).read(metadata).decode()
    for requirement in (
        "Django",
        "djangorestframework",
        "configcat-client",
        "segment-analytics-python",
    ):
        assert f"Requires-Dist: {requirement}" in text
