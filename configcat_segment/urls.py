from django.urls import path, re_path

from .eventlog import api as eventlog_api
from .eventlog import views as eventlog
from .operations import views as operations
from .webhooks import views as webhooks

app_name = "configcat_segment"

urlpatterns = [
    path("webhooks/<uuid:connection_id>/", webhooks.WebhookView.as_view(), name="webhook"),
    # The event log: pages, and the JSON API that feeds their live refresh.
    path("events/", eventlog.event_list, name="event_list"),
    path("events/retry/", eventlog.bulk_retry, name="event_bulk_retry"),
    re_path(r"^events/export\.(?P<fmt>csv|jsonl)$", eventlog.event_export, name="event_export"),
    path("events/<int:pk>/", eventlog.event_detail, name="event_detail"),
    path("events/<int:pk>/retry/", eventlog.retry_event, name="event_retry"),
    path("events/<int:pk>/replay/", eventlog.replay_event, name="event_replay"),
    path("api/events/", eventlog_api.EventListAPI.as_view(), name="api_events"),
    path("api/events/<int:pk>/", eventlog_api.EventDetailAPI.as_view(), name="api_event"),
    path("api/connections/", eventlog_api.ConnectionHealthAPI.as_view(), name="api_connections"),
    # For uptime checks and monitoring: staff, or CONFIGCAT_SEGMENT["MONITORING_TOKEN"].
    path("health/", operations.health, name="health"),
]
