"""The only place that talks to ConfigCat's Public Management API: its audit log.

``GET {base}/v1/products/{productId}/auditlogs`` with HTTP Basic auth (a Public API
credential), filtered by config, environment, type and a UTC time window of at most 30
days, every page of the answer read (:mod:`.answers` reads them).

Whatever goes wrong becomes an :class:`~.answers.AuditLogError` with a ``kind`` and a
message fit to show an operator (never the credential). ``429`` is waited out when its
``Retry-After`` fits the time the caller allows, and reported otherwise.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, Final
from urllib.parse import quote

import requests

from ..segment.payloads import isoformat
from ..segment.retry import parse_retry_after
from ..text import clean
from .answers import (
    CREDENTIALS,
    NOT_FOUND,
    RATE_LIMITED,
    REFUSED,
    UNAVAILABLE,
    AuditEntry,
    AuditLogError,
    malformed,
    parse_entry,
    read_page,
)

logger = logging.getLogger(__name__)

SETTING_VALUE_CHANGED: Final = "settingValueChanged"
MAX_PAGES: Final = 1000  # a server that keeps saying "hasNext" does not keep us forever
MAX_RATE_LIMIT_WAITS: Final = 5
_ERROR_CHARS: Final = 300


def _body_excerpt(response: requests.Response) -> str:
    text = " ".join(clean(response.text or "").split())
    return text[:_ERROR_CHARS] + ("…" if len(text) > _ERROR_CHARS else "")


class AuditLogClient:
    """Reads one product's audit log with one Public API credential."""

    # Tests replace them: no test waits for a real Retry-After.
    sleep: Callable[[float], None] = staticmethod(time.sleep)
    clock: Callable[[], float] = staticmethod(time.monotonic)

    def __init__(
        self,
        base_url: str,
        username: str,
        password: str,
        *,
        timeout: float,
        deadline: float | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._auth = (username, password)
        self.timeout = timeout
        self.deadline = deadline  # a clock() value: no wait for Retry-After goes past it
        self.requests = 0
        self._session = requests.Session()
        self._session.trust_env = True  # proxies from the environment, as requests does

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> AuditLogClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def entries(
        self,
        product_id: str,
        *,
        start: dt.datetime,
        end: dt.datetime,
        config_id: str = "",
        environment_id: str = "",
        audit_log_type: str = SETTING_VALUE_CHANGED,
    ) -> list[AuditEntry]:
        """Every entry from ``start`` (inclusive) to ``end`` (exclusive), all pages read."""
        params: dict[str, str] = {
            "fromUtcDateTime": isoformat(start),
            "toUtcDateTime": isoformat(end),
        }
        if config_id:
            params["configId"] = config_id
        if environment_id:
            params["environmentId"] = environment_id
        if audit_log_type:
            params["auditLogType"] = audit_log_type
        url = f"{self.base_url}/v1/products/{quote(product_id, safe='')}/auditlogs"
        found: dict[int, AuditEntry] = {}
        page = 1
        while True:
            items, page_size = read_page(self._get(url, params), page)
            for position, item in enumerate(items):
                entry = parse_entry(item, position)
                if start <= entry.at < end:  # the API's own bounds may include both ends
                    found[entry.audit_log_id] = entry
            if page_size is None:
                break
            page += 1
            if page > MAX_PAGES:
                raise malformed(f"more than {MAX_PAGES} pages for one window")
            # The next page, in the size the server chose (its pages must not shift).
            params = {**params, "pageNumber": str(page), "pageSize": str(page_size)}
        return sorted(found.values(), key=lambda e: (e.at, e.audit_log_id))

    def _get(self, url: str, params: Mapping[str, str]) -> Any:
        waits = 0
        while True:
            response = self._request(url, params)
            if response.status_code != 429:
                return self._read(response)
            retry_after = parse_retry_after(
                response.headers.get("Retry-After"), dt.datetime.now(dt.UTC)
            )
            wait = 1.0 if retry_after is None else retry_after
            waits += 1
            budget = None if self.deadline is None else self.deadline - self.clock()
            if waits > MAX_RATE_LIMIT_WAITS or (budget is not None and wait > budget):
                raise AuditLogError(
                    RATE_LIMITED,
                    "ConfigCat's API is rate limiting this credential (429"
                    + (f", Retry-After {retry_after:g} s" if retry_after is not None else "")
                    + "); the rest is read on a later run.",
                    retry_after=wait,
                )
            logger.info("configcat_segment: ConfigCat's API says wait %gs (429)", wait)
            self.sleep(wait)

    def _request(self, url: str, params: Mapping[str, str]) -> requests.Response:
        self.requests += 1
        try:
            response = self._session.get(
                url,
                params=params,
                auth=self._auth,
                timeout=self.timeout,
                headers={"Accept": "application/json"},
                allow_redirects=False,
            )
            response.content  # noqa: B018 -- read it all now, so a cut answer fails here
        except requests.Timeout:
            raise AuditLogError(
                UNAVAILABLE, f"ConfigCat's API did not answer within {self.timeout:g} s."
            ) from None
        except requests.exceptions.ChunkedEncodingError:
            raise malformed("the answer was cut off before its end") from None
        except requests.RequestException as exc:
            raise AuditLogError(
                UNAVAILABLE, f"ConfigCat's API could not be reached ({type(exc).__name__})."
            ) from None
        return response

    def _read(self, response: requests.Response) -> Any:
        status = response.status_code
        if status in (401, 403):
            what = "refused" if status == 401 else "does not allow this credential to read"
            raise AuditLogError(
                CREDENTIALS,
                f"ConfigCat {what} the Public API credential ({status}): check the "
                "username and password, and that they may read this product's audit log.",
            )
        if status == 404:
            raise AuditLogError(
                NOT_FOUND,
                "ConfigCat knows no such product (404): check the connection's product id.",
            )
        if 300 <= status < 400:
            raise AuditLogError(
                REFUSED,
                f"ConfigCat's API answered with a redirect ({status}): check "
                'CONFIGCAT_SEGMENT["CONFIGCAT_API_BASE_URL"].',
            )
        if status >= 500 or status == 408:
            raise AuditLogError(UNAVAILABLE, f"ConfigCat's API is unavailable ({status}).")
        if status >= 400:
            raise AuditLogError(
                REFUSED,
                f"ConfigCat's API refused the request ({status}): {_body_excerpt(response)}",
            )
        if status != 200:
            raise malformed(f"status {status}, not 200")
        try:
            return json.loads(response.content.decode("utf-8-sig"))
        except UnicodeDecodeError:
            raise malformed("it is not UTF-8") from None
        except (ValueError, RecursionError) as exc:
            raise malformed(f"it is not JSON, or was cut off ({exc})") from None
