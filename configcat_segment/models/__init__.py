"""The app's data: Segment connections, the webhooks they received, the events table (the
outbox and the log in one) and the evaluation counters, one module each. Everything is
imported here, so ``configcat_segment.models.Event`` and the paths the migrations name
(``configcat_segment.models._new_salt``) keep working.
"""

from .claim import EventClaim
from .connection import Region, SegmentConnection, SegmentConnectionQuerySet, _new_salt
from .counters import EvaluationCounter, EvaluationCounterQuerySet
from .counts import EventCount, EventCountChange
from .event import DUE_STATUSES, Event, EventLog, EventQuerySet, EventStatus
from .receipt import WebhookReceipt
from .scopes import WebhookScope

__all__ = [
    "DUE_STATUSES",
    "EvaluationCounter",
    "EvaluationCounterQuerySet",
    "Event",
    "EventClaim",
    "EventCount",
    "EventCountChange",
    "EventLog",
    "EventQuerySet",
    "EventStatus",
    "Region",
    "SegmentConnection",
    "SegmentConnectionQuerySet",
    "WebhookReceipt",
    "WebhookScope",
    "_new_salt",
]
