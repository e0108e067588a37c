"""What the network adapters share: one timeout policy, one way of turning a peer's answer into a Temporal
outcome (retry later or fail for good), and how an attempt stays within its time and shows it is alive.

Error types read `<peer>:<status>` (`opsgenie:422`, `telegram:429`, `statuspage:unreachable`) so a
workflow or a retry policy can name them.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import AsyncIterator, Callable, Iterable
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError

from settings import Settings
from workflows.contracts.activity_io import AckFor, DirectMessage
from workflows.contracts.trust import links
from workflows.contracts.vocabulary import Channel

# Explicit, short: an activity attempt must fail well inside its start_to_close_timeout so Temporal
# retries it, rather than hanging on a peer that stopped answering.
TIMEOUT = httpx.Timeout(10.0, connect=5.0)

# Of its start_to_close_timeout an attempt may use: the server times the attempt out without telling the
# worker, so an attempt still running then could deliver after its retry did, and deliver twice.
ATTEMPT_SHARE = 0.9
# The SDK sends at most one heartbeat per 0.8 x heartbeat_timeout; beating more often only keeps the
# newest progress ready to go.
HEARTBEAT_EVERY = timedelta(seconds=1)

# Statuses that say "not now" rather than "never": the same request may succeed later.
RETRYABLE_STATUS = frozenset({408, 420, 425, 429})  # 420: Statuspage's rate limit


def auth_headers(user: str | None, token: str) -> dict[str, str]:
    """Basic with a user (Atlassian Cloud's e-mail and API token, ServiceNow's user and password); a bearer
    token without one (a Data Center personal access token)."""
    if user:
        return {"Authorization": "Basic " + base64.b64encode(f"{user}:{token}".encode()).decode()}
    return {"Authorization": f"Bearer {token}"}


def new_client(base_url: str, headers: dict[str, str] | None = None) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=base_url.rstrip("/"), headers=headers or {}, timeout=TIMEOUT)


async def send(
    client: httpx.AsyncClient, peer: str, method: str, url: str, *, secrets: Iterable[str] = (), **kwargs: Any
) -> httpx.Response:
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
    raise failure(
        peer,
        response.status_code,
        redact(response.text[:300], secrets),
        retry_after=retry_after(response.headers.get("Retry-After")),
    )


def failure(peer: str, status: int, detail: str, retry_after: timedelta | None = None) -> ApplicationError:
    retryable = status >= 500 or status in RETRYABLE_STATUS
    return ApplicationError(
        f"{peer} answered {status}: {detail}",
        type=f"{peer}:{status}",
        non_retryable=not retryable,
        next_retry_delay=retry_after if retryable else None,
    )


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


def attempt_deadline() -> float | None:
    """The event-loop time by which this attempt must be done (None: no timeout)."""
    info = activity.info()
    budget = info.start_to_close_timeout or info.schedule_to_close_timeout
    if not budget:
        return None
    return asyncio.get_running_loop().time() + budget.total_seconds() * ATTEMPT_SHARE


@contextlib.asynccontextmanager
async def within_attempt(peer: str) -> AsyncIterator[None]:
    """End the block before Temporal gives up on the attempt, as a retryable `<peer>:attempt_timeout`."""
    budget = asyncio.timeout_at(attempt_deadline())
    try:
        async with budget:
            yield
    except TimeoutError:
        if not budget.expired():
            raise
        raise ApplicationError(
            f"{peer} did not answer within this attempt's time", type=f"{peer}:attempt_timeout"
        ) from None


@contextlib.asynccontextmanager
async def heartbeating(progress: Callable[[], Any] | None = None) -> AsyncIterator[None]:
    """Heartbeat while the block waits on a peer, so that an attempt whose worker was killed is retried after
    the activity's heartbeat_timeout, not its start_to_close_timeout. `progress()` is what a retry resumes
    from (`activity.info().heartbeat_details[0]`); beat at once after progress that must not be repeated.
    """

    async def beat() -> None:
        while True:
            activity.heartbeat(*(() if progress is None else (progress(),)))
            await asyncio.sleep(HEARTBEAT_EVERY.total_seconds())

    beating = asyncio.create_task(beat())
    try:
        yield
    finally:
        beating.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beating


def ack_token(settings: Settings, page: DirectMessage | AckFor, via: Channel) -> str:
    """What acknowledges the page's incident as its person, for a while (trust/links.py)."""
    granted = links.grant(page.incident_id, page.person, via, datetime.now(UTC))
    return links.sign(links.link_key(settings.ack_link_key), granted)


def ack_link(settings: Settings, page: DirectMessage | AckFor, via: Channel) -> str:
    return f"{settings.public_base()}/ack/{ack_token(settings, page, via)}"
