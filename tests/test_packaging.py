"""What `make dist` builds, and the wheel working where no checkout is near.

The sdist and wheel are built as `make dist` builds them (sdist first, the wheel from the
sdist, the pinned setuptools), from a copy of the checkout so the tree is left untouched.
The wheel is then installed into a fresh virtualenv and a small generated project runs
`manage.py check` and `migrate` against it. Only the public interface is used (the app, its
URLs, its migrations, its commands), so moving modules inside the app changes nothing here.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from scripts.check_dist import check_wheel

from .conftest import IN_CI

pytestmark = pytest.mark.packaging

ROOT = Path(__file__).resolve().parent.parent
NOT_COPIED = shutil.ignore_patterns(
    ".git",
    ".venv",
    ".venv-*",
    "build",
    "dist",
    "*.egg-info",
    "__pycache__",
    "*.py[cod]",
    ".*_cache",
    ".hypothesis",
    "test-output",
    "staticfiles",
    "db.sqlite3*",
)


def require(module: str) -> None:
    """Skip without a build tool from requirements.txt; in CI, fail instead."""
    if importlib.util.find_spec(module) is None:
        message = f"{module} is not installed (pip install -r requirements.txt)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


def run(
    command: list[str | Path], cwd: Path | None = None, env: dict[str, str] | None = None
) -> str:
    """Run a command; on failure, fail the test with everything it printed."""
    done = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(
            f"{' '.join(map(str, command))} exited {done.returncode}\n"
            f"--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
        )
    return str(done.stdout)


def last_json(out: str) -> Any:
    return json.loads(out.strip().splitlines()[-1])


@dataclass(frozen=True)
class Built:
    source: Path
    wheel: Path
    sdist: Path


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    require("build")
    tmp = tmp_path_factory.mktemp("dist")
    source, dist = tmp / "source", tmp / "dist"
    shutil.copytree(ROOT, source, ignore=NOT_COPIED)
    run([sys.executable, "-m", "build", "--no-isolation", "--outdir", dist, source])
    [wheel] = dist.glob("configcat_segment-*-py3-none-any.whl")
    [sdist] = dist.glob("configcat_segment-*.tar.gz")
    return Built(source, wheel, sdist)


def test_wheel_contains_templates_static_migrations_and_py_typed(built: Built) -> None:
    names = set(zipfile.ZipFile(built.wheel).namelist())
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
    text = zipfile.ZipFile(built.wheel).read(metadata).decode()
    for requirement in (
        "Django",
        "djangorestframework",
        "configcat-client",
        "segment-analytics-python",
    ):
        assert f"Requires-Dist: {requirement}" in text


def test_dist_passes_the_checks_of_make_dist(built: Built) -> None:
    require("twine")
    out = run([sys.executable, "-m", "twine", "check", "--strict", built.wheel, built.sdist])
    assert out.count("PASSED") == 2, out
    out = run(
        [
            sys.executable,
            ROOT / "scripts" / "check_dist.py",
            built.wheel.parent,
            "--source",
            built.source,
        ]
    )
    assert "nothing else" in out


def test_dist_check_reports_missing_and_foreign_files(tmp_path: Path) -> None:
    wheel = tmp_path / "configcat_segment-9.9-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("configcat_segment/__init__.py", "")
        archive.writestr("configcat_segment/py.typed", "")
        archive.writestr("configcat_segment/migrations/0001_initial.py", "")
        archive.writestr("configcat_segment/management/commands/configcat_segment_x.py", "")
        archive.writestr("tests/test_app.py", "")
        archive.writestr(
            "configcat_segment-9.9.dist-info/METADATA",
            "Name: configcat-segment\nVersion: 9.9\nRequires-Dist: Django<7,>=5.2\n",
        )
    expected = {
        "configcat_segment/__init__.py",
        "configcat_segment/templates/configcat_segment/page.html",
    }

    problems = check_wheel(wheel, expected, "9.9")

    assert f"{wheel.name}: missing configcat_segment/templates/configcat_segment/page.html" in (
        problems
    )
    assert f"{wheel.name}: has no template" in problems
    assert f"{wheel.name}: has no static file" in problems
    assert f"{wheel.name}: should not contain tests/test_app.py" in problems
    assert f"{wheel.name}: unexpected tests/test_app.py" in problems
    assert f"{wheel.name}: METADATA does not require djangorestframework" in problems
    assert not any("Django" in problem for problem in problems)


SETTINGS = """\
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = "a-tiny-project-that-only-runs-in-a-test"
DEBUG = False
ALLOWED_HOSTS = ["testserver"]
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "configcat_segment",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "configcat_segment.middleware.FlagEvaluationMiddleware",
]
ROOT_URLCONF = "tinyproject.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": BASE_DIR / "db.sqlite3"}}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
STATIC_URL = "static/"
USE_TZ = True
"""

URLS = """\
from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("configcat-segment/", include("configcat_segment.urls")),
]
"""

MANAGE = """\
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tinyproject.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
"""

# Where the app comes from, and its version, before anything imports Django.
IMPORT_PROBE = """\
import importlib.metadata, json, sys
import configcat_segment
print(json.dumps({
    "file": configcat_segment.__file__,
    "version": configcat_segment.__version__,
    "metadata_version": importlib.metadata.version("configcat-segment"),
    "django_imported": "django" in sys.modules,
    "sys_path": sys.path,
}))
"""

# The app's pages render from the installed templates, and its static files are found.
PAGES_PROBE = """\
import json
from django.contrib.auth import get_user_model
from django.contrib.staticfiles.finders import AppDirectoriesFinder
from django.test import Client

