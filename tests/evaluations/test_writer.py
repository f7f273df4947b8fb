"""The writer when writing fails: one bad evaluation never blocks or loses the others.

The database really refuses rows here (a trigger; on PostgreSQL also a lone surrogate in a
JSON value), and really goes away (every statement refused), on SQLite and PostgreSQL.
"""

from __future__ import annotations

import io
import json
import logging
from typing import Any

import pytest
from configcatclient.user import User
from django.core.management import call_command
from django.db import OperationalError, connection
from django.test.utils import CaptureQueriesContext

import configcat_segment
from configcat_segment.evaluations import buffer as writer
from configcat_segment.evaluations import store
from configcat_segment.evaluations.payloads import Evaluation, messages_for
from configcat_segment.models import EvaluationCounter, Event

from .conftest import database_away, tracks

pytestmark = pytest.mark.django_db

REFUSED_FLAG = "refusedByTheDatabase"

_SQLITE_TRIGGER = f"""
CREATE TRIGGER test_refuse_flag BEFORE INSERT ON configcat_segment_event
WHEN NEW.flag_key = '{REFUSED_FLAG}'
BEGIN SELECT RAISE(ABORT, 'this test refuses the flag'); END
"""
_POSTGRES_TRIGGER = [
    f"""
    CREATE FUNCTION test_refuse_flag() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF NEW.flag_key = '{REFUSED_FLAG}' THEN
            RAISE EXCEPTION 'this test refuses the flag';
        END IF;
        RETURN NEW;
    END $$
    """,
    """
    CREATE TRIGGER test_refuse_flag BEFORE INSERT ON configcat_segment_event
    FOR EACH ROW EXECUTE FUNCTION test_refuse_flag()
    """,
]


@pytest.fixture
def database_refuses_a_flag() -> str:
    """The database itself refuses every event of one flag: a row no retry can store.

    Created inside the test's transaction, so it is rolled back with it.
    """
    with connection.cursor() as cursor:
        for statement in [_SQLITE_TRIGGER] if connection.vendor == "sqlite" else _POSTGRES_TRIGGER:
            cursor.execute(statement)
    return REFUSED_FLAG


def evaluation(flag_key: str, user: Any, **fields: Any) -> Evaluation:
    values: dict[str, Any] = {
        "flag_key": flag_key,
        "value": True,
        "variation_id": f"{flag_key}-on",
        "timestamp": 1_700_000_000.0,
        "user": user,
        "user_id": user.get_identifier(),
        "anonymous_id": None,
        "context": None,
        "identify": False,
        "window": 5_666_666,
    }
    values.update(fields)
    return Evaluation(**values)


def status_counts() -> dict[str, int]:
    out = io.StringIO()
    call_command("configcat_segment_status", stdout=out)
    counts: dict[str, int] = json.loads(out.getvalue())["evaluations"]
    return counts


def test_a_row_the_database_refuses_is_dropped_counted_and_logged_the_rest_are_written(
    segment_connection, database_refuses_a_flag, caplog
):
    users = [User(f"user-{n}") for n in range(10)]
    batch = [evaluation("good", user) for user in users]
    batch[3] = evaluation(database_refuses_a_flag, users[3])
    batch[7] = evaluation(database_refuses_a_flag, users[7])
    writer.add(batch)
    with caplog.at_level(logging.WARNING, logger="configcat_segment.evaluations.buffer"):
        assert configcat_segment.flush() == 8

    assert sorted(t["userId"] for t in tracks()) == sorted(
        f"user-{n}" for n in range(10) if n not in (3, 7)
    )
    assert len(writer.get_writer()) == 0, "nothing is put back to fail again"
    assert status_counts()["unwritable"] == 2
    logged = [r.getMessage() for r in caplog.records]
    (message,) = [m for m in logged if "could not be written" in m]
    assert REFUSED_FLAG in message
    assert "this test refuses the flag" in message

    assert configcat_segment.flush() == 0, "the refused rows are not retried forever"
    assert status_counts()["unwritable"] == 2


def test_an_evaluation_that_raises_while_building_is_dropped_not_the_batch(segment_connection):
    """Not a database error: a user whose serialisation raises (a buggy USER_FACTORY)."""

    class BrokenUser(User):
        def __str__(self) -> str:
            raise RuntimeError("this user cannot be serialised")

    writer.add(
        [
            evaluation("first", User("u1")),
            evaluation("broken", BrokenUser("u2")),
            evaluation("last", User("u3")),
        ]
    )
    assert configcat_segment.flush() == 2
    assert sorted(t["properties"]["feature_flag_key"] for t in tracks()) == ["first", "last"]
    assert len(writer.get_writer()) == 0
    assert EvaluationCounter.objects.totals() == {"unwritable": 1}


