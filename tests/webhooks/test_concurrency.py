"""Two simultaneous deliveries of one webhook, over real HTTP, on PostgreSQL.

A barrier makes both requests reach the receipt's INSERT before either has written it,
so no lookup could have told them apart: only the database's unique constraint can.
"""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db.models.signals import pre_save

from configcat_segment.management.commands.configcat_segment_sample_webhook import send
from configcat_segment.models import Event, WebhookReceipt

from .conftest import configcat_body, headers_for

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def meet_before_insert():
    """Call it to make each receipt INSERT wait until two requests are about to insert."""
    barrier = threading.Barrier(2, timeout=60)

    def wait(sender, instance, **kwargs):
        if instance._state.adding:
            barrier.wait()

    yield lambda: pre_save.connect(wait, sender=WebhookReceipt, weak=False)
    pre_save.disconnect(wait, sender=WebhookReceipt)


def deliver_twice_at_once(live_server, connection, body, headers):
    url = live_server.url + connection.webhook_path
    headers = {"Content-Type": "application/json", **headers}
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = [pool.submit(send, url, headers, body, 60) for _ in range(2)]
        return [future.result() for future in futures]


def test_two_simultaneous_deliveries_make_one_receipt_and_one_set_of_events(
    live_server, make_connection, atomic_requests, meet_before_insert
):
    connection = make_connection()
    body = configcat_body()
    meet_before_insert()
    results = deliver_twice_at_once(live_server, connection, body, headers_for(body))
    assert [status for status, _ in results] == [200, 200]
    assert sorted(answer["status"] for _, answer in results) == ["duplicate", "processed"]
    receipt = WebhookReceipt.objects.get()
    assert receipt.outcome == "processed"
    assert Event.objects.filter(receipt=receipt).count() == 2
    assert Event.objects.count() == 2


def test_two_simultaneous_redeliveries_of_a_failed_webhook_reprocess_it_once(
    live_server, make_connection, atomic_requests, broken_parser, meet_before_insert
):
    connection = make_connection()
    body = configcat_body()
    headers = headers_for(body)
    first = send(live_server.url + connection.webhook_path, headers, body, 60)
    assert first[0] == 503
    meet_before_insert()
    results = deliver_twice_at_once(live_server, connection, body, headers)
    assert [status for status, _ in results] == [200, 200]
    receipt = WebhookReceipt.objects.get()
    assert receipt.outcome == "processed"
    assert Event.objects.count() == 2
