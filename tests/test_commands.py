import json
from unittest import mock

import pytest
from django.core.management import base as management_base
from django.core.management import load_command_class

from configcat_segment.models import Event, SegmentConnection

from .conftest import SIGNING_KEY, SIGNING_KEY_2, WRITE_KEY

pytestmark = pytest.mark.django_db


def run(capsys, name, *args):
    """Run a command as manage.py would: returns (exit code, stdout, stderr).

    ``run_from_argv`` closes every database connection when it ends, as a process about
    to exit should; here that would close the test's own connection, so it is kept open.
    """
    command = load_command_class("configcat_segment", name)
    code = 0
    try:
        with mock.patch.object(management_base.connections, "close_all"):
            command.run_from_argv(["manage.py", name, *args])
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def connect(capsys, *extra, name="Production", region="us"):
    return run(
        capsys,
        "configcat_segment_connect",
        "--name",
        name,
        "--write-key",
        WRITE_KEY,
        "--region",
        region,
        *extra,
    )


def test_connect_prints_the_connection_as_json(capsys):
    code, out, err = connect(
        capsys,
        "--product-id",
        "p1",
        "--product-name",
        "Shop",
        "--signing-key",
        SIGNING_KEY,
        "--signing-key",
        SIGNING_KEY_2,
    )
    assert (code, err) == (0, "")
    data = json.loads(out)
    connection = SegmentConnection.objects.get()
    assert data["id"] == str(connection.pk)
    assert data["name"] == "Production"
    assert data["region"] == "us"
    assert data["endpoint"] == "https://api.segment.io"
    assert data["webhook_path"] == f"/configcat-segment/webhooks/{connection.pk}/"
    assert data["connected"] is True
    assert data["product_name"] == "Shop"
    assert connection.signing_keys == [SIGNING_KEY, SIGNING_KEY_2]
    assert WRITE_KEY not in out
    assert SIGNING_KEY not in out
    assert data["write_key"] == "…" + WRITE_KEY[-4:]


def test_connect_with_a_custom_endpoint_and_switches(capsys):
    code, out, _ = connect(capsys, "--no-evaluations", region="http://127.0.0.1:9000/seg/")
    assert code == 0
    data = json.loads(out)
    assert data["region"] == "http://127.0.0.1:9000/seg"
    assert data["endpoint"] == "http://127.0.0.1:9000/seg"
    assert data["forward_evaluations"] is False
    assert data["forward_changes"] is True


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--region", "mars"], "--region: region must be 'us', 'eu' or an http(s) URL"),
        (
            ["--region", "https://x.example/v1/batch"],
            "--region: 'https://x.example/v1/batch' includes",
        ),
        (["--signing-key", "nope"], "--signing-key: ConfigCat webhook signing keys start with"),
        (["--signing-key", SIGNING_KEY] * 3, "--signing-key: give at most two keys"),
        (["--signing-key", " "], "--signing-key: give a key, not an empty value."),
    ],
)
def test_connect_bad_input_is_one_line_and_nonzero(capsys, args, message):
    base = ["--name", "P", "--write-key", WRITE_KEY, "--region", "us"]
    code, out, err = run(capsys, "configcat_segment_connect", *base, *args)
    assert code != 0
    assert out == ""
    assert err.count("\n") == 1, err
    assert message in err
    assert "Traceback" not in err
    assert not SegmentConnection.objects.exists()


def test_connect_bad_write_key(capsys):
    code, _, err = run(
        capsys,
        "configcat_segment_connect",
        "--name",
        "P",
        "--write-key",
        "bad key",
        "--region",
        "us",
    )
    assert code == 1
    assert (
        err == "CommandError: --write-key: A Segment write key has no spaces or line "
        "breaks; check what was pasted.\n"
    )


def test_connect_missing_option_is_one_line(capsys):
    code, _out, err = run(capsys, "configcat_segment_connect", "--name", "P")
    assert code == 2
    assert err.count("\n") == 1
    assert "the following arguments are required: --write-key, --region" in err
    assert "usage:" not in err


