"""What the HTTP adapters (OpsGenie, PagerDuty, Telegram, Statuspage, Zoom) share: one timeout policy
and one way of turning a peer's answer into a Temporal outcome, retry later or fail for good.

Error types read `<peer>:<status>` (`opsgenie:422`, `telegram:429`, `statuspage:unreachable`) so a
workflow or a retry policy can name them.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
from temporalio.exceptions import ApplicationError

# Explicit, short: an activity attempt must fail well inside its start_to_close_timeout so Temporal
# retries it, rather than hanging on a peer that stopped answering.
TIMEOUT = httpx.Timeout(10.0, connect=5.0)

# Statuses that say "not now" rather than "never": the same request may succeed later.
RETRYABLE_STATUS = frozenset({408, 420, 425, 429})  # 420: Statuspage's rate limit


def new_client(base_url: str, headers: dict[str, str] | None = None) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=base_url.rstrip("/"), headers=headers or {}, timeout=TIMEOUT)


async def send(client: httpx.AsyncClient, peer: str, method: str, url: str, *,
               secrets: Iterable[str] = (), **kwargs: Any) -> httpx.Response:
    """One request; a transport failure (refused, reset, timed out) becomes a retryable error.

    `secrets` are scrubbed from the message, for peers that put a token in the URL.
    """
    try:
        return await client.request(method, url, **kwargs)
    except httpx.TransportError as err:
        detail = redact(f"{type(err).__name__}: {err}", secrets)
        raise ApplicationError(f"{peer} unreachable: {detail}", type=f"{peer}:unreachable") from None


def check(response: httpx.Response, peer: str, *, secrets: Iterable[str] = ()) -> None:
    """Raise the classified error for a non-2xx answer; the body's start goes in the message."""
    if response.is_success:
        return
    raise failure(peer, response.status_code, redact(response.text[:300], secrets),
                  retry_after=retry_after(response.headers.get("Retry-After")))


def failure(peer: str, status: int, detail: str, retry_after: timedelta | None = None) -> ApplicationError:
    retryable = status >= 500 or status in RETRYABLE_STATUS
    return ApplicationError(f"{peer} answered {status}: {detail}", type=f"{peer}:{status}",
                            non_retryable=not retryable, next_retry_delay=retry_after if retryable else None)


def retry_after(value: str | int | float | None) -> timedelta | None:
    """Retry-After as seconds or an HTTP date; None when absent or unreadable."""
    if value is None or value == "":
        return None
    try:
        return timedelta(seconds=max(0.0, float(value)))
    except (TypeError, ValueError):
        pass
    try:
        when = parsedate_to_datetime(str(value))
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(timedelta(0), when - datetime.now(UTC))


def redact(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "<redacted>")
    return text
