"""Claims: one process reconciles a connection at a time, and never undoes another's claim."""

from __future__ import annotations

import datetime as dt

import pytest

from configcat_segment.models import SegmentConnection
from configcat_segment.reconcile import claims, reconcile, run, run_due
from tests.webhooks.conftest import PRODUCT_ID

from .conftest import API_PASSWORD, API_USER, LATER, NOW_DT, audit_entry

pytestmark = pytest.mark.django_db(transaction=True)


def test_each_connection_is_claimed_at_the_time_it_is_reached(
    reconciling, make_connection, monkeypatch
):
    """Reading one connection may take minutes: the next one's claim (and its lease) must
    start when it is reached, not when the run started."""
    make_connection(
        name="Staging",
        product_id=PRODUCT_ID,
        configcat_api_user=API_USER,
        configcat_api_password=API_PASSWORD,
    )
    clock = [LATER]
    monkeypatch.setattr(run.timezone, "now", lambda: clock[0])
    seen = []

    def five_minutes_each(connection, *, now, **kwargs):
        seen.append((connection.name, now))
        clock[0] += dt.timedelta(minutes=5)
        return run.Outcome(connection)

    monkeypatch.setattr(run, "reconcile", five_minutes_each)
    run_due()

    assert seen == [("Production", LATER), ("Staging", LATER + dt.timedelta(minutes=5))]


def test_a_claim_that_ran_out_and_was_taken_is_neither_renewed_nor_released(reconciling):
    lease = dt.timedelta(minutes=2)
    first = claims.claim(reconciling, LATER, lease, None)
    assert first is not None
    assert claims.claim(reconciling, LATER + dt.timedelta(minutes=1), lease, None) is None
    # The first process stalls past its lease; a second takes the connection.
    second = claims.claim(reconciling, LATER + dt.timedelta(minutes=3), lease, None)
    assert second is not None

    assert claims.renew(first, LATER + dt.timedelta(minutes=4)) is False
    claims.finish(reconciling, first, "", LATER + dt.timedelta(minutes=4), None)

    reconciling.refresh_from_db()
    assert reconciling.reconcile_locked_until == second.until  # still the second's
    assert claims.claim(reconciling, LATER + dt.timedelta(minutes=4), lease, None) is None
    assert claims.renew(second, LATER + dt.timedelta(minutes=6)) is True
    claims.finish(reconciling, second, "", LATER + dt.timedelta(minutes=6), None)
    reconciling.refresh_from_db()
    assert reconciling.reconcile_locked_until is None


def test_a_run_that_lost_its_claim_stops_between_windows(
    reconciling, audit_log, send_webhook, api_settings, monkeypatch
):
    api_settings(RECONCILE_WINDOW_SECONDS=24 * 3600)
    send_webhook(reconciling)
    reconciling.reconciled_until = NOW_DT - dt.timedelta(minutes=1)
    reconciling.save()
    for day in range(3):
        audit_entry(
            audit_log, setting_key=f"flag{day}", at=NOW_DT + dt.timedelta(days=day, hours=1)
        )
    taken_until = NOW_DT + dt.timedelta(days=30)
    real_window = run._window

    def then_taken(*args, **kwargs):
        real_window(*args, **kwargs)
        # Meanwhile the claim ran out and another process took the connection.
        SegmentConnection.objects.filter(pk=reconciling.pk).update(
            reconcile_locked_until=taken_until
        )

    monkeypatch.setattr(run, "_window", then_taken)
    outcome = reconcile(reconciling, now=NOW_DT + dt.timedelta(days=3))

    assert (outcome.windows, outcome.forwarded, outcome.complete) == (1, 1, False)
    reconciling.refresh_from_db()
    assert reconciling.reconcile_locked_until == taken_until  # not released: not its own
