from django.urls import path

from . import webhooks

app_name = "configcat_segment"

urlpatterns = [
    path("webhooks/<uuid:connection_id>/", webhooks.WebhookView.as_view(), name="webhook"),
]
