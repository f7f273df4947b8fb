"""Views that evaluate flags the ways applications do, for the middleware tests."""

from __future__ import annotations

import contextvars
import threading

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template import engines
from django.urls import path

import configcat_segment


def _details(details):
    return {"value": details.value, "variation_id": details.variation_id}


def flags(request: HttpRequest) -> JsonResponse:
    keys = request.GET.get("keys", "isPremium").split(",")
    return JsonResponse({key: _details(request.flags.get_value_details(key, None)) for key in keys})


async def async_flags(request: HttpRequest) -> JsonResponse:
    keys = request.GET.get("keys", "isPremium").split(",")
    result = {key: _details(await request.flags.aget_value_details(key, None)) for key in keys}
    result["enabled"] = await request.flags.ais_enabled("isPremium")
    return JsonResponse(result)


def failing(request: HttpRequest) -> HttpResponse:
    request.flags.get_value("isPremium", False)
    raise RuntimeError("the view broke after evaluating")


def in_template(request: HttpRequest) -> HttpResponse:
    template = engines["django"].from_string(
        '{% load configcat_segment %}{% flag "maxItems" 0 as max_items %}max={{ max_items }}'
    )
    return HttpResponse(template.render({}, request))


def in_threads(request: HttpRequest) -> HttpResponse:
    client = configcat_segment.get_client()
    user = request.flags.user
    # A thread that carries the request's context, and one that does not.
    with_context = threading.Thread(
        target=contextvars.copy_context().run,
        args=(client.get_value, "maxItems", 0, user),
    )
    without_context = threading.Thread(target=client.get_value, args=("discountRate", 0.0, user))
    for thread in (with_context, without_context):
        thread.start()
        thread.join()
    return HttpResponse("ok")


def without_user(request: HttpRequest) -> HttpResponse:
    configcat_segment.get_client().get_value("discountRate", 0.0)
    return HttpResponse("ok")


def all_values(request: HttpRequest) -> JsonResponse:
    return JsonResponse(request.flags.get_all_values())


async def async_all_values(request: HttpRequest) -> JsonResponse:
    return JsonResponse(await request.flags.aget_all_values())


def sdk_all_values(request: HttpRequest) -> JsonResponse:
    client = configcat_segment.get_client()
    return JsonResponse(client.get_all_values(request.flags.user))


def nothing(request: HttpRequest) -> HttpResponse:
    return HttpResponse("no flags here")


urlpatterns = [
    path("flags/", flags),
    path("async-flags/", async_flags),
    path("failing/", failing),
    path("template/", in_template),
    path("threads/", in_threads),
    path("without-user/", without_user),
    path("all-values/", all_values),
    path("async-all-values/", async_all_values),
    path("sdk-all-values/", sdk_all_values),
    path("nothing/", nothing),
]
