"""Reading a ConfigCat change webhook's body, and writing one as ConfigCat would. Pure
functions: no Django, no I/O.

The body is whatever the user pasted into ConfigCat, with ConfigCat's variables filled in
(``constants.WEBHOOK_BODY_TEMPLATE`` is the one we ask for). ConfigCat may not escape quotes
in what it fills in, so :func:`parse` never gives up: it reads valid JSON, recovers the
template's fields from text that is not JSON, and at worst keeps the whole text as the
change's details. Every oddity is reported in a list of problems, for the receipt.
:mod:`.rendering` goes the other way. What a parsed change becomes is :mod:`.changed`'s job.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from typing import Any

from ..text import clean, contains_nul
from . import limits

TEXT_FIELDS = (
    "config_id",
    "config_name",
    "environment_id",
    "environment_name",
    "url",
    "changed_by",
    "change_notes",
)
DETAILS_FIELD = "change_details"
TEMPLATE_FIELDS = (*TEXT_FIELDS, DETAILS_FIELD)


@dataclass(frozen=True)
class SettingChange:
    """One entry of ``##ChangeDetails##``: what happened to one setting."""

    setting_key: str = ""
    event: str = ""
    details: str = ""


@dataclass(frozen=True)
class Change:
    """What a webhook says about one change; every field is text, possibly empty."""

    config_id: str = ""
    config_name: str = ""
    environment_id: str = ""
    environment_name: str = ""
    url: str = ""
    changed_by: str = ""
    change_notes: str = ""
    settings: tuple[SettingChange, ...] = ()


# -- parsing ------------------------------------------------------------------------------


def parse(body: bytes, *, max_changes: int | None = None) -> tuple[Change, list[str]]:
    """The change a webhook body describes, and what was wrong with the body (if anything).

    At most ``max_changes`` setting changes are read (all when None); the problems are
    listed up to :data:`.limits.MAX_PROBLEMS`, the others counted.
    """
    problems: list[str] = []
    try:
        change = _without_nul(
            _shared_bounded(_parse(body, problems, max_changes), problems), problems
        )
    except RecursionError:  # a bug if it happens: nothing here recurses on the body's depth
        problems.append("The body is nested too deeply to be read: sent without details.")
        change = Change()
    return change, limits.bounded(problems)


def _parse(body: bytes, problems: list[str], max_changes: int | None) -> Change:
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        problems.append(f"The body is not valid UTF-8 ({exc.reason} at byte {exc.start}).")
        text = body.decode("utf-8-sig", errors="replace")
    if not text.strip():
        problems.append(
            "The body is empty (a GET webhook, or no body in ConfigCat's webhook settings): "
            "the event says only that something changed."
        )
        return Change()
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        return _recover(text, str(exc), problems, max_changes)
    if isinstance(data, dict):
        return _from_object(data, text, problems, max_changes)
    if isinstance(data, list):
        problems.append(
            "The body is a JSON array, not the template's object: read as change_details."
        )
        return Change(settings=_settings(data, problems, max_changes))
    problems.append(
        f"The body is a JSON {_json_type(data)}, not the template's object: sent as details."
    )
    return Change(settings=(SettingChange(details=text),))


def _shared_bounded(change: Change, problems: list[str]) -> Change:
    """``change`` with the texts every event repeats cut to :data:`.limits.MAX_SHARED_CHARS`."""
    cut: dict[str, Any] = {}
    for name in TEXT_FIELDS:
        text = getattr(change, name)
        if len(text) > limits.MAX_SHARED_CHARS:
            cut[name] = limits.shortened(text)
            problems.append(
                f"{name} is {len(text):,} characters; every event repeats it, so they carry "
                f"its first {limits.MAX_SHARED_CHARS:,}: the receipt keeps it whole."
            )
    return replace(change, **cut) if cut else change


def _without_nul(change: Change, problems: list[str]) -> Change:
    """``change`` with NUL characters as U+FFFD, and the problem recorded."""
    texts = [getattr(change, name) for name in TEXT_FIELDS]
    texts += [t for s in change.settings for t in (s.setting_key, s.event, s.details)]
    if not any(contains_nul(text) for text in texts):
        return change
    problems.append("The body contains NUL characters; they are sent as U+FFFD.")
    return Change(
        **{name: clean(getattr(change, name)) for name in TEXT_FIELDS},
        settings=tuple(
            SettingChange(clean(s.setting_key), clean(s.event), clean(s.details))
            for s in change.settings
        ),
    )


def _from_object(
    data: dict[str, Any], text: str, problems: list[str], max_changes: int | None
) -> Change:
    if not any(name in data for name in TEMPLATE_FIELDS):
        problems.append(
            "The body is JSON but has none of the template's fields: the whole body is sent "
            "as details."
        )
        return Change(settings=(SettingChange(details=text),))
    missing = [name for name in TEMPLATE_FIELDS if name not in data]
    if missing:
        problems.append(f"The body lacks the template's field(s): {', '.join(missing)}.")
    fields = {name: _text(data.get(name), name, problems) for name in TEXT_FIELDS}
    return Change(**fields, settings=_settings(data.get(DETAILS_FIELD), problems, max_changes))


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object" if isinstance(value, dict) else "null"


