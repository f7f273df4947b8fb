"""Custom endpoints may not point at this machine, its private network or a metadata service
unless ``ALLOWED_ENDPOINT_HOSTS`` says so (issue 16, finding 3: checked when saved)."""

# ruff: noqa: S104 -- 0.0.0.0 is data here, nothing binds to it
import ipaddress
import json

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from configcat_segment.conf import find_problems, get_settings
from configcat_segment.models import SegmentConnection
from configcat_segment.segment.addresses import (
    EndpointPolicy,
    address_problem,
    literal_address,
)
from configcat_segment.validators import validate_endpoint

from .conftest import WRITE_KEY

NOTHING_ALLOWED = EndpointPolicy()

ATTACKS = [
    "http://127.0.0.1:5432",
    "http://169.254.169.254/latest",
    "http://[::1]:6379",
    "http://2130706433",
    "http://0177.0.0.1",
    "http://0x7f.1",
    "http://127.1",
    "http://[::ffff:127.0.0.1]",
    "http://[::ffff:a9fe:a9fe]",
    "http://[64:ff9b::a9fe:a9fe]",
    "http://[2002:7f00:1::]",
    "http://[fe80::1%25eth0]",
    "http://0.0.0.0:8000",
    "http://10.0.0.7",
    "http://192.168.1.1",
    "http://172.16.0.1",
    "http://100.100.100.200",
    "http://224.0.0.1",
    "http://240.0.0.1",
    "http://localhost:8000",
    "http://LOCALHOST.",
    "http://api.localhost",
    "http://metadata.google.internal/computeMetadata",
    "http://metadata.google.internal.",
    "http://instance-data",
]


def without_allowlist():
    return override_settings(
        CONFIGCAT_SEGMENT={**get_settings().__dict__, "ALLOWED_ENDPOINT_HOSTS": []}
    )


@pytest.mark.parametrize("url", ATTACKS)
def test_internal_endpoints_are_refused_without_an_allowlist(url):
    with without_allowlist(), pytest.raises(ValidationError) as refused:
        validate_endpoint(url)
    [message] = refused.value.messages
    assert "ALLOWED_ENDPOINT_HOSTS" in message
    assert refused.value.error_list[0].code == "endpoint_not_allowed"


@pytest.mark.parametrize(
    "url",
    [
        "https://api.segment.io",
        "https://events.eu1.segmentapis.com",
        "https://segment-proxy.example.com/segment",
        "http://8.8.8.8",
        "https://[2606:4700:4700::1111]",
        # A name that merely looks like a number is a name (resolved, and checked, at send time).
        "https://1.2.3.4.example.com",
    ],
)
def test_public_endpoints_are_accepted_without_an_allowlist(url):
    with without_allowlist():
        validate_endpoint(url)


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("2130706433", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("0x7f.0.0.1", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("169.254.43518", "169.254.169.254"),
        ("0", "0.0.0.0"),
        ("0x", "0.0.0.0"),
        ("[::1]", "::1"),
        ("::ffff:127.0.0.1", "::ffff:7f00:1"),
        ("example.com", None),
        ("1.2.3.4.example.com", None),
        ("256.1.1.1", None),
        ("08.1.1.1", None),  # 08 is not octal: a name as far as we can tell
        ("4294967296", None),
    ],
)
def test_literal_addresses_in_every_form_inet_aton_accepts(host, expected):
    found = literal_address(host)
    assert (str(found) if found else None) == expected


