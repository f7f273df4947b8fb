"""The Public API credential in the connection's admin form: write-only, shown redacted."""

from __future__ import annotations

import pytest

from configcat_segment.models import SegmentConnection
from tests.test_admin import assert_no_secrets, change_url, form_data

from .conftest import API_PASSWORD, API_USER

pytestmark = pytest.mark.django_db


def test_the_credential_is_stored_and_never_shown(staff_client, segment_connection):
    data = form_data(configcat_api_user=API_USER, configcat_api_password=API_PASSWORD)
    response = staff_client.post_form(change_url(segment_connection), data)
    assert response.status_code == 302, response.content.decode()[:2000]
    segment_connection.refresh_from_db()
    assert segment_connection.configcat_api_user == API_USER
    assert segment_connection.configcat_api_password == API_PASSWORD

    page = staff_client.get(change_url(segment_connection))
    assert_no_secrets(page, API_USER, API_PASSWORD)
    text = page.content.decode()
    assert f"Stored value ends with …{API_PASSWORD[-4:]}" in text
    assert "On; not read yet." in text


def test_blank_keeps_it_and_remove_removes_it(staff_client, segment_connection):
    segment_connection.configcat_api_user = API_USER
    segment_connection.configcat_api_password = API_PASSWORD
    segment_connection.product_id = "08d5e5d6-0000-0000-0000-000000000000"
    segment_connection.save()
    staff_client.post_form(change_url(segment_connection), form_data())
    segment_connection.refresh_from_db()
    assert segment_connection.configcat_api_password == API_PASSWORD

    data = form_data(clear_configcat_api_user="on", clear_configcat_api_password="on")
    staff_client.post_form(change_url(segment_connection), data)
    segment_connection.refresh_from_db()
    assert (segment_connection.configcat_api_user, segment_connection.configcat_api_password) == (
        "",
        "",
    )


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"configcat_api_user": API_USER}, "A Public API credential is a username and a password."),
        (
            {
                "configcat_api_user": API_USER,
                "configcat_api_password": API_PASSWORD,
                "product_id": "",
            },
            "Reading the audit log with the credential needs the product id.",
        ),
    ],
)
def test_half_a_credential_is_a_form_error(staff_client, segment_connection, fields, error):
    response = staff_client.post_form(change_url(segment_connection), form_data(**fields))
    assert response.status_code == 200
    assert error in response.content.decode()
    assert_no_secrets(response, API_PASSWORD)
    assert SegmentConnection.objects.get().configcat_api_user == ""
