import html

import pytest
from django.contrib.admin.models import ADDITION, CHANGE, LogEntry
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission

from configcat_segment.constants import WEBHOOK_BODY_TEMPLATE
from configcat_segment.models import SegmentConnection

from .conftest import SIGNING_KEY, SIGNING_KEY_2, WRITE_KEY, CsrfClient

pytestmark = pytest.mark.django_db

ADD_URL = "/admin/configcat_segment/segmentconnection/add/"
LIST_URL = "/admin/configcat_segment/segmentconnection/"


def change_url(connection):
    return f"{LIST_URL}{connection.pk}/change/"


def form_data(**overrides):
    data = {
        "name": "Production",
        "write_key": WRITE_KEY,
        "region": "us",
        "custom_endpoint": "",
        "product_id": "08d5e5d6-0000-0000-0000-000000000000",
        "product_name": "Shop",
        "signing_key": SIGNING_KEY,
        "signing_key_secondary": "",
        "forward_changes": "on",
        "forward_evaluations": "on",
        "_save": "Save",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def assert_no_secrets(response, *secrets):
    text = html.unescape(response.content.decode())
    for secret in secrets:
        assert secret not in text


def test_connect_a_source(staff_client, superuser):
    response = staff_client.post_form(ADD_URL, form_data())
    assert response.status_code == 302
    connection = SegmentConnection.objects.get()
    assert connection.write_key == WRITE_KEY
    assert connection.signing_key == SIGNING_KEY
    assert connection.connected
    assert connection.connected_by == superuser
    entry = LogEntry.objects.get()
    assert entry.action_flag == ADDITION
    assert entry.object_id == str(connection.pk)


def test_add_page_is_titled_connect(staff_client):
    response = staff_client.get(ADD_URL)
    assert response.status_code == 200
    assert "Connect a Segment source" in response.content.decode()
    assert "Connect a Segment source" in staff_client.get(LIST_URL).content.decode()


def test_form_errors_never_echo_the_secrets(staff_client):
    response = staff_client.post_form(ADD_URL, form_data(region="custom", custom_endpoint=""))
    assert response.status_code == 200
    assert "Enter the endpoint URL for a custom region." in response.content.decode()
    assert_no_secrets(response, WRITE_KEY, SIGNING_KEY)
    assert not SegmentConnection.objects.exists()


def test_bad_input_is_a_form_error_not_a_500(staff_client):
    response = staff_client.post_form(
        ADD_URL,
        form_data(
            write_key="with space",
            signing_key="nope",
            region="custom",
            custom_endpoint="https://x.example/v1/batch",
        ),
    )
    assert response.status_code == 200
    text = html.unescape(response.content.decode())
    assert "no spaces or line breaks" in text
    assert "start with 'configcat_whsk_'" in text
    assert "includes the API path" in text


def test_write_key_is_required_when_connecting(staff_client):
    response = staff_client.post_form(ADD_URL, form_data(write_key=""))
    assert response.status_code == 200
    assert not SegmentConnection.objects.exists()


def test_change_page_shows_only_redacted_secrets_and_the_webhook_setup(
    staff_client, segment_connection
):
    response = staff_client.get(change_url(segment_connection))
    assert response.status_code == 200
    assert_no_secrets(response, WRITE_KEY, SIGNING_KEY)
    text = html.unescape(response.content.decode())
    assert f"Stored key ends with …{WRITE_KEY[-4:]}" in text
    assert f"http://testserver/configcat-segment/webhooks/{segment_connection.pk}/" in text
    assert WEBHOOK_BODY_TEMPLATE in text
    assert text.count('class="button cs-copy"') == 2
    assert "configcat_segment/admin.js" in text


def test_blank_secret_keeps_the_stored_one_and_a_new_one_replaces_it(
    staff_client, segment_connection
):
    url = change_url(segment_connection)
    data = form_data(write_key="", signing_key="", product_name="Renamed")
    assert staff_client.post_form(url, data).status_code == 302
    segment_connection.refresh_from_db()
    assert segment_connection.write_key == WRITE_KEY
    assert segment_connection.signing_key == SIGNING_KEY
    assert segment_connection.product_name == "Renamed"

    data = form_data(
        write_key="new_write_key_123456", signing_key="", signing_key_secondary=SIGNING_KEY_2
    )
    assert staff_client.post_form(url, data).status_code == 302
    segment_connection.refresh_from_db()
    assert segment_connection.write_key == "new_write_key_123456"
    assert segment_connection.signing_keys == [SIGNING_KEY, SIGNING_KEY_2]
    entry = LogEntry.objects.filter(action_flag=CHANGE).first()
    assert "Write key" in entry.get_change_message()
    assert "new_write_key_123456" not in entry.change_message


def test_remove_a_signing_key(staff_client, segment_connection):
    segment_connection.signing_key_secondary = SIGNING_KEY_2
    segment_connection.save()
    url = change_url(segment_connection)
    response = staff_client.post_form(
        url, form_data(write_key="", signing_key="", clear_signing_key="on")
    )
    assert response.status_code == 302
    segment_connection.refresh_from_db()
    assert segment_connection.signing_key == ""
    assert segment_connection.signing_key_secondary == SIGNING_KEY_2


def test_remove_and_replace_at_once_is_refused(staff_client, segment_connection):
    url = change_url(segment_connection)
    response = staff_client.post_form(
        url, form_data(write_key="", signing_key=SIGNING_KEY_2, clear_signing_key="on")
    )
    assert response.status_code == 200
    assert "not both" in response.content.decode()
    segment_connection.refresh_from_db()
    assert segment_connection.signing_key == SIGNING_KEY


def test_disconnect_and_reconnect_buttons(staff_client, segment_connection, superuser):
    page = staff_client.get(change_url(segment_connection)).content.decode()
    disconnect_url = f"{LIST_URL}{segment_connection.pk}/disconnect/"
    assert f'action="{disconnect_url}"' in page

    response = staff_client.post_form(disconnect_url)
    assert response.status_code == 302
    assert response["Location"] == change_url(segment_connection)
    segment_connection.refresh_from_db()
    assert not segment_connection.connected
    assert segment_connection.disconnected_by == superuser
    assert LogEntry.objects.get().change_message == "Disconnected"

    page = staff_client.get(change_url(segment_connection)).content.decode()
    connect_url = f"{LIST_URL}{segment_connection.pk}/connect/"
    assert f'action="{connect_url}"' in page
    assert staff_client.post_form(connect_url).status_code == 302
    segment_connection.refresh_from_db()
    assert segment_connection.connected
    assert LogEntry.objects.first().change_message == "Connected"


def test_disconnect_needs_post_and_a_csrf_token(staff_client, segment_connection):
    url = f"{LIST_URL}{segment_connection.pk}/disconnect/"
    assert staff_client.get(url).status_code == 405
    assert staff_client.post(url).status_code == 403  # no CSRF token
    segment_connection.refresh_from_db()
    assert segment_connection.connected


def test_disconnect_of_an_unknown_or_malformed_id_is_404(staff_client):
    assert staff_client.post_form(f"{LIST_URL}not-a-uuid/disconnect/").status_code == 404
    missing = "00000000-0000-0000-0000-000000000000"
    assert staff_client.post_form(f"{LIST_URL}{missing}/disconnect/").status_code == 404


def test_list_actions_disconnect_and_connect(staff_client, make_connection):
    a, b = make_connection(), make_connection()
    data = {"action": "disconnect_selected", "_selected_action": [str(a.pk), str(b.pk)]}
    assert staff_client.post_form(LIST_URL, data).status_code == 302
    assert not SegmentConnection.objects.filter(connected=True).exists()
    assert LogEntry.objects.filter(change_message="Disconnected").count() == 2

    data["action"] = "connect_selected"
    assert staff_client.post_form(LIST_URL, data).status_code == 302
    assert SegmentConnection.objects.filter(connected=True).count() == 2


@pytest.fixture
def viewer_client(db):
    user = get_user_model().objects.create_user("viewer", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_segmentconnection"))
    client = CsrfClient()
    client.force_login(user)
    return client


def test_view_only_staff_cannot_disconnect(viewer_client, segment_connection):
    page = viewer_client.get(change_url(segment_connection))
    assert page.status_code == 200
    assert "/disconnect/" not in page.content.decode()
    assert_no_secrets(page, WRITE_KEY, SIGNING_KEY)
    assert "…" + WRITE_KEY[-4:] in html.unescape(page.content.decode())
    assert "Remove this key" not in page.content.decode()
    response = viewer_client.post_form(f"{LIST_URL}{segment_connection.pk}/disconnect/")
    assert response.status_code == 403
    segment_connection.refresh_from_db()
    assert segment_connection.connected
    assert "disconnect_selected" not in viewer_client.get(LIST_URL).content.decode()


def test_anonymous_users_are_sent_to_login(segment_connection):
    response = CsrfClient().get(change_url(segment_connection))
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_no_admin_page_shows_a_secret(staff_client, segment_connection):
    segment_connection.signing_key_secondary = SIGNING_KEY_2
    segment_connection.save()
    staff_client.post_form(change_url(segment_connection), form_data(write_key="", signing_key=""))
    base = f"{LIST_URL}{segment_connection.pk}/"
    for url in [
        LIST_URL,
        ADD_URL,
        change_url(segment_connection),
        base + "history/",
        base + "delete/",
        "/admin/",
        "/admin/configcat_segment/",
    ]:
        response = staff_client.get(url)
        assert response.status_code == 200, url
        assert_no_secrets(response, WRITE_KEY, SIGNING_KEY, SIGNING_KEY_2)


def test_saving_the_form_keeps_a_health_mark_set_while_it_was_being_saved(
    staff_client, segment_connection
):
    from django.db.models.signals import pre_save

    def dispatcher_meanwhile(sender, instance, **kwargs):
        # Segment refuses the key after the admin loaded the connection, before it saves.
        SegmentConnection.objects.get(pk=instance.pk).mark_unhealthy("401 Unauthorized")

    url = change_url(segment_connection)
    pre_save.connect(dispatcher_meanwhile, sender=SegmentConnection, dispatch_uid="t")
    try:
        response = staff_client.post_form(
            url, form_data(write_key="", signing_key="", product_name="Renamed")
        )
    finally:
        pre_save.disconnect(dispatch_uid="t")
    assert response.status_code == 302
    segment_connection.refresh_from_db()
    assert segment_connection.product_name == "Renamed"
    assert segment_connection.unhealthy_reason == "401 Unauthorized"
    # A new write key is the fix: the health is reset.
    staff_client.post_form(url, form_data(write_key="a_fixed_write_key_123", signing_key=""))
    segment_connection.refresh_from_db()
    assert segment_connection.is_healthy
    assert segment_connection.write_key == "a_fixed_write_key_123"
