"""Run in a process of its own: send one batch through the app's transport, print the status.

``python -m tests.operations.send_script ENDPOINT WRITE_KEY MESSAGE_ID``, with
``DJANGO_SETTINGS_MODULE`` set (the app's ``ready()`` installs the metrics observer).
"""

import sys

import django

django.setup()

from django.utils import timezone  # noqa: E402

from configcat_segment.segment import payloads, transport  # noqa: E402

endpoint, write_key, message_id = sys.argv[1:4]
message = payloads.track(
    event="Feature Flag Changed",
    properties={},
    user_id="alice",
    timestamp=timezone.now(),
    message_id=message_id,
)
answer = transport.send(
    [message],
    endpoint=endpoint,
    write_key=write_key,
    sent_at=payloads.isoformat(timezone.now()),
    gzip=True,
    timeout=10,
)
print(answer.status)