@pytest.mark.postgres
def test_a_lone_surrogate_never_blocks_the_buffer_on_postgresql(segment_connection):
    """PostgreSQL refuses ``"\\ud800"`` in JSON. Whether the message builder makes it safe
    or the database refuses the row, it is accounted for once, and the rest are written."""
    client = configcat_segment.get_client()
    client.get_value("isPremium", False, User("before"))
    client.get_value("isPremium", False, User("surrogate", custom={"note": "\ud800"}))
    client.get_value("isPremium", False, User("after"))
    configcat_segment.flush()

    sent = {t["userId"] for t in tracks()}
    assert {"before", "after"} <= sent
    assert len(writer.get_writer()) == 0
    unwritable = EvaluationCounter.objects.totals().get("unwritable", 0)
    assert ("surrogate" in sent) + unwritable == 1


def test_when_the_database_is_away_nothing_is_dropped_and_ids_do_not_change(
    segment_connection, configure
):
    """A random-id evaluation (window 0) retried after an outage is stored once, same id."""
    configure(DEDUP_WINDOW_SECONDS=0)
    client = configcat_segment.get_client()
    for n in range(5):
        client.get_value("isPremium", False, User(f"user-{n}"))
    buffered = list(writer.get_writer()._buffer)
    with database_away():
        assert configcat_segment.flush() == 0
    assert len(writer.get_writer()) == 5
    assert EvaluationCounter.objects.totals() == {}, "an outage is not the rows' fault"
    assert configcat_segment.flush() == 10
    expected = {
        message["messageId"]
        for item in buffered
        for message in messages_for(
            item, salt=segment_connection.message_id_salt, long_value_length=256
        )
    }
    assert set(Event.objects.values_list("message_id", flat=True)) == expected


@pytest.mark.django_db(transaction=True)
def test_a_failure_after_some_chunks_stores_nothing_twice(
    segment_connection, configure, monkeypatch
):
    """Window 0 (random messageIds): the batch is one transaction, so a failing chunk rolls
    back the chunks before it, and the retry makes the same ids."""
    configure(DEDUP_WINDOW_SECONDS=0)
    monkeypatch.setattr(store, "INSERT_CHUNK", 2)
    client = configcat_segment.get_client()
    for _ in range(5):
        client.get_value("discountRate", 0.0)  # no user: one event each, a random messageId
    inserts = []

    def third_insert_fails_once(execute, sql, params, many, context):
        if sql.startswith(("INSERT INTO", "INSERT OR IGNORE")) and "configcat_segment_event" in sql:
            inserts.append(sql)
            if len(inserts) == 3:
                raise OperationalError("the connection dropped mid-batch")
        return execute(sql, params, many, context)

    with connection.execute_wrapper(third_insert_fails_once):
        configcat_segment.flush()
    configcat_segment.flush()
    ids = [t["messageId"] for t in tracks()]
    assert len(ids) == 5, "every evaluation stored exactly once"
    assert len(set(ids)) == 5
    assert len(writer.get_writer()) == 0


def test_a_recorded_evaluation_keeps_its_message_ids_however_often_it_is_built(configure):
    configure(DEDUP_WINDOW_SECONDS=0)
    client = configcat_segment.get_client()
    client.get_value("isPremium", False, User("u1"))
    client.get_value("isPremium", False, User("u1"))
    first, second = writer.get_writer()._buffer

    def ids(item: Evaluation) -> list[str]:
        return [m["messageId"] for m in messages_for(item, salt="s", long_value_length=256)]

    assert ids(first) == ids(first), "fixed when recorded, not when written"
    assert ids(first) != ids(second), "still one id per evaluation without a window"


def test_events_and_counts_are_written_in_one_transaction(segment_connection, configure):
    configure(EVALUATION_BUFFER_SIZE=1)
    client = configcat_segment.get_client()
    client.get_value("isPremium", False, User("kept"))
    client.get_value("isPremium", False, User("dropped"))  # the buffer is full
    with CaptureQueriesContext(connection) as queries:
        assert configcat_segment.flush() == 2
    sql = [query["sql"] for query in queries.captured_queries]
    # The connections are read first; everything written after is inside one savepoint
    # (the test's transaction is outermost, so the writer's atomic() is a savepoint).
    assert sql[0].startswith("SELECT")
    assert sql[1].startswith("SAVEPOINT ")
    assert sql[-1] == f"RELEASE {sql[1]}"
    written = " ".join(sql[2:-1])
    assert "configcat_segment_event" in written
    assert "configcat_segment_evaluationcounter" in written
    assert EvaluationCounter.objects.totals() == {"dropped": 1}
