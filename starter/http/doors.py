"""Who may knock on which door of the HTTP service: closed by default.

Each alert source and each heartbeat has a token of its own (`ALERT_TOKENS`, `HEARTBEAT_TOKENS`), calendar
feeds a read-only one (`CALENDAR_TOKEN`, which can open nothing), `/metrics` its own (`METRICS_TOKEN`; without
it, only this machine may read it). A door with no token is closed. The one exception is a service on a
loopback address with no token at all (`make run`): then every door is open to this machine, and the service
says so loudly as it starts. On any other address the service refuses to start without tokens.

Each source (alert source, heartbeat) also has a rate: past it, 429 with Retry-After.
"""

from __future__ import annotations

import hmac
import ipaddress
import math
import time
from dataclasses import dataclass, field

from fastapi import Request
from pydantic import SecretStr

from settings import Settings


class HttpError(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


class DoorsOpen(ValueError):
    """The settings would leave doors open to the network: the service does not start."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False


def refusal(settings: Settings) -> str | None:
    """Why the service must not start with these settings, or None."""
    if not is_loopback(settings.http_host) and not (settings.alert_tokens or settings.heartbeat_tokens):
        return (
            f"refusing to listen on {settings.http_host} without tokens: anyone who reaches it could open "
            "incidents; set ALERT_TOKENS (and HEARTBEAT_TOKENS, CALENDAR_TOKEN, METRICS_TOKEN), or HTTP_HOST=127.0.0.1"
        )
    if settings.calendar_token is not None:
        calendar = settings.calendar_token.get_secret_value()
        opening = [*settings.alert_tokens.values(), *settings.heartbeat_tokens.values()]
        if any(hmac.compare_digest(calendar.encode(), t.get_secret_value().encode()) for t in opening):
            return "CALENDAR_TOKEN is also an alert or heartbeat token: a calendar link must not open incidents"
    return None


def open_to_this_machine(settings: Settings) -> bool:
    """`make run`'s case: loopback and no token at all; every door is then open to whoever is on this machine."""
    return is_loopback(settings.http_host) and not (
        settings.alert_tokens or settings.heartbeat_tokens or settings.calendar_token or settings.metrics_token
    )


@dataclass
class _Bucket:
    tokens: float
    at: float


@dataclass
class RateLimit:
    """A token bucket per source, in this replica's memory: `per_minute` requests, as a burst or spread out."""

    per_minute: int
    _buckets: dict[str, _Bucket] = field(default_factory=dict)

    def take(self, source: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        rate = self.per_minute / 60
        bucket = self._buckets.setdefault(source, _Bucket(tokens=self.per_minute, at=now))
        bucket.tokens = min(self.per_minute, bucket.tokens + (now - bucket.at) * rate)
        bucket.at = now
        if bucket.tokens < 1:
            wait = math.ceil((1 - bucket.tokens) / rate)
            raise HttpError(
                429,
                f"{source}: over {self.per_minute} requests a minute (RATE_LIMIT_PER_MINUTE); retry in {wait} s",
                {"Retry-After": str(wait)},
            )
        bucket.tokens -= 1


class Doors:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.open = open_to_this_machine(settings)
        self.rate = RateLimit(settings.rate_limit_per_minute)

    def alert(self, request: Request, source: str) -> None:
        self._knock(request, self.settings.alert_tokens.get(source), f"alerts from {source}", "ALERT_TOKENS")
        self.rate.take(f"alerts/{source}")

    def heartbeat(self, request: Request, name: str) -> None:
        self._knock(request, self.settings.heartbeat_tokens.get(name), f"heartbeat {name}", "HEARTBEAT_TOKENS")
        self.rate.take(f"heartbeats/{name}")

    def calendar(self, request: Request) -> None:
        """The read-only token, as a bearer header or `?token=` (calendar apps send no headers)."""
        given = request.query_params.get("token")
        if given is not None and self.settings.calendar_token is not None:
            if not _same(given, self.settings.calendar_token):
                raise HttpError(401, "wrong calendar token")
            return
        self._knock(request, self.settings.calendar_token, "calendar feeds", "CALENDAR_TOKEN")

    def metrics(self, request: Request) -> None:
        """Its own token; without one, only this machine may read the metrics."""
        if self.settings.metrics_token is None:
            client = request.client.host if request.client else ""
            if not is_loopback(client):
                raise HttpError(403, "/metrics answers this machine only; set METRICS_TOKEN to read it from elsewhere")
            return
        self._knock(request, self.settings.metrics_token, "/metrics", "METRICS_TOKEN")

    def _knock(self, request: Request, token: SecretStr | None, door: str, variable: str) -> None:
        if self.open:
            return
        if token is None:
            raise HttpError(403, f"{door}: closed, no token is set for it ({variable})")
        given = request.headers.get("authorization", "")
        if not given.startswith("Bearer ") or not _same(given.removeprefix("Bearer "), token):
            raise HttpError(401, "missing or wrong bearer token", {"WWW-Authenticate": "Bearer"})


def _same(given: str, token: SecretStr) -> bool:
    return hmac.compare_digest(given.encode(), token.get_secret_value().encode())
