"""System checks of evaluation forwarding: the middleware, the user factory, the
ConfigCat client's options, and what the exposure settings mean together.

Registered by :func:`configcat_segment.checks.register`, with the other checks; ids are
documented in ``docs/settings.md``.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from ..conf import DEFAULTS, exposure_rules, get_settings, setting_path

MIDDLEWARE_PATH = "configcat_segment.middleware.FlagEvaluationMiddleware"


def check_evaluation_middleware(
    app_configs: Any = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    try:
        forwarding = get_settings().FORWARD_EVALUATIONS
    except ImproperlyConfigured:  # E003 reports it
        return []
    if not forwarding or MIDDLEWARE_PATH in settings.MIDDLEWARE:
        return []
    return [
        checks.Warning(
            "Evaluations are forwarded, but FlagEvaluationMiddleware is not in MIDDLEWARE: "
            "evaluations made in requests are sent without the request's page, user agent "
            "or anonymous id, and request.flags and the {% flag %} tag's user are missing.",
            hint=f'Add "{MIDDLEWARE_PATH}" to MIDDLEWARE (after AuthenticationMiddleware), '
            'or set CONFIGCAT_SEGMENT["FORWARD_EVALUATIONS"] = False.',
            id="configcat_segment.W003",
        )
    ]


def check_user_factory(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    from .users import load_user_factory

    try:
        dotted_path = get_settings().USER_FACTORY
    except ImproperlyConfigured:  # E003 reports it
        return []
    try:
        load_user_factory(dotted_path)
    except ImproperlyConfigured as exc:
        return [
            checks.Error(
                str(exc),
                hint="Name a function (request) -> configcatclient.user.User | None, "
                "or remove the key to use the default.",
                id="configcat_segment.E006",
            )
        ]
    return []


def check_client_options(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    from .client import client_options

    try:
        settings = get_settings()
    except ImproperlyConfigured:  # E003 reports it
        return []
    if not settings.FORWARD_EVALUATIONS or not (settings.SDK_KEY or settings.FLAG_OVERRIDES):
        # Nothing to check: a project that only forwards flag changes sets neither (and if
        # it evaluates after all, get_client() says which setting is missing).
        return []
    try:
        client_options(settings)
    except ImproperlyConfigured as exc:
        return [
            checks.Error(
                str(exc),
                hint="get_client() cannot make the ConfigCat client. If this project only "
                "forwards its own clients (forward_evaluations()), add "
                '"configcat_segment.E007" to SILENCED_SYSTEM_CHECKS.',
                id="configcat_segment.E007",
            )
        ]
    return []


EXPOSURE_KEYS = (
    "EXPOSURE_POLICY",
    "FLAG_ALLOWLIST",
    "FLAG_DENYLIST",
    "FLAG_EXPOSURE_POLICIES",
    "FLAG_SAMPLE_RATES",
)


def check_exposure_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """What the exposure settings mean together (each value alone is checked by E003)."""
    from . import exposure

    try:
        settings = get_settings()
    except ImproperlyConfigured:  # E003 reports it
        return []
    changed = [key for key in EXPOSURE_KEYS if getattr(settings, key) != DEFAULTS[key]]
    if not settings.FORWARD_EVALUATIONS:
        if not changed:
            return []
        return [
            checks.Warning(
                f"{', '.join(setting_path(key) for key in changed)} "
                f"{'is' if len(changed) == 1 else 'are'} set, but "
                f"{setting_path('FORWARD_EVALUATIONS')} is off: no evaluation is forwarded.",
                hint="Remove the exposure settings, or turn FORWARD_EVALUATIONS on.",
                id="configcat_segment.W020",
            )
        ]
    found: list[checks.CheckMessage] = []
    overlap = exposure.overlap_problem(settings.FLAG_ALLOWLIST, settings.FLAG_DENYLIST)
    if overlap:
        found.append(
            checks.Warning(
                f"In {setting_path('FLAG_ALLOWLIST')} and {setting_path('FLAG_DENYLIST')}, "
                f"{overlap}: the deny list wins, so the flag is never forwarded.",
                hint="Remove the pattern from one of the lists.",
                id="configcat_segment.W021",
            )
        )
    rules = exposure_rules(settings)
    sends_nothing = settings.FLAG_ALLOWLIST == () or (
        rules.policy == exposure.NONE
        and all(policy == exposure.NONE for _, policy in rules.flag_policies)
    )
    if sends_nothing:
        found.append(
            checks.Warning(
                "The exposure settings forward no evaluation of any flag "
                f'({setting_path("FLAG_ALLOWLIST")} is empty, or every policy is "none").',
                hint="To forward none, set FORWARD_EVALUATIONS to False (the middleware then "
                'does less); to forward some, add them to FLAG_ALLOWLIST or give them "all".',
                id="configcat_segment.W022",
            )
        )
    return found
