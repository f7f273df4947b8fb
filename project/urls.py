from django.contrib import admin
from django.urls import include, path

from .demo import views

urlpatterns = [
    path("", views.home, name="home"),
    path("admin/", admin.site.urls),
    path("configcat-segment/", include("configcat_segment.urls")),
]
