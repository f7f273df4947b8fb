"""A short-lived process with DELIVERY = "thread", run by test_thread_runner.py.

Usage: python -m tests.delivery.exit_flush_script [--writer-first]

It buffers evaluations and returns: nothing is written, and no runner starts, before the
process exits. At exit the evaluations are written to the outbox, and must be delivered
then (on Python 3.12 and later no thread can start at exit). With ``--writer-first`` the
evaluation buffer is imported before the app is ready: the exit order (write, then
deliver) must not depend on what was imported first. Prints one JSON line: what it saw
before returning.
"""

import json
import sys

if "--writer-first" in sys.argv:
    import configcat_segment.evaluations.buffer  # noqa: F401

import django

django.setup()

from configcatclient.user import User  # noqa: E402

from configcat_segment.delivery.backends import get_backend  # noqa: E402
from configcat_segment.evaluations import buffer as writer  # noqa: E402
from configcat_segment.evaluations.payloads import Evaluation  # noqa: E402


def evaluation(n):
    user = User(f"user-{n}")
    return Evaluation(
        flag_key="isPremium",
        value=True,
        variation_id="isPremium-on",
        timestamp=1_700_000_000.0,
        user=user,
        user_id=user.get_identifier(),
        anonymous_id=None,
        context=None,
        window=5_666_666,
    )


def main():
    writer.add([evaluation(n) for n in range(3)])
    buffered = len(writer.get_writer())
    print(json.dumps({"runner": get_backend().runner is not None, "buffered": buffered}))


if __name__ == "__main__":
    main()
