"""Fixed names and limits that come from ConfigCat, Segment and the seed documents."""

from typing import Final

# Event names, exactly as the seed documents spell them.
FLAG_CHANGED: Final = "Feature Flag Changed"
FLAG_EVALUATED: Final = "Feature Flag Evaluated"
# Segment's A/B testing spec, for evaluations a percentage option decided.
EXPERIMENT_VIEWED: Final = "Experiment Viewed"

# ConfigCat's own Segment events carry this; ours do too, so destinations treat them alike.
INTEGRATION: Final = {"name": "configcat", "version": "1.0.0"}

# What users paste into the body of the webhook in ConfigCat (method POST).
WEBHOOK_BODY_TEMPLATE: Final = (
    '{"config_id":"##ConfigId##","config_name":"##ConfigName##",'
    '"environment_id":"##EnvironmentId##","environment_name":"##EnvironmentName##",'
    '"url":"##URL##","changed_by":"##ChangedBy##","change_notes":"##ChangeNotes##",'
    '"change_details":##ChangeDetails##}'
)

# Segment's Tracking API limits.
SEGMENT_MAX_MESSAGE_BYTES: Final = 32 * 1024
# "500 KB" read the strict way, as 500,000 bytes: 500 KiB would be 12,000 bytes over it.
SEGMENT_MAX_BATCH_BYTES: Final = 500_000
SEGMENT_MAX_BATCH_MESSAGES: Final = 2500
SEGMENT_MAX_MESSAGE_ID_LENGTH: Final = 100

# ConfigCat webhook signature headers (V1).
HEADER_WEBHOOK_ID: Final = "X-ConfigCat-Webhook-ID"
HEADER_WEBHOOK_TIMESTAMP: Final = "X-ConfigCat-Webhook-Timestamp"
HEADER_WEBHOOK_SIGNATURE: Final = "X-ConfigCat-Webhook-Signature-V1"
SIGNING_KEY_PREFIX: Final = "configcat_whsk_"

# Our own chunk sizes: rows per statement, well under every database's parameter limit.
# Events per INSERT when evaluations are written: large enough to be cheap.
INSERT_CHUNK: Final = 1000
# Events updated (and logged) per statement by the event log's retry and replay actions.
UPDATE_CHUNK: Final = 500
# Events per DELETE when pruning: short transactions, no long lock on a busy table.
PRUNE_CHUNK: Final = 5000
