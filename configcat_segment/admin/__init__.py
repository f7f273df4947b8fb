"""The admin is the console: connections, the events they sent, the webhooks they received.

``connections`` connects and disconnects Segment sources; ``events`` and ``receipts`` show
the log read-only (events can be retried); ``eventlog`` links the event log page from the
admin index.
"""

from .connections import SegmentConnectionAdmin
from .eventlog import EventLogAdmin
from .events import EventAdmin
from .receipts import WebhookReceiptAdmin

__all__ = ["EventAdmin", "EventLogAdmin", "SegmentConnectionAdmin", "WebhookReceiptAdmin"]
