import datetime as dt
import uuid
import zoneinfo

import pytest

from configcat_segment.eventlog.filters import EventFilter, parse, parse_moment
from configcat_segment.models import Event

PARIS = zoneinfo.ZoneInfo("Europe/Paris")


def test_every_parameter_is_read():
    connection = uuid.uuid4()
    event_filter, errors = parse(
        {
            "connection": str(connection),
            "kind": "changed",
            "status": "dead",
            "flag_key": " checkout ",
            "user_id": "u-1",
            "since": "2025-05-01T10:00",
            "until": "2025-05-02",
            "q": "chec",
        },
        PARIS,
    )
    assert errors == {}
    assert event_filter.connection == connection
    assert (event_filter.kind, event_filter.status) == ("changed", "dead")
    assert (event_filter.flag_key, event_filter.user_id, event_filter.search) == (
        "checkout",
        "u-1",
        "chec",
    )
    assert event_filter.since == dt.datetime(2025, 5, 1, 10, tzinfo=PARIS)
    # A bare date as the end means "up to the end of that day".
    assert event_filter.until == dt.datetime(2025, 5, 3, tzinfo=PARIS)
    assert event_filter.is_active
    assert event_filter.params["flag_key"] == "checkout"


def test_no_parameters_is_no_filter():
    event_filter, errors = parse({})
    assert (event_filter, errors) == (EventFilter(), {})
    assert not event_filter.is_active


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("connection", "not-a-uuid", "“not-a-uuid” is not a connection id."),
        ("kind", "deleted", "“deleted” is not one of: changed, evaluated, experiment, identify."),
        ("status", "lost", "“lost” is not one of: pending, delivered, failed, dead."),
        ("flag_key", "x" * 256, "At most 255 characters, not 256."),
        ("q", "y" * 300, "At most 255 characters, not 300."),
        ("since", "yesterday", "“yesterday” is not a date or time such as 2025-05-01"),
        ("until", "2025-13-01", "“2025-13-01” is not a date or time"),
        ("since", "12:30", "“12:30” is not a date or time"),
        ("until", "9999-12-31", "“9999-12-31” is not a date or time"),
        ("since", "0001-01-01T00:00+14:00", "“0001-01-01T00:00+14:00” is not a date or time"),
        ("flag_key", "a\x00b", "A NUL character cannot be searched for."),
        ("user_id", "\x00", "A NUL character cannot be searched for."),
        ("q", "x\x00", "A NUL character cannot be searched for."),
    ],
)
def test_bad_values_are_reported_by_name_and_left_out(name, value, message):
    event_filter, errors = parse(
        {name: value, "status": "dead"} if name != "status" else {name: value}
    )
    assert list(errors) == [name]
    assert message in errors[name]
    assert name not in event_filter.params
    if name != "status":
        assert event_filter.status == "dead"  # the valid parts still apply


def test_a_time_range_must_end_after_it_starts():
    event_filter, errors = parse({"since": "2025-05-02", "until": "2025-05-01T12:00"})
    assert errors == {"until": "The end of the time range must be after its start."}
    assert event_filter.until is None
    assert event_filter.since == dt.datetime(2025, 5, 2, tzinfo=dt.UTC)


def test_moments_with_offsets_keep_them():
    assert parse_moment("2025-05-01T10:00:00Z", PARIS) == dt.datetime(2025, 5, 1, 10, tzinfo=dt.UTC)
    assert parse_moment("2025-05-01T10:00+02:00", dt.UTC) == dt.datetime(
        2025, 5, 1, 8, tzinfo=dt.UTC
    )
    assert parse_moment("2025-05-01", PARIS) == dt.datetime(2025, 5, 1, tzinfo=PARIS)


@pytest.mark.django_db
def test_apply_narrows_by_each_filter(make_event, make_connection):
    other = make_connection(name="Staging")
    old = dt.datetime(2025, 1, 1, 12, tzinfo=dt.UTC)
    changed = make_event(flag_key="checkout_v2", user_id="alice", created_at=old)
    evaluated = make_event(kind="evaluated", flag_key="dark_mode", user_id="bob", status="dead")
    identify = make_event(kind="identify", connection=other, user_id="carol", flag_key="")

    def shown(**params):
        event_filter, errors = parse(params)
        assert errors == {}
        return set(event_filter.apply(Event.objects.all()))

    assert shown() == {changed, evaluated, identify}
    assert shown(connection=str(other.pk)) == {identify}
    assert shown(kind="changed") == {changed}
    assert shown(kind="evaluated") == {evaluated}
    assert shown(kind="identify") == {identify}
    assert shown(status="dead") == {evaluated}
    assert shown(flag_key="dark_mode") == {evaluated}
    assert shown(flag_key="dark") == set()  # the flag key filter is exact
    assert shown(user_id="carol") == {identify}
    assert shown(q="DARK") == {evaluated}  # search: part of a flag key or user id, any case
    assert shown(q="aro") == {identify}
    assert shown(until="2025-01-01") == {changed}
    assert shown(since="2025-01-02") == {evaluated, identify}
    assert shown(since="2025-01-01T12:00", until="2025-01-01T12:01") == {changed}
    assert shown(kind="changed", status="dead") == set()
