"""A project's own tests, written the way its developers would write them.

The project's test settings choose the ``locmem`` delivery backend (here, for this module
only, with ``override_settings``; a project puts it in its test settings module):
nothing reaches Segment, and ``configcat_segment.testing`` tells the test what was sent.
The project's home page evaluates every flag of its flags file through ``request.flags``.
"""

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.template import Context, Template
from django.test import TestCase, TransactionTestCase, override_settings

import configcat_segment
from configcat_segment import testing
from configcat_segment.constants import FLAG_EVALUATED
from configcat_segment.models import Event, SegmentConnection
from configcat_segment.signals import event_delivered

TEST_SETTINGS = {**settings.CONFIGCAT_SEGMENT, "DELIVERY": "locmem"}


@pytest.fixture(autouse=True)
def nothing_left_behind():
    """Not a project's concern: this suite goes back to the worker backend after these
    tests, which would write evaluations left in the buffer at exit."""
    yield
    testing.clear()


def evaluated(flag_key):
    """The values ``flag_key`` was sent with as evaluated."""
    return [
        track["properties"]["value"]
        for track in testing.sent_tracks(FLAG_EVALUATED, feature_flag_key=flag_key)
    ]


@override_settings(CONFIGCAT_SEGMENT=TEST_SETTINGS)
class HomePageTests(TestCase):
    @classmethod
    def setUpTestData(cls):
        SegmentConnection.objects.create(name="Production", write_key="wk_test_0123456789")

    def setUp(self):
        testing.clear()

    def test_the_home_page_sends_the_value_it_evaluated(self):
        with testing.override_flags(darkMode=True):
            response = self.client.get("/")
        self.assertContains(response, "darkMode")
        assert evaluated("darkMode") == [True]
        assert evaluated("maxItems") == [10]  # not overridden: the flags file's
        [track] = testing.sent_tracks(FLAG_EVALUATED, feature_flag_key="darkMode")
        assert track["context"]["page"]["path"] == "/"
        # Delivered as a real delivery would: the event log says so.
        event = Event.objects.get(message_id=track["messageId"])
        assert event.status == Event.Status.DELIVERED
        assert event.delivered_at is not None

    @testing.override_flags({"bannerText": "Hello from a test", "maxItems": 3})
    def test_overrides_as_a_decorator_with_keys_in_a_dict(self):
        self.client.get("/")
        assert evaluated("bannerText") == ["Hello from a test"]
        assert evaluated("maxItems") == [3]

    def test_a_signed_in_user_is_who_evaluated(self):
        ada = get_user_model().objects.create_user("ada", "ada@example.com", "pw-ada-12345")
        self.client.force_login(ada)
        self.client.get("/")
        [track] = testing.sent_tracks(FLAG_EVALUATED, feature_flag_key="darkMode")
        assert track["userId"] == str(ada.pk)
        assert track["properties"]["value"] is False
        [identify] = testing.sent_identifies(str(ada.pk))
        assert identify["traits"]["email"] == "ada@example.com"

    def test_overrides_nest_and_end_with_their_block(self):
        with testing.override_flags(darkMode=True, maxItems=1):
            with testing.override_flags(maxItems=2):
                assert client_value("darkMode", None) is True
                assert client_value("maxItems", 0) == 2
            assert client_value("maxItems", 0) == 1
        assert client_value("darkMode", None) is False
        assert client_value("maxItems", 0) == 10

    def test_the_flag_tag_sees_the_overridden_value(self):
        template = Template(
            '{% load configcat_segment %}{% flag "bannerText" "" as text %}{{ text }}'
        )
        with testing.override_flags(bannerText="Overridden"):
            assert template.render(Context({})) == "Overridden"
        assert evaluated("bannerText") == ["Overridden"]

    def test_nothing_sent_before_anything_happened(self):
        assert testing.sent() == []


def client_value(key, default):
    return configcat_segment.get_client().get_value(key, default)


@override_settings(CONFIGCAT_SEGMENT=TEST_SETTINGS)
@testing.override_flags(darkMode=True)
class ClassDecoratedTests(TestCase):
    def setUp(self):
        testing.clear()
        SegmentConnection.objects.create(name="Production", write_key="wk_test_0123456789")

    def test_each_test_gets_the_values(self):
        self.client.get("/")
        assert evaluated("darkMode") == [True]

    def test_and_so_does_the_next(self):
        assert client_value("darkMode", None) is True


@override_settings(CONFIGCAT_SEGMENT=TEST_SETTINGS)
class CommittedTests(TransactionTestCase):
    """Outside a ``TestCase`` transaction, events are delivered as soon as they are written."""

    def setUp(self):
        testing.clear()
        SegmentConnection.objects.create(name="Production", write_key="wk_test_0123456789")

    def test_delivered_on_commit_with_the_signal(self):
        delivered = []

        def receiver(sender, events, **kwargs):
            delivered.extend(event.flag_key for event in events)

        event_delivered.connect(receiver)
        self.addCleanup(event_delivered.disconnect, receiver)
        with testing.override_flags(darkMode=True):
            self.client.get("/")
        configcat_segment.flush()  # what sent() does first: the evaluations are written
        assert set(Event.objects.values_list("status", flat=True)) == {Event.Status.DELIVERED}
        assert "darkMode" in delivered
        assert evaluated("darkMode") == [True]
