"""An audit-log entry as the "Feature Flag Changed" message a webhook would have made.

The message is built by the webhooks' own code (:func:`..webhooks.changed.flag_changed_messages`)
from the change the entry describes, so both sources send the same properties; it then
says where it came from: ``source: "audit_log"`` and the entry's ``audit_log_id``. Its
``messageId`` comes from the connection's salt and the ``auditLogId``: reconciling the
same period again, from any process, makes the same id, which the events table holds once.
"""

from __future__ import annotations

from typing import Any, Final

from ..models import SegmentConnection
from ..segment.payloads import TRUNCATION_MARK
from ..webhooks.body import Change, SettingChange
from ..webhooks.changed import ChangeMessage, flag_changed_messages
from ..webhooks.receipts import connection_user_id
from .matching import ScopedEntry

SOURCE: Final = "audit_log"
DASHBOARD: Final = "https://app.configcat.com"


def message_key(audit_log_id: int) -> str:
    """The natural key of an audit-log change (with the salt, it makes the messageId)."""
    return f"audit-log:{audit_log_id}"


def changed_by(name: str, email: str) -> str:
    """Name and email as ConfigCat's ``##ChangedBy##`` writes them."""
    if name and email:
        return f"{name} ({email})"
    return name or email


def dashboard_url(product_id: str, config_id: str, environment_id: str) -> str:
    """The link ConfigCat puts in ``##URL##``: the config in that environment."""
    return f"{DASHBOARD}/{product_id}/{config_id}/{environment_id}"


def flag_changed_message(connection: SegmentConnection, scoped: ScopedEntry) -> ChangeMessage:
    entry, scope = scoped.entry, scoped.scope
    details = entry.details
    if entry.truncated:  # ConfigCat cut the text; say so, as fit() does with what it cuts
        details = details.rstrip() + " " + TRUNCATION_MARK
    change = Change(
        config_id=scope.config_id,
        config_name=scope.config_name,
        environment_id=scope.environment_id,
        environment_name=scope.environment_name,
        url=dashboard_url(connection.product_id, scope.config_id, scope.environment_id),
        changed_by=changed_by(entry.user_name, entry.user_email),
        change_notes=entry.why,
        settings=(
            SettingChange(setting_key=entry.action_target, event="changed", details=details),
        ),
    )
    (built,) = flag_changed_messages(
        change,
        key=message_key(entry.audit_log_id),
        timestamp=entry.at,
        salt=connection.message_id_salt,
        product_id=connection.product_id,
        product_name=connection.product_name,
        fallback_user_id=connection_user_id(connection),
    )
    properties: dict[str, Any] = built.message["properties"]
    properties["source"] = SOURCE
    properties["audit_log_id"] = entry.audit_log_id
    return built


def describe(scoped: ScopedEntry, message: dict[str, Any]) -> dict[str, Any]:
    """A forwarded change, as the run's outcome (and the command's report) lists it."""
    entry, scope = scoped.entry, scoped.scope
    return {
        "audit_log_id": entry.audit_log_id,
        "at": entry.at,
        "flag_key": entry.action_target,
        "config_id": scope.config_id,
        "environment_id": scope.environment_id,
        "user_email": entry.user_email,
        "truncated": entry.truncated,
        "message_id": message["messageId"],
    }
