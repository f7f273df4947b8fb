import importlib.util

from django.test import override_settings

from configcat_segment import checks


@override_settings(CONFIGCAT_SEGMENT={"DELIVERY": "celery"})
def test_e005_celery_chosen_but_not_installed(monkeypatch):
    assert checks.check_delivery_backend() == []  # installed here
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "celery" else real_find_spec(name, *a),
    )
    [message] = checks.check_delivery_backend()
    assert message.id == "configcat_segment.E005"
    assert message.msg == 'CONFIGCAT_SEGMENT["DELIVERY"] is "celery", but Celery is not installed.'
    assert "configcat-segment[celery]" in message.hint


@override_settings(CONFIGCAT_SEGMENT={"DELIVERY": "thread"})
def test_no_e005_for_other_runners():
    assert checks.check_delivery_backend() == []


@override_settings(CONFIGCAT_SEGMENT={"LEASE_SECONDS": 16, "HTTP_TIMEOUT_SECONDS": 15})
def test_w005_a_lease_no_longer_than_a_request():
    [message] = checks.check_lease()
    assert message.id == "configcat_segment.W005"
    assert message.msg.startswith("LEASE_SECONDS (16) is not longer than HTTP_TIMEOUT_SECONDS (15)")


@override_settings(CONFIGCAT_SEGMENT={"LEASE_SECONDS": 17, "HTTP_TIMEOUT_SECONDS": 15})
def test_no_w005_for_a_lease_that_outlasts_a_request():
    assert checks.check_lease() == []
