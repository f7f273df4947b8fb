"""What the evaluation hook knows about the request being handled, held in a ContextVar.

The middleware binds a :class:`RequestContext` for the duration of each request. A
``ContextVar`` (not a thread-local) follows the request into async views, into the thread
that runs a sync view under ASGI, and into threads started with
``contextvars.copy_context().run``; evaluations made anywhere else see no request.

Everything here is computed lazily, at most once per request, and only when an evaluation
needs it: a request that evaluates no flag pays nothing but the ``ContextVar`` binding.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import json
import threading
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from django.utils.crypto import salted_hmac

from ..conf import get_settings
from .users import UserFactory, user_for

if TYPE_CHECKING:
    from django.http import HttpRequest

    from .payloads import Evaluation

# Segment accepts long ids, but ours also go into Event.user_id (255 characters).
MAX_ANONYMOUS_ID_LENGTH = 255
_SESSION_SALT = "configcat_segment.context.anonymous_id"  # a signing salt: never change it


def parse_anonymous_id(raw: str | None) -> str | None:
    """The anonymous id in an ``ajs_anonymous_id`` cookie value, or None when there is none.

    analytics.js has written it in several ways over the years: plain (``abc``), as a JSON
    string (``"abc"``), and URL-encoded (``%22abc%22``). Anything else is ignored.
    """
    if not raw:
        return None
    value = unquote(raw).strip()
    if value.startswith('"'):
        try:
            decoded = json.loads(value)
        except ValueError:
            return None
        if not isinstance(decoded, str):
            return None
        value = decoded.strip()
    if not value or len(value) > MAX_ANONYMOUS_ID_LENGTH or not value.isprintable():
        return None
    return value


def session_anonymous_id(session_key: str) -> str:
    """A stable anonymous id for a session that never reveals the session key.

    A keyed hash (Django's ``SECRET_KEY``), shaped as a UUID like analytics.js ids.
    """
    digest = salted_hmac(_SESSION_SALT, session_key, algorithm="sha256").hexdigest()
    return str(uuid.UUID(hex=digest[:32]))


class AnonymousIdSource:
    COOKIE = "cookie"
    SESSION = "session"
    RANDOM = "random"


class RequestContext:
    """The facts of one request that evaluation events carry, and its collected evaluations."""

    def __init__(self, request: HttpRequest, user_factory: UserFactory = user_for) -> None:
        self.request = request
        self._user_factory = user_factory
        # Evaluations recorded while the request is handled; the middleware hands them to
        # the writer once, at the end. After that, late evaluations go to the writer directly.
        self._evaluations: list[Evaluation] = []
        self._collecting = True
        self._lock = threading.Lock()

    def collect(self, evaluation: Evaluation) -> bool:
        """Keep ``evaluation`` for the hand-off; False once the request has been handed off."""
        with self._lock:
            if self._collecting:
                self._evaluations.append(evaluation)
            return self._collecting

    def hand_off(self) -> list[Evaluation]:
        """Stop collecting and return what was collected (the middleware calls this once)."""
        with self._lock:
            self._collecting = False
            evaluations, self._evaluations = self._evaluations, []
        return evaluations

    @functools.cached_property
    def user(self) -> Any:
        """The ConfigCat user of this request (``USER_FACTORY``), built on first use."""
        return self._user_factory(self.request)

    @property
    def user_built(self) -> bool:
        return "user" in self.__dict__

    @functools.cached_property
    def _anonymous(self) -> tuple[str, str]:
        settings = get_settings()
        cookie_name = settings.ANONYMOUS_ID_COOKIE
        if cookie_name:
            from_cookie = parse_anonymous_id(self.request.COOKIES.get(cookie_name))
            if from_cookie:
                return from_cookie, AnonymousIdSource.COOKIE
        session = getattr(self.request, "session", None)
        # The key the browser sent; reading it loads nothing from the session store.
        session_key = getattr(session, "session_key", None)
        if session_key:
            return session_anonymous_id(session_key), AnonymousIdSource.SESSION
        return str(uuid.uuid4()), AnonymousIdSource.RANDOM

    @property
    def anonymous_id(self) -> str:
        """Segment's ``anonymousId`` for this visitor: cookie, else session, else random."""
        return self._anonymous[0]

    @property
    def anonymous_id_source(self) -> str:
        return self._anonymous[1]

    @property
    def cookie_anonymous_id(self) -> str | None:
        """The analytics.js anonymous id, only when the browser sent one."""
        anonymous_id, source = self._anonymous
        return anonymous_id if source == AnonymousIdSource.COOKIE else None

    @property
    def anonymous_id_resolved(self) -> bool:
        return "_anonymous" in self.__dict__

    @functools.cached_property
    def segment_context(self) -> dict[str, Any]:
        """Segment's ``context`` fields for this request: page, userAgent and maybe ip."""
        request = self.request
        meta = request.META
        context: dict[str, Any] = {
            "page": {
                "url": _absolute_url(request),
                "path": request.path,
                "referrer": meta.get("HTTP_REFERER", ""),
            },
        }
        user_agent = meta.get("HTTP_USER_AGENT")
        if user_agent:
            context["userAgent"] = user_agent
        if get_settings().SEND_CLIENT_IP and meta.get("REMOTE_ADDR"):
            context["ip"] = meta["REMOTE_ADDR"]
        return context


def _absolute_url(request: HttpRequest) -> str:
    try:
        return request.build_absolute_uri()
    except Exception:  # DisallowedHost and the like: the path alone still says enough.
        return request.get_full_path()


current: contextvars.ContextVar[RequestContext | None] = contextvars.ContextVar(
    "configcat_segment_request", default=None
)


# True inside ``without_forwarding()``: the hook ignores evaluations.
forwarding_off: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "configcat_segment_forwarding_off", default=False
)


@contextlib.contextmanager
def without_forwarding() -> Iterator[None]:
    """Evaluations inside the block are not forwarded, nor remembered by the dedup.

    For evaluations that expose the user to nothing, such as ``get_all_values()`` used
    to hand every flag to a front end::

        with configcat_segment.without_forwarding():
            values = client.get_all_values(user)

    It follows the code into async tasks and ``contextvars.copy_context()`` threads, like
    the request's context, and nowhere else.
    """
    token = forwarding_off.set(True)
    try:
        yield
    finally:
        forwarding_off.reset(token)