def _text(value: Any, name: str, problems: list[str]) -> str:
    """A field's value as text; anything but a string (or null) is reported."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    problems.append(f"{name} is a JSON {_json_type(value)}, not a string.")
    return _json_text(value, name, problems)


def _json_text(value: Any, name: str, problems: list[str]) -> str:
    """``value`` as JSON text, or a placeholder when it is too deep to encode safely."""
    levels = limits.too_deep(value)
    if levels is None:
        return json.dumps(value, ensure_ascii=False)
    kind = _json_type(value)
    problems.append(
        f"{name} is a JSON {kind} nested {levels:,} levels deep (more than {limits.MAX_DEPTH} "
        "are not read): sent as a placeholder; the receipt keeps the body."
    )
    return limits.placeholder(kind, levels)


def _settings(
    value: Any, problems: list[str], max_changes: int | None = None
) -> tuple[SettingChange, ...]:
    """``change_details`` as setting changes, whatever shape it arrived in."""
    if value is None:
        return ()
    if isinstance(value, str):
        try:
            decoded = json.loads(value)
        except (ValueError, RecursionError):
            decoded = None
        if isinstance(decoded, list | dict):
            problems.append(
                "change_details is JSON inside a string (quoted ##ChangeDetails## in the "
                "template?): decoded."
            )
            return _settings(decoded, problems, max_changes)
        problems.append("change_details is a string, not a list: sent as details.")
        return (SettingChange(details=value),)
    if isinstance(value, dict):
        problems.append("change_details is an object, not a list: read as one entry.")
        value = [value]
    if not isinstance(value, list):
        problems.append(f"change_details is a JSON {_json_type(value)}, not a list.")
        return (SettingChange(details=_json_text(value, DETAILS_FIELD, problems)),)
    if max_changes is not None and len(value) > max_changes:
        problems.append(
            f"change_details has {len(value):,} entries: the first {max_changes:,} became "
            'events (CONFIGCAT_SEGMENT["MAX_CHANGES_PER_WEBHOOK"]); the other '
            f"{len(value) - max_changes:,} are kept in the receipt's body, not forwarded."
        )
        value = value[:max_changes]
    found = []
    for position, entry in enumerate(value):
        where = f"change_details[{position}]"
        if not isinstance(entry, dict):
            problems.append(f"{where} is a JSON {_json_type(entry)}, not an object.")
            found.append(SettingChange(details=_text(entry, where, [])))
            continue
        found.append(
            SettingChange(
                setting_key=_text(entry.get("settingKey"), f"{where}.settingKey", problems),
                event=_text(entry.get("event"), f"{where}.event", problems),
                details=_text(entry.get("details"), f"{where}.details", problems),
            )
        )
    return tuple(found)


# A field name of the template, as a key: a quote not escaped by a backslash, the name,
# the closing quote and a colon.
_FIELD_KEY = re.compile(r'(?<!\\)"(' + "|".join(TEMPLATE_FIELDS) + r')"\s*:')
_UNESCAPED_QUOTE = re.compile(r'(?<!\\)"')


def _recover(text: str, error: str, problems: list[str], max_changes: int | None) -> Change:
    """The template's fields, read from text that is not JSON.

    Each field's value runs from its key to the next field's key, so a value with
    unescaped quotes in it (ConfigCat fills in change notes as typed) is still read whole.
    """
    starts: dict[str, re.Match[str]] = {}
    for match in _FIELD_KEY.finditer(text):
        starts.setdefault(match.group(1), match)
    if not starts:
        problems.append(
            f"The body is not JSON ({error}) and has none of the template's fields: the "
            "whole body is sent as details."
        )
        return Change(settings=(SettingChange(details=text),))
    problems.append(
        f"The body is not valid JSON ({error}); its fields were recovered from the text "
        "(unescaped quotes in change notes or names cause this)."
    )
    ordered = sorted(starts.values(), key=lambda m: m.start())
    raw: dict[str, str] = {}
    for match, following in zip(ordered, [*ordered[1:], None], strict=True):
        value = text[match.end() : following.start() if following else len(text)].strip()
        raw[match.group(1)] = value.removesuffix(",") if following else value.removesuffix("}")
    fields = {name: _unquote(raw.get(name, "")) for name in TEXT_FIELDS}
    details = raw.get(DETAILS_FIELD, "").strip()
    if not details:
        return Change(**fields, settings=())
    try:
        decoded = json.loads(details)
    except (ValueError, RecursionError):
        problems.append("change_details could not be read either: sent as details as is.")
        return Change(**fields, settings=(SettingChange(details=details),))
    return Change(**fields, settings=_settings(decoded, problems, max_changes))


def _unquote(value: str) -> str:
    """A JSON string's content, tolerating unescaped quotes inside it."""
    value = value.strip()
    if len(value) < 2 or not (value.startswith('"') and value.endswith('"')):
        return value
    inner = value[1:-1]
    try:
        decoded = json.loads('"' + _UNESCAPED_QUOTE.sub(r"\"", inner) + '"')
    except ValueError:
        return inner
    return decoded if isinstance(decoded, str) else inner
