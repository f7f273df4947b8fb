from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from configcat_segment import get_client


def home(request: HttpRequest) -> HttpResponse:
    """Every flag of the flags file, evaluated for the current user through ``request.flags``.

    Each evaluation is forwarded: see the event log, and the debugger once delivered.
    """
    context: dict[str, Any] = {"flags": [], "error": None}
    try:
        keys = sorted(get_client().get_all_keys())
        flags = request.flags  # type: ignore[attr-defined]
        context["configcat_user"] = flags.user
        for key in keys:
            details = flags.get_value_details(key, None)
            context["flags"].append(
                {
                    "key": key,
                    "value": details.value,
                    "variation_id": details.variation_id,
                    "error": details.error,
                }
            )
    except ImproperlyConfigured as exc:
        context["error"] = str(exc)
    return render(request, "home.html", context)
