"""Names and other text typed by staff refuse control characters (issue 16, finding 8), and
the demo's debugger page needs a permission, not just staff status."""

import pytest
from django.core.exceptions import ValidationError
from django.test import Client

from configcat_segment.models import SegmentConnection
from configcat_segment.validators import validate_single_line

from .conftest import WRITE_KEY
from .eventlog.conftest import client_for, user_with
from .test_commands import connect, run

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "text", ["nul\x01", "bell\x07", "two\nlines", "tab\there", "del\x7f", "c1\x85"]
)
def test_single_line_text_refuses_control_characters(text):
    with pytest.raises(ValidationError) as refused:
        validate_single_line(text)
    [character] = [c for c in text if not c.isprintable()]
    assert refused.value.messages == [
        f"Enter one line of text without control characters (this has {character!r})."
    ]
    assert refused.value.error_list[0].code == "control_characters"


@pytest.mark.parametrize("text", ["Production", "Prod \u2013 EU (main)", "Ünïcode ✓", ""])
def test_single_line_text_takes_ordinary_text(text):
    validate_single_line(text)


@pytest.mark.parametrize(
    ("option", "value"),
    [("--name", "nul\x01"), ("--product-name", "Shop\nEvil"), ("--product-id", "p\x1b[31m")],
)
def test_the_connect_command_refuses_control_characters(capsys, option, value):
    if option == "--name":
        code, out, err = connect(capsys, name=value)
    else:
        code, out, err = connect(capsys, option, value)
    assert code != 0
    assert out == ""
    assert f"{option}: " in err
    assert "control character" in err
    assert "Traceback" not in err
    assert not SegmentConnection.objects.exists()


def test_a_write_key_with_a_control_character_is_refused(capsys):
    code, _, err = run(
        capsys,
        "configcat_segment_connect",
        "--name=P",
        f"--write-key={WRITE_KEY}\x01",
        "--region=us",
    )
    assert code != 0
    assert "--write-key: " in err


def test_the_admin_form_refuses_control_characters(staff_client):
    data = {
        "name": "evil\x07name",
        "write_key": WRITE_KEY,
        "region": "us",
        "custom_endpoint": "",
        "product_id": "",
        "product_name": "Shop\r\nX-Injected: yes",
        "signing_key": "",
        "signing_key_secondary": "",
        "forward_changes": "on",
        "forward_evaluations": "on",
    }
    response = staff_client.post_form("/admin/configcat_segment/segmentconnection/add/", data)
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert set(errors) == {"name", "product_name"}
    assert not SegmentConnection.objects.exists()


def test_the_demo_debugger_needs_the_permission_to_view_received_messages():
    assert Client().get("/debugger/").status_code == 302  # to the login page
    assert client_for(user_with()).get("/debugger/").status_code == 403  # staff, no permission
    allowed = client_for(user_with("view_receivedmessage"))
    assert allowed.get("/debugger/").status_code == 200
