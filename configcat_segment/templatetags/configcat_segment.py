"""``{% load configcat_segment %}`` ... ``{% flag "key" default as name %}``.

Evaluates a flag for the request's ConfigCat user (through ``request.flags`` when the
middleware is installed), so the evaluation is forwarded like any other.
"""

from __future__ import annotations

from typing import Any

from django import template

from ..evaluations.client import get_client
from ..evaluations.users import user_for

register = template.Library()


@register.simple_tag(takes_context=True)
def flag(context: template.Context, key: Any, default: Any) -> Any:
    """The value of flag ``key`` for the request's user, ``default`` when it cannot be had."""
    if not isinstance(key, str) or not key:
        raise template.TemplateSyntaxError(
            f"{{% flag %}} needs a flag key (a non-empty string) as its first argument, "
            f'not {key!r}: {{% flag "myFlag" False as my_flag %}}'
        )
    request = context.get("request")
    flags = getattr(request, "flags", None)
    if flags is not None:
        return flags.get_value(key, default)
    user = user_for(request) if request else None
    return get_client().get_value(key, default, user)