client = Client()
client.force_login(get_user_model().objects.create_superuser("admin", "admin@example.com", "x"))
paths = [
    "/configcat-segment/events/",
    "/configcat-segment/api/events/",
    "/admin/configcat_segment/segmentconnection/",
    "/admin/configcat_segment/segmentconnection/add/",
]
static = [path for path, _ in AppDirectoriesFinder(app_names=["configcat_segment"]).list([])]
print(json.dumps({"pages": {p: client.get(p).status_code for p in paths}, "static": static}))
"""


def make_project(directory: Path) -> None:
    (directory / "tinyproject").mkdir(parents=True)
    (directory / "tinyproject" / "__init__.py").write_text("")
    (directory / "tinyproject" / "settings.py").write_text(SETTINGS)
    (directory / "tinyproject" / "urls.py").write_text(URLS)
    (directory / "manage.py").write_text(MANAGE)


def make_virtualenv(directory: Path) -> tuple[Path, Path]:
    """A fresh virtualenv that sees this one's packages (the app's dependencies, pip) after
    its own, through a ``.pth`` file: no download, and nothing of the checkout."""
    run([sys.executable, "-m", "venv", "--without-pip", directory])
    [site_packages] = directory.glob("lib/python*/site-packages")
    ours = dict.fromkeys(
        os.path.realpath(sysconfig.get_paths()[scheme]) for scheme in ("purelib", "platlib")
    )
    (site_packages / "dependencies_from_the_test_venv.pth").write_text("\n".join(ours) + "\n")
    return directory / "bin" / "python", site_packages


def test_wheel_installed_in_a_fresh_virtualenv_passes_check_and_migrate(
    built: Built, tmp_path: Path
) -> None:
    python, site_packages = make_virtualenv(tmp_path / "venv")
    project = tmp_path / "project"
    make_project(project)
    # No PYTHONPATH, no DJANGO_SETTINGS_MODULE, no DATABASE_URL from the test's environment;
    # the working directory is the generated project, far from the checkout.
    env = {"PATH": os.defpath, "HOME": str(tmp_path), "LC_ALL": "C.UTF-8"}

    pip = [python, "-m", "pip", "--disable-pip-version-check", "--no-cache-dir"]
    run([*pip, "install", "--no-deps", "--no-index", "-q", built.wheel], cwd=project, env=env)

    probe = last_json(run([python, "-c", IMPORT_PROBE], cwd=project, env=env))
    installed = site_packages / "configcat_segment"
    assert Path(probe["file"]).resolve() == (installed / "__init__.py").resolve()
    assert probe["version"] == probe["metadata_version"]
    assert built.wheel.name.startswith(f"configcat_segment-{probe['version']}-")
    assert probe["django_imported"] is False
    # Nowhere else on its path could the app come from: not the checkout, not the test's venv.
    entries = [project / entry for entry in probe["sys_path"]]  # "" is the working directory
    elsewhere = [
        entry
        for entry in entries
        if (entry / "configcat_segment").exists() and entry.resolve() != site_packages.resolve()
    ]
    assert elsewhere == []

    out = run([python, "manage.py", "check"], cwd=project, env=env)
    assert "System check identified no issues" in out

    out = run([python, "manage.py", "migrate", "--noinput"], cwd=project, env=env)
    shipped = sorted(path.stem for path in (installed / "migrations").glob("0*.py"))
    assert shipped
    applied = [name for name in shipped if f"Applying configcat_segment.{name}... OK" in out]
    assert applied == shipped, out

    run(
        [python, "manage.py", "makemigrations", "--check", "--dry-run", "configcat_segment"],
        cwd=project,
        env=env,
    )

    result = last_json(run([python, "manage.py", "shell", "-c", PAGES_PROBE], cwd=project, env=env))
    assert set(result["pages"].values()) == {200}, result["pages"]
    assert result["static"], "no static files found in the installed app"
