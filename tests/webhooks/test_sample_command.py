"""``configcat_segment_sample_webhook``: a signed sample change, sent over real HTTP."""

import io
import json
import shlex
import socket
import subprocess

import pytest
from django.core.management import CommandError, call_command

from configcat_segment.constants import HEADER_WEBHOOK_SIGNATURE
from configcat_segment.models import Event, WebhookReceipt
from configcat_segment.webhooks.signing import sign

from ..conftest import SIGNING_KEY, SIGNING_KEY_2
from ..test_commands import run

COMMAND = "configcat_segment_sample_webhook"


@pytest.fixture(autouse=True)
def fixed_clock():
    """The command signs with the real time, so the view keeps its real clock here."""


def send(*args):
    """Run the command in-process; returns (stdout, stderr).

    Not ``run``: that one stubs ``connections.close_all`` for every thread while the
    command runs, and the live server's request threads would then keep their database
    connections open.
    """
    out, err = io.StringIO(), io.StringIO()
    call_command(COMMAND, *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.mark.django_db(transaction=True)
def test_sends_a_signed_sample_that_becomes_an_event(live_server, make_connection):
    connection = make_connection(name="Staging", product_id="p-42", product_name="Shop")
    out, err = send("Staging", "--url", live_server.url, "--setting-key", "dark_mode")
    assert err == ""
    result = json.loads(out)
    assert result["url"] == live_server.url + connection.webhook_path
    assert result["status"] == 200
    assert result["answer"]["status"] == "processed"
    assert result["answer"]["events"] == 1
    [event] = Event.objects.all()
    assert event.flag_key == "dark_mode"
    properties = event.payload["properties"]
    assert properties["details"] == "dark_mode: false ➔ true"
    assert properties["product_id"] == "p-42"
    assert properties["product_name"] == "Shop"
    assert event.payload["userId"] == "sample@example.com"
    assert WebhookReceipt.objects.get().outcome == "processed"


@pytest.mark.django_db(transaction=True)
def test_the_printed_curl_command_works_when_pasted(capsys, live_server, make_connection):
    connection = make_connection(signing_key_secondary=SIGNING_KEY_2)
    code, out, err = run(
        capsys, COMMAND, str(connection.pk), "--url", live_server.url + "/", "--print-curl"
    )
    assert code == 0
    assert out.startswith(f"curl -sS -X POST {live_server.url}{connection.webhook_path} \\\n")
    assert "Run it within 300 s" in err
    assert Event.objects.count() == 0  # printed, not sent
    done = subprocess.run(
        ["bash", "-c", out], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["status"] == "processed"
    assert Event.objects.count() == 1


def test_signs_with_every_key_of_the_connection(capsys, make_connection):
    connection = make_connection(signing_key=SIGNING_KEY, signing_key_secondary=SIGNING_KEY_2)
    code, out, _ = run(capsys, COMMAND, connection.name, "--print-curl")
    assert code == 0
    words = shlex.split(out.replace(" \\\n", " "))
    headers = dict(words[i + 1].split(": ", 1) for i, w in enumerate(words) if w == "-H")
    body = words[words.index("--data-binary") + 1].encode()
    webhook_id = headers["X-ConfigCat-Webhook-ID"]
    timestamp = headers["X-ConfigCat-Webhook-Timestamp"]
    assert headers[HEADER_WEBHOOK_SIGNATURE].split(",") == [
        sign(key, webhook_id, timestamp, body) for key in (SIGNING_KEY, SIGNING_KEY_2)
    ]
    assert json.loads(body)["change_details"][0]["settingKey"] == "sample_flag"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["Nope"], "No Segment connection has the id or name 'Nope'."),
        (["Production", "--url", "127.0.0.1:8000"], "--url: give the site's http:// or https://"),
        (["Production", "--url", "ftp://host"], "--url: give the site's http:// or https://"),
        *(
            (["Production", "--url", url], "--url: give the site's http:// or https://")
            for url in (
                "http://[::1",
                "http://127.0.0.1:abc",
                "http://exa mple.com",
                "http://h/?q=1",
            )
        ),
        (["Prod\x00uction"], "give text: 'Prod\\x00uction' has a NUL character"),
        (["Production", "--setting-key", "k\udcff"], "--setting-key: give text:"),
    ],
)
def test_bad_arguments_are_one_line_errors(capsys, segment_connection, args, message):
    code, out, err = run(capsys, COMMAND, *args)
    assert code == 1
    assert out == ""
    assert message in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.django_db
@pytest.mark.parametrize("timeout", ["-1", "0", "nan", "inf", "soon"])
def test_a_bad_timeout_is_a_one_line_usage_error(capsys, segment_connection, timeout):
    code, out, err = run(capsys, COMMAND, "Production", "--timeout", timeout)
    assert code == 2  # argparse's code for a bad argument
    assert out == ""
    assert "--timeout: must be a number of seconds, more than 0 and at most 3600" in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.django_db
def test_an_unreachable_site_is_a_one_line_error(capsys, segment_connection):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    code, _, err = run(
        capsys, COMMAND, "Production", "--url", f"http://127.0.0.1:{port}", "--timeout", "5"
    )
    assert code == 1
    assert f"Could not reach http://127.0.0.1:{port}/configcat-segment/webhooks/" in err
    assert "Traceback" not in err


@pytest.mark.django_db(transaction=True)
def test_a_refused_sample_prints_the_answer_and_fails(live_server, make_connection):
    make_connection(name="Unsigned", signing_key="")
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError, match=r"^The webhook answered 403\.$"):
        call_command(COMMAND, "Unsigned", "--url", live_server.url, stdout=out, stderr=err)
    assert json.loads(out.getvalue())["answer"]["error"] == "no_signing_key"
    assert "no signing key: the sample is unsigned" in err.getvalue()
    assert WebhookReceipt.objects.count() == 0
