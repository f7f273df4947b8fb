import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command

from project.env import env_bool, env_list

ROOT = Path(__file__).resolve().parent.parent


def test_env_bool(monkeypatch):
    monkeypatch.setenv("X_FLAG", "Yes")
    assert env_bool("X_FLAG", False) is True
    monkeypatch.setenv("X_FLAG", "0")
    assert env_bool("X_FLAG", True) is False
    monkeypatch.delenv("X_FLAG")
    assert env_bool("X_FLAG", True) is True
    monkeypatch.setenv("X_FLAG", "maybe")
    with pytest.raises(ImproperlyConfigured, match="X_FLAG must be one of"):
        env_bool("X_FLAG", True)


def test_env_list(monkeypatch):
    monkeypatch.setenv("X_HOSTS", " a.example, b.example ,,")
    assert env_list("X_HOSTS", []) == ["a.example", "b.example"]


def manage(*args, **env):
    clean = {
        k: v for k, v in os.environ.items() if k not in ("DEBUG", "SECRET_KEY", "DATABASE_URL")
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DEBUG": "maybe"}, "Configuration error: DEBUG must be one of"),
        ({"DEBUG": "false"}, "Configuration error: SECRET_KEY must be set when DEBUG is off"),
        (
            {"DATABASE_URL": "nosuchdb://x"},
            "Configuration error: DATABASE_URL is not a database URL",
        ),
    ],
)
def test_bad_environment_is_one_clear_line(env, message):
    result = manage("check", **env)
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_the_monitoring_token_comes_from_the_environment(tmp_path):
    """So that the health and metrics URLs can be tried on the demo without a session."""
    token = "demo-monitoring-token-0123456789"
    read = "from configcat_segment.conf import get_settings as s; print(s().MONITORING_TOKEN)"
    database = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    given = manage(
        "shell", "-c", read, CONFIGCAT_SEGMENT_MONITORING_TOKEN=token, DATABASE_URL=database
    )
    assert given.stdout.split()[-1] == token, given.stderr


def test_sqlite_is_configured_for_a_background_writer(monkeypatch, tmp_path):
    from project.settings import _database

    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'db.sqlite3'}")
    options = _database()["OPTIONS"]
    assert "journal_mode=WAL" in options["init_command"]
    assert options["transaction_mode"] == "IMMEDIATE"
    assert options["timeout"] >= 5


@pytest.mark.django_db
def test_demo_seed_prints_a_random_password_once(capsys, monkeypatch):
    monkeypatch.delenv("DEMO_ADMIN_PASSWORD", raising=False)
    call_command("demo_seed")
    out = capsys.readouterr().out
    password = out.split("with password: ")[1].split()[0]
    user = get_user_model().objects.get(username="admin")
    assert user.is_superuser
    assert user.check_password(password)
    call_command("demo_seed")
    again = capsys.readouterr().out
    assert password not in again
    assert "unchanged" in again
    assert get_user_model().objects.get(username="admin").check_password(password)


@pytest.mark.django_db
def test_demo_seed_takes_the_password_from_the_environment(capsys, monkeypatch):
    monkeypatch.setenv("DEMO_ADMIN_PASSWORD", "from-env-123")
    call_command("demo_seed")
    out = capsys.readouterr().out
    assert "from-env-123" not in out
    assert get_user_model().objects.get(username="admin").check_password("from-env-123")
    monkeypatch.setenv("DEMO_ADMIN_PASSWORD", "changed-456")
    call_command("demo_seed")
    assert get_user_model().objects.get(username="admin").check_password("changed-456")


@pytest.mark.django_db
def test_home_page(client):
    response = client.get("/")
    assert response.status_code == 200
    assert b"configcat_segment demo" in response.content