def test_connect_duplicate_name(capsys):
    assert connect(capsys)[0] == 0
    code, _, err = connect(capsys)
    assert code == 1
    assert "--name: Segment connection with this Name already exists." in err
    assert SegmentConnection.objects.count() == 1


def test_disconnect_by_name_and_by_id(capsys, make_connection):
    _a, b = make_connection(name="A"), make_connection(name="B")
    code, out, _ = run(capsys, "configcat_segment_disconnect", "A")
    assert code == 0
    assert json.loads(out)["connected"] is False
    assert json.loads(out)["changed"] is True
    code, out, _ = run(capsys, "configcat_segment_disconnect", str(b.pk))
    assert code == 0
    assert json.loads(out)["id"] == str(b.pk)
    code, out, _ = run(capsys, "configcat_segment_disconnect", "A")
    assert code == 0
    assert json.loads(out)["changed"] is False
    assert not SegmentConnection.objects.filter(connected=True).exists()


@pytest.mark.parametrize("given", ["nobody", "00000000-0000-0000-0000-000000000000"])
def test_disconnect_unknown(capsys, given):
    code, out, err = run(capsys, "configcat_segment_disconnect", given)
    assert code == 1
    assert out == ""
    assert err == f"CommandError: No Segment connection has the id or name '{given}'.\n"


def test_disconnect_an_empty_name_is_refused(capsys, make_connection):
    make_connection(name="A")
    code, out, err = run(capsys, "configcat_segment_disconnect", " ")
    assert (code, out) == (1, "")
    assert err == "CommandError: Give a Segment connection's id or name, not an empty value.\n"
    assert SegmentConnection.objects.get().connected


def test_disconnect_needs_an_argument(capsys):
    code, _, err = run(capsys, "configcat_segment_disconnect")
    assert code == 2
    assert err.count("\n") == 1


def test_status_counts_events_per_connection_and_in_total(capsys, make_connection):
    a, b = make_connection(name="A"), make_connection(name="B")
    statuses = {a: ["pending", "pending", "delivered", "dead"], b: ["failed"]}
    n = 0
    for connection, values in statuses.items():
        for status in values:
            n += 1
            Event.objects.create(
                connection=connection, type="track", message_id=f"m{n}", payload={}, status=status
            )
    b.disconnect()
    code, out, _ = run(capsys, "configcat_segment_status")
    assert code == 0
    data = json.loads(out)
    assert data["events"] == {"pending": 2, "delivered": 1, "failed": 1, "dead": 1}
    by_name = {c["name"]: c for c in data["connections"]}
    assert by_name["A"]["counts"] == {"pending": 2, "delivered": 1, "failed": 0, "dead": 1}
    assert by_name["B"]["counts"] == {"pending": 0, "delivered": 0, "failed": 1, "dead": 0}
    assert by_name["B"]["connected"] is False
    assert by_name["A"]["id"] == str(a.pk)
    assert a.write_key not in out


def test_status_with_nothing(capsys):
    code, out, _ = run(capsys, "configcat_segment_status")
    assert code == 0
    assert json.loads(out) == {
        "connections": [],
        "events": {"pending": 0, "delivered": 0, "failed": 0, "dead": 0},
        "evaluations": {"dropped": 0, "failed": 0, "random_anonymous_ids": 0},
    }


@pytest.mark.parametrize(
    ("name", "args"),
    [
        (
            "configcat_segment_connect",
            ["--name", "P\udcff", "--write-key", WRITE_KEY, "--region", "us"],
        ),
        ("configcat_segment_disconnect", ["Prod\x00"]),
        ("configcat_segment_requeue", ["--connection", "\udcfe"]),
    ],
)
def test_arguments_that_are_not_text_are_one_line_errors(capsys, name, args):
    """Bytes that are not UTF-8 reach Python as lone surrogates; NUL only through
    call_command. Neither can be stored, shown or looked up."""
    code, out, err = run(capsys, name, *args)
    assert code == 1
    assert out == ""
    assert "give text:" in err
    assert "has a NUL character or bytes that are not UTF-8" in err
    assert len(err.strip().splitlines()) == 1
