"""The ``on_flag_evaluated`` hook: decide, cheaply, whether an evaluation is worth sending.

It runs synchronously in the thread that evaluated, inside ``get_value``, so it does no
I/O and no formatting: it ignores evaluations made inside ``without_forwarding()``, skips
failed evaluations (counted, logged at most once a minute), drops repeats within the
dedup window, applies the exposure rules of the settings (policy, allow and deny lists,
per-flag sampling) and per-user sampling, and records a compact
:class:`~configcat_segment.evaluations.Evaluation`. Inside a request the
evaluation joins the request's list, handed to the writer once at the end; elsewhere it
goes to the writer's buffer directly.

The settings are read on the first evaluation, not at import, and again after
``CONFIGCAT_SEGMENT`` changes (:mod:`configcat_segment.lifecycle` calls
:meth:`Recorder.reset`): importing this module never fails, so ``manage.py check``
can report a bad setting.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from configcatclient.user import User

from ..conf import AppSettings, exposure_rules, get_settings
from ..logthrottle import LogThrottle
from . import buffer as writer
from .context import AnonymousIdSource, current, forwarding_off
from .dedup import DedupCache
from .exposure import EVERYTHING, ExposureRules
from .payloads import Evaluation, in_sample, new_nonce

logger = logging.getLogger(__name__)

FAILURE_LOG_INTERVAL = 60.0


class Recorder:
    """The hook callable. One per process (:data:`recorder`), shared by every client."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        # Both None until the first evaluation reads the settings, and again after they
        # change; the hot path checks ``_dedup`` only.
        self._settings: AppSettings | None = None
        self._dedup: DedupCache | None = None
        self._exposure: ExposureRules = EVERYTHING
        self._failure_log = LogThrottle(FAILURE_LOG_INTERVAL, clock)

    def configure(self, settings: AppSettings) -> None:
        """Use ``settings`` from now on, with an empty dedup memory."""
        self._use(settings)

    def reset(self) -> None:
        """Forget the settings and what was seen: the next evaluation reads the settings."""
        self._dedup = None
        self._settings = None

    def _use(self, settings: AppSettings) -> DedupCache:
        dedup = DedupCache(settings.DEDUP_WINDOW_SECONDS, settings.DEDUP_MAX_KEYS, self._clock)
        self._exposure = exposure_rules(settings)
        self._settings = settings
        self._dedup = dedup
        return dedup

    @property
    def settings(self) -> AppSettings:
        settings = self._settings
        if settings is None:
            settings = get_settings()
            self._use(settings)
        return settings

    @property
    def dedup(self) -> DedupCache:
        dedup = self._dedup
        return dedup if dedup is not None else self._use(get_settings())

    def on_flag_evaluated(self, details: Any) -> None:
        """The SDK's hook. The hot path: most evaluations end at the dedup check."""
        if forwarding_off.get():
            return
        if details.is_default_value and details.error:
            self._failed(details)
            return
        user = details.user
        user_id = user.get_identifier() if isinstance(user, User) else None
        if user_id:
            identity: str | None = user_id if type(user_id) is str else str(user_id)
        else:
            user = None
            context = current.get()
            identity = context.anonymous_id if context is not None else None
        variation = details.variation_id
        key = (identity, details.key, details.value if variation is None else variation)
        dedup = self._dedup
        if dedup is None:  # the first evaluation, or the settings changed
            dedup = self.dedup
        if dedup.first_seen(key):
            self._record(dedup, details, current.get(), user, identity)

    def _record(
        self, dedup: DedupCache, details: Any, context: Any, user: Any, identity: str | None
    ) -> None:
        settings = self.settings
        if not settings.FORWARD_EVALUATIONS:
            return
        by_rule = details.matched_targeting_rule is not None
        by_percentage = details.matched_percentage_option is not None
        if not self._exposure.admits(
            details.key, identity, by_rule=by_rule, by_percentage=by_percentage
        ):
            return
        if settings.SAMPLE_RATE < 1 and not in_sample(identity, settings.SAMPLE_RATE):
            return
        user_id = identity if user is not None else None
        identify = user_id is not None and dedup.first_seen(("identify", user_id))
        if context is None:
            anonymous_id = None
        elif user_id is None:
            anonymous_id = identity
        else:
            anonymous_id = context.cookie_anonymous_id
        window = settings.DEDUP_WINDOW_SECONDS
        now = time.time()
        evaluation = Evaluation(
            flag_key=details.key,
            value=details.value,
            variation_id=details.variation_id,
            timestamp=now,
            user=user,
            user_id=user_id,
            anonymous_id=anonymous_id,
            context=context.segment_context if context is not None else None,
            identify=identify,
            window=int(now // window) if window > 0 else None,
            nonce=None if window > 0 else new_nonce(),
            by_rule=by_rule,
            by_percentage=by_percentage,
            random_anonymous_id=(
                user_id is None
                and (context is None or context.anonymous_id_source == AnonymousIdSource.RANDOM)
            ),
        )
        if context is None or not context.collect(evaluation):
            writer.add([evaluation])

    def _failed(self, details: Any) -> None:
        writer.count_failed()
        self._failure_log.log(
            logger,
            logging.WARNING,
            "configcat_segment: not forwarding a failed evaluation of %r: %s",
            details.key,
            details.error,
        )


recorder = Recorder()
