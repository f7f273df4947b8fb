from __future__ import annotations

import json
import shlex
import time
import urllib.error
import urllib.request
import uuid
from typing import Any
from urllib.parse import urlsplit

from django.core.management.base import CommandError, CommandParser

from ...conf import get_settings, setting_path
from ...models import SegmentConnection
from ...webhooks.rendering import render_body
from ...webhooks.signing import signature_headers
from ..base import JSONCommand, get_connection, seconds

SAMPLE_CONFIG_ID = "08d8cbd0-0000-4000-8000-5a3b1ec0f1a6"
SAMPLE_ENVIRONMENT_ID = "08d8cbd0-0000-4000-8000-e5d1a6e0c7b2"
SAMPLE_PRODUCT_ID = "08d8cbd0-0000-4000-8000-9b0d7c4f2e11"


def sample_body(connection: SegmentConnection, setting_key: str, changed_by: str) -> bytes:
    """A change of ``setting_key`` from false to true, as ConfigCat fills in our template."""
    product_id = connection.product_id or SAMPLE_PRODUCT_ID
    variables = {
        "ConfigId": SAMPLE_CONFIG_ID,
        "ConfigName": "Sample config",
        "EnvironmentId": SAMPLE_ENVIRONMENT_ID,
        "EnvironmentName": "Sample environment",
        "URL": f"https://app.configcat.com/{product_id}/{SAMPLE_CONFIG_ID}/{SAMPLE_ENVIRONMENT_ID}",
        "ChangedBy": changed_by,
        "ChangeNotes": "A sample change sent by configcat_segment_sample_webhook.",
    }
    details = [
        {
            "settingKey": setting_key,
            "event": "changed",
            "details": f"\r\n{setting_key}: false ➔ true",
        }
    ]
    return render_body(variables, details).encode()


def curl_command(url: str, headers: dict[str, str], body: bytes) -> str:
    lines = [f"curl -sS -X POST {shlex.quote(url)}"]
    lines += [f"-H {shlex.quote(f'{name}: {value}')}" for name, value in headers.items()]
    lines.append(f"--data-binary {shlex.quote(body.decode())}")
    return " \\\n  ".join(lines) + "\n"


def is_site_address(url: str) -> bool:
    """Whether ``url`` is where a site answers: http(s), a host, a valid port, and no
    query or fragment (the webhook's path is added to it)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not one
    except ValueError:  # "http://[::1", "http://host:abc"
        return False
    return (
        parts.scheme in ("http", "https")
        and bool(parts.hostname)
        and not any(c.isspace() for c in url)
        and not (parts.query or parts.fragment or "?" in url or "#" in url)
    )


def send(url: str, headers: dict[str, str], body: bytes, timeout: float) -> tuple[int, Any]:
    """POST ``body``; returns the status and the answer (JSON when it is JSON)."""
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    except (urllib.error.URLError, OSError, ValueError) as exc:  # ValueError: InvalidURL
        reason = getattr(exc, "reason", exc)
        raise CommandError(f"Could not reach {url}: {reason}") from None
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode("utf-8", "replace")[:2000]


class Command(JSONCommand):
    help = (
        "Send a correctly signed sample ConfigCat change webhook to a connection's webhook "
        "URL and print the answer as JSON, or print it as a curl command: the whole path "
        "from ConfigCat to Segment, without ConfigCat."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("connection", metavar="ID_OR_NAME", help="The connection's id or name.")
        parser.add_argument(
            "--url",
            default="http://127.0.0.1:8000",
            metavar="BASE",
            help="Where this site is served; the webhook path is added (default: %(default)s).",
        )
        parser.add_argument(
            "--print-curl",
            action="store_true",
            help="Print a curl command instead of sending (valid for the webhook tolerance).",
        )
        parser.add_argument(
            "--setting-key", default="sample_flag", help="The flag the sample changes."
        )
        parser.add_argument(
            "--changed-by",
            default="Sample User (sample@example.com)",
            help="Who the sample says made the change (default: %(default)s).",
        )
        parser.add_argument(
            "--timeout",
            type=seconds(3600),
            default=10.0,
            help="Seconds to wait for the answer (default: %(default)s).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        connection = get_connection(options["connection"])
        path = connection.webhook_path
        if path is None:
            raise CommandError(
                "configcat_segment's URLs are not in the URLconf, so there is no webhook URL."
            )
        base = options["url"].strip().rstrip("/")
        if not is_site_address(base):
            raise CommandError(
                f"--url: give the site's http:// or https:// address, such as "
                f"http://127.0.0.1:8000, not {base!r}."
            )
        url = base + path
        body = sample_body(connection, options["setting_key"], options["changed_by"])
        headers = {
            "Content-Type": "application/json",
            **signature_headers(
                connection.signing_keys,
                body,
                webhook_id=uuid.uuid4().hex,
                timestamp=str(int(time.time())),
            ),
        }
        if not connection.signing_keys:
            self.stderr.write(
                "This connection has no signing key: the sample is unsigned and is refused "
                f"unless {setting_path('ALLOW_UNSIGNED_WEBHOOKS')} is on."
            )
        if options["print_curl"]:
            self.stdout.write(curl_command(url, headers, body), ending="")
            self.stderr.write(
                f"Run it within {get_settings().WEBHOOK_TOLERANCE_SECONDS} s: the signature "
                "carries the time it was made."
            )
            return
        status, answer = send(url, headers, body, options["timeout"])
        self.emit({"url": url, "status": status, "answer": answer})
        if not 200 <= status < 300:
            raise CommandError(f"The webhook answered {status}.")
