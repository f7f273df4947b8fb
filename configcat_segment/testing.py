"""Helpers for your project's own tests: set flag values, read what was sent to Segment.

In your test settings, deliver into memory rather than to Segment::

    CONFIGCAT_SEGMENT = {**CONFIGCAT_SEGMENT, "DELIVERY": "locmem"}

Then, in a test::

    from configcat_segment import testing
    from configcat_segment.constants import FLAG_EVALUATED

    @testing.override_flags(isPremium=True)
    def test_premium_users_see_the_banner(client):
        client.get("/")
        [track] = testing.sent_tracks(FLAG_EVALUATED, feature_flag_key="isPremium")
        assert track["properties"]["value"] is True

:func:`override_flags` changes what ``configcat_segment.get_client()`` (so also
``request.flags`` and ``{% flag %}``) evaluates, through the ConfigCat SDK's own flag
overrides; the evaluations are forwarded as real ones. :func:`sent` and its friends read
what the ``locmem`` backend delivered. See ``docs/testing.md``.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from configcatclient.config import (
    BOOL_VALUE,
    DOUBLE_VALUE,
    FEATURE_FLAGS,
    INT_VALUE,
    SETTING_TYPE,
    STRING_VALUE,
    VALUE,
    SettingType,
)
from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured
from django.test.utils import TestContextDecorator, override_settings

from .conf import SETTING_NAME, get_settings, setting_path
from .delivery.backends import get_backend, locmem
from .evaluations import buffer
from .evaluations.hook import recorder

__all__ = ["clear", "override_flags", "sent", "sent_identifies", "sent_tracks"]

FlagValue = bool | int | float | str

# How config_v6 files spell a setting's value (the SDK's own constants).
_VALUE_KEYS: dict[type, str] = {
    bool: BOOL_VALUE,
    int: INT_VALUE,
    float: DOUBLE_VALUE,
    str: STRING_VALUE,
}


class override_flags(TestContextDecorator):
    """Evaluate flags with the given values: a context manager, a test decorator, or a
    ``TestCase`` class decorator (each test gets the values)::

        with override_flags(isPremium=True, maxItems=5): ...
        @override_flags({"checkout-v2": "variant-b"})  # keys that are not identifiers

    Every other flag keeps the value it had: overrides of the same flags file, or of
    ConfigCat (``"local_over_remote"``). Values are booleans, whole numbers, decimals or
    text, as in ConfigCat. Overrides nest; each ends with its block, test or class.

    It sets ``CONFIGCAT_SEGMENT["FLAG_OVERRIDES"]`` (with ``override_settings``) to a flags
    file of its own, so the process's client is rebuilt with the ConfigCat SDK's flag
    overrides, and evaluations are forwarded as usual. A client you made yourself and
    passed to ``forward_evaluations()`` is not affected.
    """

    def __init__(self, values: Mapping[str, FlagValue] | None = None, /, **flags: FlagValue):
        self.values: dict[str, FlagValue] = {**(values or {}), **flags}
        for key, value in self.values.items():
            if not isinstance(key, str) or not key:
                raise TypeError(
                    f"override_flags(): a flag key must be a non-empty string, not {key!r}"
                )
            if type(value) not in _VALUE_KEYS:
                raise TypeError(
                    f"override_flags(): the value of {key!r} must be a bool, int, float or "
                    f"str (what ConfigCat flags hold), not {type(value).__name__}"
                )
        self._stack: list[tuple[override_settings, Path]] = []
        super().__init__()

    def enable(self) -> None:
        current = get_settings()
        raw = getattr(django_settings, SETTING_NAME, None) or {}
        flags_file, behaviour = _write_flags_file(
            self.values,
            base=current.FLAG_OVERRIDES,
            base_behaviour=current.FLAG_OVERRIDES_BEHAVIOUR,
            remote=bool(current.SDK_KEY),
        )
        override = override_settings(
            **{
                SETTING_NAME: {
                    **raw,
                    "FLAG_OVERRIDES": str(flags_file),
                    "FLAG_OVERRIDES_BEHAVIOUR": behaviour,
                }
            }
        )
        try:
            override.enable()
        except Exception:
            flags_file.unlink(missing_ok=True)
            raise
        self._stack.append((override, flags_file))

    def disable(self) -> None:
        override, flags_file = self._stack.pop()
        try:
            override.disable()
        finally:
            flags_file.unlink(missing_ok=True)


def _write_flags_file(
    values: Mapping[str, FlagValue], *, base: str | None, base_behaviour: str, remote: bool
) -> tuple[Path, str]:
    """A flags file with ``values`` over the flags of ``base`` (a flags file, if any), and
    the override behaviour to read it with."""
    if base is None:
        content: dict[str, Any] = {"flags": dict(values)}
        behaviour = "local_over_remote" if remote else "local_only"
    else:
        try:
            content = json.loads(Path(base).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ImproperlyConfigured(
                f"override_flags() could not read the flags file of "
                f"{setting_path('FLAG_OVERRIDES')} ({base!r}): {exc}"
            ) from exc
        if isinstance(content.get("flags"), dict):  # the simple format
            content = {**content, "flags": {**content["flags"], **values}}
        else:  # a config_v6 file: its settings, rules and segments kept
            settings = {key: _setting(value) for key, value in values.items()}
            content = {**content, FEATURE_FLAGS: {**content.get(FEATURE_FLAGS, {}), **settings}}
        # Remote values must not win over the overridden ones.
        behaviour = "local_only" if base_behaviour == "local_only" else "local_over_remote"
    descriptor, name = tempfile.mkstemp(prefix="configcat-segment-flags-", suffix=".json")
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        json.dump(content, file)
    return Path(name), behaviour


def _setting(value: FlagValue) -> dict[str, Any]:
    """A config_v6 setting that is ``value`` for everyone."""
    setting: dict[str, Any] = {VALUE: {_VALUE_KEYS[type(value)]: value}}
    setting_type = SettingType.from_type(type(value))
    if setting_type is not None:
        setting[SETTING_TYPE] = int(setting_type)
    return setting


# -- what was sent -------------------------------------------------------------------------


def sent() -> list[dict[str, Any]]:
    """Every Segment message delivered since :func:`clear`, oldest first, as dicts.

    First writes the evaluations still buffered and delivers every event due, so what a
    view just evaluated is there, also inside a ``TestCase``, whose transaction never
    commits. Needs ``CONFIGCAT_SEGMENT["DELIVERY"] = "locmem"``.
    """
    backend = get_backend()
    if not isinstance(backend, locmem.LocmemBackend):
        raise ImproperlyConfigured(
            f'configcat_segment.testing needs {setting_path("DELIVERY")} = "locmem" in your '
            f"test settings; this process delivers with {type(backend).__name__}."
        )
    buffer.flush()
    backend.deliver()
    return list(locmem.outbox)


def sent_tracks(event: str | None = None, **properties: Any) -> list[dict[str, Any]]:
    """The ``track`` messages sent, of ``event`` if given, whose properties include
    ``properties``: ``sent_tracks(FLAG_EVALUATED, feature_flag_key="isPremium")``."""
    return [
        message
        for message in sent()
        if message.get("type") == "track"
        and (event is None or message.get("event") == event)
        and all(message.get("properties", {}).get(k, _MISSING) == v for k, v in properties.items())
    ]


def sent_identifies(user_id: str | None = None) -> list[dict[str, Any]]:
    """The ``identify`` messages sent, of ``user_id`` if given."""
    return [
        message
        for message in sent()
        if message.get("type") == "identify"
        and (user_id is None or message.get("userId") == user_id)
    ]


def clear() -> None:
    """Start afresh: forget what was sent, the evaluations still buffered, and which
    evaluations were seen (so none is skipped as a repeat of an earlier test's). Call it
    before each test (``setUp``, or an autouse fixture)."""
    buffer.get_writer().discard()
    recorder.reset()
    locmem.clear_outbox()


_MISSING = object()
