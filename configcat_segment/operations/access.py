"""Who may read the health endpoint and the metrics: staff, or whoever has the token.

Staff are signed in through the admin and need ``configcat_segment.view_segmentconnection``
(the answers name connections). Monitoring systems, which have no session, send
``CONFIGCAT_SEGMENT["MONITORING_TOKEN"]`` as ``Authorization: Bearer <token>`` or, for
checkers that cannot set a header, as ``?token=<token>`` (which then appears in access
logs: use a token that grants nothing else). The token is compared in constant time.
"""

from __future__ import annotations

import functools
import hmac
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from ..conf import get_settings

PERMISSION = "configcat_segment.view_segmentconnection"

View = Callable[[HttpRequest], HttpResponse]


def presented_token(request: HttpRequest) -> str:
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return request.GET.get("token", "")


def has_valid_token(request: HttpRequest) -> bool:
    expected = get_settings().MONITORING_TOKEN
    given = presented_token(request)
    if not expected or not given:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


def refusal(request: HttpRequest) -> HttpResponse | None:
    """None when ``request`` may read monitoring data; else the 401 or 403 to answer."""
    if has_valid_token(request):
        return None
    user = getattr(request, "user", None)
    if user is not None and user.is_active and user.is_staff:
        if user.has_perm(PERMISSION):
            return None
        return JsonResponse(
            {"detail": f"You need the “Can view Segment connection” permission ({PERMISSION})."},
            status=403,
        )
    response = JsonResponse(
        {
            "detail": "Sign in as staff, or send the monitoring token as "
            '“Authorization: Bearer <token>” (CONFIGCAT_SEGMENT["MONITORING_TOKEN"]).'
        },
        status=401,
    )
    response["WWW-Authenticate"] = 'Bearer realm="configcat_segment"'
    return response


def monitoring_view(view: View) -> View:
    """GET and HEAD only, never cached, for staff or the token holder."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest) -> HttpResponse:
        return refusal(request) or view(request)

    return never_cache(require_safe(wrapper))
