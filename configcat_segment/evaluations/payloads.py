"""What one recorded evaluation becomes in Segment. Pure functions: no Django, no I/O.

The evaluation hook records an :class:`Evaluation` (cheap: references, no formatting);
the background writer turns it into messages with :func:`messages_for`, once per
connection, off the request thread.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import uuid
import zlib
from collections.abc import Mapping
from typing import Any, NamedTuple

from ..constants import EXPERIMENT_VIEWED, FLAG_EVALUATED
from ..segment import payloads as messages
from .evaluated_user import UserCache, traits
from .privacy import EVERYTHING, PersonalData

# A connection's "Experiment Viewed" setting: for evaluations a percentage option decided,
# send none, one as well as "Feature Flag Evaluated", or one instead of it.
EXPERIMENTS_OFF = "off"
EXPERIMENTS_ALSO = "also"
EXPERIMENTS_INSTEAD = "instead"
EXPERIMENT_MODES = (EXPERIMENTS_OFF, EXPERIMENTS_ALSO, EXPERIMENTS_INSTEAD)


class Evaluation(NamedTuple):
    """One evaluation worth sending, as the hook saw it.

    A named tuple because the hook builds one on the request thread: it is the cheapest
    immutable record Python has.
    """

    flag_key: str
    value: Any
    variation_id: str | None
    # Unix time of the evaluation.
    timestamp: float
    # The ConfigCat ``User`` the SDK evaluated with (None when there was none).
    user: Any
    # Segment's identity: ``user_id`` from the user's identifier; ``anonymous_id`` from
    # the request (analytics.js cookie, session or random), or None to draw a random one.
    user_id: str | None
    anonymous_id: str | None
    # Segment ``context`` fields of the request (page, userAgent, ip), None outside requests.
    context: Mapping[str, Any] | None
    # Also send an ``identify`` of the user (the first evaluation for them in the window).
    identify: bool = False
    # What its messageIds are derived from, fixed when it is recorded so that writing it
    # again (after a failed write) makes the same ids: the dedup window it was counted in
    # (every process makes the same ids for it), or, without a window, a random ``nonce``.
    window: int | None = None
    nonce: int | None = None
    # What decided the value (the SDK's matched_targeting_rule / matched_percentage_option):
    # neither means the flag's default value was served.
    by_rule: bool = False
    by_percentage: bool = False
    # The anonymous id was drawn at random (no cookie, no session): a new tracked user.
    random_anonymous_id: bool = False


class Shared:
    """What the messages of one write batch share, worked out once: each user as it leaves
    for each connection (:class:`.evaluated_user.UserCache`), and each connection's
    :class:`~..segment.payloads.MessageIds`. One per batch (:func:`.store.write`)."""

    __slots__ = ("_message_ids", "users")

    def __init__(self) -> None:
        self.users = UserCache()
        self._message_ids: dict[str, messages.MessageIds] = {}

    def message_ids(self, salt: str) -> messages.MessageIds:
        found = self._message_ids.get(salt)
        if found is None:
            found = self._message_ids[salt] = messages.MessageIds(salt)
        return found


def new_nonce() -> int:
    """A random ``Evaluation.nonce``: unique, not secret (the connection's salt is)."""
    return random.getrandbits(128)


def event_value(value: Any, variation_id: str | None, long_value_length: int) -> Any:
    """The ``value`` property: a text longer than ``long_value_length`` is sent as its
    variation id, as ConfigCat asks; without one (simple local flags), it is cut, marked
    as :func:`messages.fit` marks the text it cuts."""
    if isinstance(value, str) and len(value) > long_value_length:
        if variation_id:
            return variation_id
        return value[:long_value_length] + messages.TRUNCATION_MARK
    return value


def in_sample(identity: str | None, rate: float) -> bool:
    """Whether ``identity`` is among the ``rate`` share of users whose evaluations are sent.

    Deterministic: a user is in or out for good, so their events are complete or absent,
    never a random subset. Evaluations with no identity at all are sampled at random.
    """
    if rate >= 1:
        return True
    if identity is None:
        return random.random() < rate  # noqa: S311 -- sampling, not security
    return zlib.crc32(identity.encode()) / 0x1_0000_0000 < rate


def messages_for(
    evaluation: Evaluation,
    *,
    salt: str,
    long_value_length: int,
    personal_data: PersonalData = EVERYTHING,
    experiments: str = EXPERIMENTS_OFF,
    shared: Shared | None = None,
) -> list[dict[str, Any]]:
    """The Segment messages for ``evaluation``: a ``track`` (or two), maybe after an ``identify``.

    With a dedup window the messageIds are derived from (``salt``, user, flag, variation,
    window): every process that sends the same evaluation in the same window makes the same
    id, so the outbox keeps one and Segment would drop a repeat. Without one, the window
    is replaced by the evaluation's random ``nonce``. Either way, building the messages of
    an evaluation again makes the same ids. ``salt`` is the connection's secret, which
    keeps ids unique across connections and installations.

    ``personal_data`` decides what of the user leaves (the ``user`` property, the traits
    and the ``userId`` alike); ``experiments`` adds Segment's "Experiment Viewed" for an
    evaluation a percentage option decided (``"also"``), or sends it instead of "Feature
    Flag Evaluated" (``"instead"``).

    ``shared`` is what the messages of a write batch share (:class:`Shared`); without it,
    the evaluation is built on its own.
    """
    if shared is None:
        shared = Shared()
    seed = evaluation.window if evaluation.window is not None else evaluation.nonce
    if seed is None:
        raise ValueError("an Evaluation without a dedup window needs a nonce (new_nonce())")
    timestamp = dt.datetime.fromtimestamp(evaluation.timestamp, dt.UTC)
    # The identity the messageIds derive from is the real one whatever leaves: ids are
    # keyed with the secret salt, so they reveal nothing.
    identity = evaluation.user_id or evaluation.anonymous_id
    anonymous_id = evaluation.anonymous_id
    if not identity:
        # No user and no request: ConfigCat's own integration uses a random anonymousId.
        anonymous_id = str(uuid.uuid4())
    user_id = evaluation.user_id
    if user_id is not None:
        user_id = personal_data.user_id(user_id, salt)
    user = None
    if evaluation.user is not None:
        user = shared.users.shown(evaluation.user, personal_data, salt)
    message_ids = shared.message_ids(salt)

    def message_id(kind: str, *parts: object) -> str:
        return message_ids(kind, *parts, seed)

    value = event_value(evaluation.value, evaluation.variation_id, long_value_length)
    variation = evaluation.variation_id or json.dumps(messages.json_safe(evaluation.value))
    sent: list[dict[str, Any]] = []
    if evaluation.identify and user is not None and evaluation.user_id:
        sent.append(
            messages.identify(
                traits=traits(user),
                timestamp=timestamp,
                message_id=message_id("identify", evaluation.user_id),
                user_id=user_id,
                anonymous_id=anonymous_id,
                context=evaluation.context,
            )
        )
    experiment = evaluation.by_percentage and experiments != EXPERIMENTS_OFF
    if not (experiment and experiments == EXPERIMENTS_INSTEAD):
        track = messages.track(
            event=FLAG_EVALUATED,
            properties={
                "feature_flag_key": evaluation.flag_key,
                "value": value,
                "variation_id": evaluation.variation_id,
            },
            timestamp=timestamp,
            message_id=message_id("evaluated", identity or "", evaluation.flag_key, variation),
            user_id=user_id,
            anonymous_id=anonymous_id,
            context=evaluation.context,
        )
        if user is not None:
            # JSON-safe already (UserCache): added as it is, not walked again for every
            # message, but copied, so that each message has its own.
            track["properties"]["user"] = dict(user)
        sent.append(track)
    if experiment:
        sent.append(
            messages.track(
                event=EXPERIMENT_VIEWED,
                properties={
                    "experiment_id": evaluation.flag_key,
                    "experiment_name": evaluation.flag_key,
                    "variation_id": variation,
                    "variation_name": value,
                },
                timestamp=timestamp,
                message_id=message_id("experiment", identity or "", evaluation.flag_key, variation),
                user_id=user_id,
                anonymous_id=anonymous_id,
                context=evaluation.context,
            )
        )
    return sent
