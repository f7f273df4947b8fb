import html

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.messages import get_messages

from configcat_segment.eventlog import actions
from configcat_segment.models import Event

from .conftest import EVENTS_URL, event_url

pytestmark = pytest.mark.django_db


def flash(response):
    return [str(m) for m in get_messages(response.wsgi_request)]


def entries_for(event):
    return LogEntry.objects.filter(object_id=str(event.pk))


@pytest.mark.parametrize("status", ["failed", "dead"])
def test_retry_queues_a_failed_or_dead_event_again_with_the_same_message_id(
    changer_client, make_event, status
):
    event = make_event(status=status)
    response = changer_client.post_form(event_url(event) + "retry/")
    assert response.status_code == 302
    assert response["Location"] == event_url(event)
    assert flash(response) == [
        f"Event {event.pk} is retried: it is queued again with the same messageId."
    ]
    retried = Event.objects.get(pk=event.pk)
    assert (retried.status, retried.attempts, retried.message_id) == (
        "pending",
        0,
        event.message_id,
    )
    assert retried.payload == event.payload
    [entry] = entries_for(event)
    assert entry.action_flag == CHANGE
    assert entry.change_message == actions.RETRIED
    assert entry.user.username.startswith("view_event-change_event")
    assert f"[{status}]" in entry.object_repr
    page = changer_client.get(event_url(event)).content.decode()
    assert "Retried: queued again with the same messageId." in page  # in the timeline


def test_replay_sends_a_delivered_event_again_with_the_same_message_id(changer_client, make_event):
    event = make_event(status="delivered")
    assert ">Replay<" in changer_client.get(event_url(event)).content.decode()
    response = changer_client.post_form(event_url(event) + "replay/")
    assert response.status_code == 302
    replayed = Event.objects.get(pk=event.pk)
    assert (replayed.status, replayed.delivered_at, replayed.message_id) == (
        "pending",
        None,
        event.message_id,
    )
    assert entries_for(event).get().change_message == actions.REPLAYED


@pytest.mark.parametrize(
    ("action", "status", "message"),
    [
        (
            "retry",
            "delivered",
            "is delivered; only failed, will retry or dead events can be retried.",
        ),
        ("retry", "pending", "is pending; only failed, will retry or dead events can be retried."),
        ("replay", "dead", "is dead; only delivered events can be replayed."),
    ],
)
def test_the_wrong_action_for_a_status_changes_nothing_and_says_why(
    changer_client, make_event, action, status, message
):
    event = make_event(status=status)
    response = changer_client.post_form(event_url(event) + f"{action}/")
    assert response.status_code == 302
    assert message in flash(response)[0]
    assert Event.objects.get(pk=event.pk).status == status
    assert not entries_for(event).exists()


def test_actions_need_post_a_csrf_token_and_the_change_permission(
    changer_client, viewer_client, make_event
):
    event = make_event(status="dead")
    url = event_url(event) + "retry/"
    assert changer_client.get(url).status_code == 405
    assert changer_client.post(url).status_code == 403  # no CSRF token
    assert viewer_client.post_form(url).status_code == 403
    assert viewer_client.post_form(EVENTS_URL + "retry/").status_code == 403
    assert viewer_client.get(EVENTS_URL + "retry/").status_code == 403
    assert Event.objects.get(pk=event.pk).status == "dead"
    assert changer_client.post_form(f"{EVENTS_URL}999999/retry/").status_code == 404


def test_viewers_see_no_action_buttons(viewer_client, changer_client, make_event):
    event = make_event(status="dead")
    for client, shown in [(viewer_client, False), (changer_client, True)]:
        detail = client.get(event_url(event)).content.decode()
        assert (f'action="{event_url(event)}retry/"' in detail) is shown
        listing = client.get(EVENTS_URL).content.decode()
        assert (f'href="{EVENTS_URL}retry/' in listing) is shown


def test_bulk_retry_confirms_then_retries_everything_the_filter_shows(
    changer_client, make_event, monkeypatch
):
    monkeypatch.setattr(actions, "CHUNK", 2)  # several chunks with a few events
    chosen = [make_event(status="dead", flag_key="checkout") for _ in range(3)]
    chosen.append(make_event(status="failed", flag_key="checkout"))
    delivered = make_event(status="delivered", flag_key="checkout")
    other_flag = make_event(status="dead", flag_key="dark_mode")

    confirm = changer_client.get(EVENTS_URL + "retry/?flag_key=checkout")
    assert confirm.status_code == 200
    page = html.unescape(confirm.content.decode())
    assert "4 failed or dead events match this filter" in page
    assert '<input type="hidden" name="flag_key" value="checkout">' in page

    response = changer_client.post_form(EVENTS_URL + "retry/", {"flag_key": "checkout"})
    assert response.status_code == 302
    assert response["Location"] == EVENTS_URL + "?flag_key=checkout"
    assert flash(response) == ["4 events are queued again."]
    assert set(Event.objects.filter(status="pending").values_list("pk", flat=True)) == {
        e.pk for e in chosen
    }
    assert Event.objects.get(pk=delivered.pk).status == "delivered"  # retry never replays
    assert Event.objects.get(pk=other_flag.pk).status == "dead"
    assert LogEntry.objects.filter(change_message=actions.RETRIED).count() == 4


def test_bulk_retry_with_a_bad_filter_retries_nothing(changer_client, make_event):
    event = make_event(status="dead")
    response = changer_client.post_form(EVENTS_URL + "retry/", {"status": "dead", "since": "soon"})
    assert response.status_code == 302
    assert "Nothing was retried: the filter is not valid" in flash(response)[0]
    assert Event.objects.get(pk=event.pk).status == "dead"
    confirm = changer_client.get(EVENTS_URL + "retry/?kind=bogus")
    assert confirm.status_code == 302
    assert not LogEntry.objects.exists()


def test_bulk_retry_with_nothing_to_retry_says_so(changer_client, make_event):
    make_event(status="delivered")
    page = changer_client.get(EVENTS_URL + "retry/").content.decode()
    assert "there is nothing to retry" in page
    assert "<form" not in page.split('id="content-main"')[1]


def test_retry_leaves_an_event_delivered_meanwhile_alone(make_event, superuser):
    """The rows are chosen by status inside the action: what is delivered is not replayed."""
    dead, delivered = make_event(status="dead"), make_event(status="delivered")
    assert actions.retry(Event.objects.all(), superuser) == 1
    assert Event.objects.get(pk=delivered.pk).status == "delivered"
    assert Event.objects.get(pk=dead.pk).status == "pending"
    assert actions.replay(Event.objects.all(), superuser) == 1
    assert Event.objects.get(pk=delivered.pk).status == "pending"
