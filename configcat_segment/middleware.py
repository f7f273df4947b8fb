"""``FlagEvaluationMiddleware``: evaluations made during a request carry the request.

For each request it binds a :class:`~configcat_segment.context.RequestContext` (page,
user agent, anonymous id, the ConfigCat user, all computed only if an evaluation needs
them), exposes ``request.flags``, and at the end hands the request's evaluations to the
background writer in one go, even when the view raised.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.http import HttpRequest, HttpResponseBase

from .conf import get_settings
from .evaluations import buffer as writer
from .evaluations.client import aget_client, get_client
from .evaluations.context import AnonymousIdSource, RequestContext, current, without_forwarding

ANONYMOUS_ID_COOKIE_MAX_AGE = 365 * 24 * 3600


class RequestFlags:
    """``request.flags``: evaluate flags for the request's ConfigCat user.

    In async views use the ``a``-prefixed methods: building the user may query the
    database (``request.user``), which Django does not allow on the event loop, and the
    process's first evaluation may wait for ConfigCat, which they do in a worker thread.
    """

    def __init__(self, context: RequestContext) -> None:
        self._context = context

    @property
    def user(self) -> Any:
        """The request's ConfigCat user (``USER_FACTORY``), or None."""
        return self._context.user

    def get_value(self, key: str, default_value: Any) -> Any:
        return get_client().get_value(key, default_value, self.user)

    def get_value_details(self, key: str, default_value: Any) -> Any:
        """The SDK's ``EvaluationDetails``: value, variation id, matched rule, error."""
        return get_client().get_value_details(key, default_value, self.user)

    def is_enabled(self, key: str, default_value: bool = False) -> bool:
        return bool(self.get_value(key, default_value))

    def get_all_values(self) -> dict[str, Any]:
        """Every flag's value for the request's user, **not forwarded**.

        Evaluating every flag (to hand them to a front end, say) exposes the user to
        none of them, so it sends nothing; forward what the user sees by evaluating it
        with :meth:`get_value` where it is used. (The SDK's own
        ``client.get_all_values()`` forwards one evaluation per flag.)
        """
        with without_forwarding():
            return dict(get_client().get_all_values(self.user))

    async def auser(self) -> Any:
        if self._context.user_built:
            return self._context.user
        return await sync_to_async(lambda: self._context.user)()

    async def aget_value(self, key: str, default_value: Any) -> Any:
        client = await aget_client()
        return client.get_value(key, default_value, await self.auser())

    async def aget_value_details(self, key: str, default_value: Any) -> Any:
        client = await aget_client()
        return client.get_value_details(key, default_value, await self.auser())

    async def ais_enabled(self, key: str, default_value: bool = False) -> bool:
        return bool(await self.aget_value(key, default_value))

    async def aget_all_values(self) -> dict[str, Any]:
        """:meth:`get_all_values` for async views: not forwarded either."""
        client = await aget_client()
        user = await self.auser()
        with without_forwarding():
            return dict(client.get_all_values(user))


class FlagEvaluationMiddleware:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.async_mode:
            return self.__acall__(request)
        context = self._bind(request)
        token = current.set(context)
        try:
            response = self.get_response(request)
        finally:
            current.reset(token)
            writer.add(context.hand_off())
        return self._finish(context, response)

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        context = self._bind(request)
        token = current.set(context)
        try:
            get_response: Callable[[HttpRequest], Awaitable[HttpResponseBase]] = self.get_response
            response = await get_response(request)
        finally:
            current.reset(token)
            writer.add(context.hand_off())
        return self._finish(context, response)

    @staticmethod
    def _bind(request: HttpRequest) -> RequestContext:
        # USER_FACTORY is resolved by the first evaluation that needs the user, so a wrong
        # path breaks only the requests that evaluate (manage.py check reports it: E006).
        context = RequestContext(request)
        request.flags = RequestFlags(context)  # type: ignore[attr-defined]
        return context

    @staticmethod
    def _finish(context: RequestContext, response: HttpResponseBase) -> HttpResponseBase:
        settings = get_settings()
        if (
            settings.SET_ANONYMOUS_ID_COOKIE
            and settings.ANONYMOUS_ID_COOKIE
            and context.anonymous_id_resolved
            and context.anonymous_id_source != AnonymousIdSource.COOKIE
        ):
            # Not HttpOnly: analytics.js reads it, which is the point of sharing it.
            response.set_cookie(
                settings.ANONYMOUS_ID_COOKIE,
                context.anonymous_id,
                max_age=ANONYMOUS_ID_COOKIE_MAX_AGE,
                domain=settings.ANONYMOUS_ID_COOKIE_DOMAIN,
                samesite="Lax",
                secure=context.request.is_secure(),
            )
        return response
