from django.contrib import admin
from django.urls import include, path

from .demo import receiver, views

urlpatterns = [
    path("", views.home, name="home"),
    path("admin/", admin.site.urls),
    path("configcat-segment/", include("configcat_segment.urls")),
    # Prometheus metrics (pip install configcat-segment[prometheus]); see docs/operations.md.
    path("configcat-segment/metrics/", include("configcat_segment.operations.urls")),
    # The demo's Segment-compatible receiver: the "Local debugger" connection sends here.
    path("debugger/", receiver.debugger, name="debugger"),
    path("debugger/v1/batch", receiver.batch, name="debugger-batch"),
]
