"""The evaluated ConfigCat user as it leaves for Segment. Pure: no Django, no I/O.

:func:`user_properties` reads the user as ConfigCat serialises it; :func:`traits` names
its attributes as ``identify`` traits. A write batch reads each user once, per connection
policy, through a :class:`UserCache`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ..segment.payloads import json_safe
from .privacy import PersonalData

# How the ConfigCat user's predefined attributes are named as Segment traits.
_TRAIT_NAMES = {"Email": "email", "Country": "country"}


def user_properties(user: Any) -> dict[str, Any]:
    """The ConfigCat user as a dict, as ConfigCat serialises it (``str(user)`` is JSON).

    Never ``vars(user)``: that yields the class's name-mangled private fields. A custom
    attribute ``str(user)`` cannot serialise leaves only the predefined attributes.
    """
    try:
        loaded = json.loads(str(user))
    except (TypeError, ValueError):
        loaded = None
    if isinstance(loaded, dict):
        return loaded
    predefined = {name: user.get_attribute(name) for name in ("Email", "Country")}
    found = {"Identifier": user.get_identifier(), **predefined}
    return {name: value for name, value in found.items() if value is not None}


def traits(user: Mapping[str, Any]) -> dict[str, Any]:
    """``identify`` traits from the user's attributes (``Email`` becomes ``email``, ...)."""
    return {
        _TRAIT_NAMES.get(name, name): value for name, value in user.items() if name != "Identifier"
    }


class UserCache:
    """What leaves of each evaluated user, per connection policy, read once per write batch.

    A batch repeats users: a request evaluates many flags with one ``User``, and popular
    users come back. Reading one (``str(user)``, then ``json.loads``) is the largest part
    of building a message, so each ``User`` object is read once, and what a connection's
    :class:`~.privacy.PersonalData` policy lets leave of it is worked out once per policy
    and salt: connections with different policies never share it.

    Users are known by identity, and the cache holds a reference to each, so an ``id()``
    is not reused while it lives. It lives for one batch: a user changed afterwards is read
    again by the next. The dicts it returns are shared by the batch's messages: callers
    copy what they change (the message builders do, ``json_safe`` makes new dicts).
    """

    __slots__ = ("_read", "_shown")

    def __init__(self) -> None:
        self._read: dict[int, tuple[Any, dict[str, Any]]] = {}
        self._shown: dict[tuple[int, PersonalData, str], dict[str, Any]] = {}

    def shown(self, user: Any, personal_data: PersonalData, salt: str) -> dict[str, Any]:
        """``user``'s attributes as ``personal_data`` lets them leave for ``salt``'s
        connection, JSON-safe (:func:`~..segment.payloads.json_safe`)."""
        key = (id(user), personal_data, salt)
        shown = self._shown.get(key)
        if shown is None:
            read = self._read.get(id(user))
            if read is None:
                read = self._read[id(user)] = (user, user_properties(user))
            shown = self._shown[key] = json_safe(personal_data.user(read[1], salt))
        return shown
