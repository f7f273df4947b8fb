"""The Prometheus metrics URL, for projects to include where their scraper looks::

    path("configcat-segment/metrics/", include("configcat_segment.operations.urls")),

It needs ``pip install configcat-segment[prometheus]``; the health endpoint is in the app's
own URLs (``configcat-segment/health/``).
"""

from django.urls import path

from . import views

app_name = "configcat_segment_metrics"

urlpatterns = [path("", views.metrics, name="metrics")]
