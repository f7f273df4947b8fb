"""The ``on_flag_evaluated`` hook: decide, cheaply, whether an evaluation is worth sending.

It runs synchronously in the thread that evaluated, inside ``get_value``, so it does no
I/O and no formatting: it skips failed evaluations (counted, logged at most once a
minute), drops repeats within the dedup window, applies per-user sampling, and records a
compact :class:`~configcat_segment.evaluations.Evaluation`. Inside a request the
evaluation joins the request's list, handed to the writer once at the end; elsewhere it
goes to the writer's buffer directly.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from configcatclient.user import User
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed

from . import writer
from .conf import SETTING_NAME, AppSettings, get_settings
from .context import current
from .dedup import DedupCache
from .evaluations import Evaluation, in_sample

logger = logging.getLogger(__name__)

FAILURE_LOG_INTERVAL = 60.0


class Recorder:
    """The hook callable. One per process (:data:`recorder`), shared by every client."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._failures_unlogged = 0
        self._failure_logged_at: float | None = None
        self.configure(get_settings())

    def configure(self, settings: AppSettings) -> None:
        """(Re)read the settings; forgets what was seen."""
        self.settings = settings
        self.dedup = DedupCache(settings.DEDUP_WINDOW_SECONDS, settings.DEDUP_MAX_KEYS, self._clock)

    def on_flag_evaluated(self, details: Any) -> None:
        """The SDK's hook. The hot path: most evaluations end at the dedup check."""
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
        if self.dedup.first_seen(key):
            self._record(details, current.get(), user, identity)

    def _record(self, details: Any, context: Any, user: Any, identity: str | None) -> None:
        settings = self.settings
        if not settings.FORWARD_EVALUATIONS:
            return
        if settings.SAMPLE_RATE < 1 and not in_sample(identity, settings.SAMPLE_RATE):
            return
        user_id = identity if user is not None else None
        identify = user_id is not None and self.dedup.first_seen(("identify", user_id))
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
        )
        if context is None or not context.collect(evaluation):
            writer.add([evaluation])

    def _failed(self, details: Any) -> None:
        writer.count_failed()
        now = self._clock()
        with self._lock:
            last = self._failure_logged_at
            if last is not None and now - last < FAILURE_LOG_INTERVAL:
                self._failures_unlogged += 1
                return
            suppressed, self._failures_unlogged = self._failures_unlogged, 0
            self._failure_logged_at = now
        logger.warning(
            "configcat_segment: not forwarding a failed evaluation of %r: %s%s",
            details.key,
            details.error,
            f" ({suppressed} more failed evaluations since the last message)" if suppressed else "",
        )


recorder = Recorder()


def _reconfigure(*, setting: str, **kwargs: Any) -> None:
    if setting != SETTING_NAME:
        return
    try:
        settings = get_settings()
    except ImproperlyConfigured:
        return  # get_client() and manage.py check report it
    recorder.configure(settings)


setting_changed.connect(_reconfigure, dispatch_uid="configcat_segment.recorder.reconfigure")