@pytest.mark.parametrize(
    ("address", "words"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("169.254.169.254", "link-local"),
        ("10.1.2.3", "private"),
        ("fd00::1", "private"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("240.0.0.1", "reserved"),
        ("100.64.0.1", "not publicly routable"),
        ("::ffff:10.0.0.1", "private"),
        ("64:ff9b::7f00:1", "loopback"),
        ("2002:a9fe:a9fe::", "link-local"),
    ],
)
def test_what_is_not_public_is_named(address, words):
    assert words in address_problem(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses_have_no_problem(address):
    assert address_problem(ipaddress.ip_address(address)) is None


def test_the_allowlist_takes_networks_addresses_and_host_names():
    policy = EndpointPolicy.from_entries(
        ["127.0.0.0/8", "::1", "segment-proxy.internal", ".corp.example"]
    )
    assert policy.host_problem("127.0.0.1") is None
    assert policy.host_problem("2130706433") is None
    assert policy.host_problem("[::1]") is None
    assert policy.host_problem("[::ffff:127.0.0.1]") is None
    assert policy.host_problem("SEGMENT-PROXY.internal.") is None
    assert policy.host_problem("corp.example") is None
    assert policy.host_problem("relay.corp.example") is None
    assert policy.host_problem("10.0.0.1") is not None
    assert policy.host_problem("localhost") is not None  # a name, not in the list
    assert policy.host_allowed("segment-proxy.internal")
    assert not policy.host_allowed("evil-segment-proxy.internal")
    assert policy.address_problem(ipaddress.ip_address("127.9.9.9")) is None
    assert policy.address_problem(ipaddress.ip_address("10.0.0.1")) is not None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("127.0.0.1", "must be a list"),
        ([""], "not an empty string"),
        (["http://127.0.0.1"], "a host name, an IP address or a network"),
        (["127.0.0.1:8000"], "a host name, an IP address or a network"),
        (["10.0.0.0/33"], "a host name, an IP address or a network"),
        (["*"], "a host name, an IP address or a network"),
        ([42], "a host name, an IP address or a network"),
    ],
)
def test_bad_allowlists_are_reported_by_the_checks(value, expected):
    [(kind, message, _hint)] = find_problems({"ALLOWED_ENDPOINT_HOSTS": value})
    assert kind == "invalid"
    assert expected in message


def test_the_demo_and_the_tests_allow_loopback_explicitly(settings):
    from project.settings import CONFIGCAT_SEGMENT as DEMO

    assert "127.0.0.0/8" in DEMO["ALLOWED_ENDPOINT_HOSTS"]
    assert "127.0.0.0/8" in settings.CONFIGCAT_SEGMENT["ALLOWED_ENDPOINT_HOSTS"]
    validate_endpoint("http://127.0.0.1:8000/debugger")


@pytest.mark.django_db
def test_the_connect_command_refuses_an_internal_endpoint(capsys):
    with without_allowlist(), pytest.raises(CommandError) as refused:
        call_command(
            "configcat_segment_connect",
            "--name=Internal",
            f"--write-key={WRITE_KEY}",
            "--region=http://169.254.169.254/latest",
        )
    assert str(refused.value).startswith("--region: ")
    assert "link-local" in str(refused.value)
    assert not SegmentConnection.objects.exists()


@pytest.mark.django_db
def test_the_admin_form_refuses_an_internal_endpoint(staff_client):
    data = {
        "name": "Internal",
        "write_key": WRITE_KEY,
        "region": "custom",
        "custom_endpoint": "http://[::1]:6379",
        "product_id": "",
        "product_name": "",
        "signing_key": "",
        "signing_key_secondary": "",
        "forward_changes": "on",
        "forward_evaluations": "on",
    }
    with without_allowlist():
        response = staff_client.post_form("/admin/configcat_segment/segmentconnection/add/", data)
    assert response.status_code == 200
    assert "is a loopback address" in response.content.decode()
    assert not SegmentConnection.objects.exists()


@pytest.mark.django_db
def test_the_connect_command_accepts_an_allowed_private_endpoint(capsys):
    with override_settings(
        CONFIGCAT_SEGMENT={**get_settings().__dict__, "ALLOWED_ENDPOINT_HOSTS": ["10.0.0.0/8"]}
    ):
        call_command(
            "configcat_segment_connect",
            "--name=Proxy",
            f"--write-key={WRITE_KEY}",
            "--region=http://10.1.2.3:8080",
        )
    assert json.loads(capsys.readouterr().out)["endpoint"] == "http://10.1.2.3:8080"
