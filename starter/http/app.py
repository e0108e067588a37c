"""The HTTP service: alert webhooks (Alertmanager, Grafana, Datadog, generic), the Slack endpoint,
the codec endpoint, health and Prometheus metrics. `incident-http` runs it with uvicorn.

An alert is answered 202 only once Temporal has accepted the signal of every alert in the body; when
Temporal cannot be reached the answer is 503 with Retry-After and the sender retries the whole body.
A retried body may record an alert twice on its incident (counted, harmless) but never loses one.
The service keeps nothing in memory between requests, so any number of replicas can run.

Each replica also runs a worker (HTTP_RUNS_WORKER, on by default): a new incident then starts eagerly,
its first workflow task and its page in this process at once, never behind a backlog on the server.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from datetime import UTC, datetime
from typing import Any

import uvicorn
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from temporalio.client import Client
from temporalio.envconfig import ClientConfig
from temporalio.service import RPCError, RPCStatusCode

import observability
from client.alerts import send_alert
from client.signing import signing, signing_key
from client.windows import WindowCache
from policy_file import PolicyError, load_policy
from settings import Settings, converter, free_temporal
from starter.http import codec as codec_endpoint
from starter.http import contact, registers
from starter.http import decisions as decisions_api
from starter.http import oncall as oncall_http
from starter.http import slack as slack_endpoint
from starter.http import teams as teams_endpoint
from starter.http.alert_formats import LIMITS_DESCRIBED, PARSERS, AlertBodyError
from starter.http.doors import Doors, DoorsOpen, HttpError, refusal
from starter.http.metrics import HttpMetrics
from worker import build_worker, connect_when_up, refuse_undeliverable
from workflows.contracts.policy import Policy
from workflows.contracts.temporal.ids import incident_id_for
from workflows.contracts.trust import verify
from workflows.incident.model import AlertEvent

log = logging.getLogger("webhook")

# A whole body must be recorded within this budget, or the sender is told to retry. A 1 MiB storm body
# (about 2,500 alerts) takes 4-6 s on a 2-core machine; senders wait 10-30 s by default.
REQUEST_BUDGET_SECONDS = 20.0
RETRY_AFTER_SECONDS = "5"
# Signals in flight per request: enough to keep Temporal busy, few enough to be fair to other requests.
CONCURRENT_SENDS = 32
# How a refused request is counted, by its status.
_OUTCOMES = {401: "unauthorized", 403: "unauthorized", 429: "rate_limited"}
# What Temporal answers when it is down, overloaded or too slow: the sender should retry.
RETRYABLE = {
    RPCStatusCode.UNAVAILABLE,
    RPCStatusCode.DEADLINE_EXCEEDED,
    RPCStatusCode.RESOURCE_EXHAUSTED,
    RPCStatusCode.CANCELLED,
}


async def lazy_client(settings: Settings) -> Client:
    """A client that connects on first use, so the service starts (and answers 503) while Temporal is down."""
    config = ClientConfig.load_client_connect_config()
    config.setdefault("target_host", settings.temporal_address)
    config.setdefault("namespace", settings.temporal_namespace)
    return await Client.connect(**config, data_converter=converter(settings), lazy=True)


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body, refused with 413 when Content-Length says too much or the stream turns out longer."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise HttpError(400, "Content-Length is not a number")
        if int(declared) > limit:
            raise HttpError(413, f"body over {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise HttpError(413, f"body over {limit} bytes")
    return bytes(body)


def parse_json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as err:  # RecursionError: hostile nesting like [[[[...]]]]
        raise HttpError(400, f"body is not valid JSON: {str(err)[:200]}") from err


def is_retryable(err: BaseException) -> bool:
    if isinstance(err, RPCError):
        return err.status in RETRYABLE
    # A lazy client that cannot connect says so with a RuntimeError.
    return isinstance(err, TimeoutError) or (isinstance(err, RuntimeError) and "client connect" in str(err))


def create_app(
    settings: Settings,
    *,
    client: Client | None = None,
    policy: Policy | None = None,
    budget_seconds: float = REQUEST_BUDGET_SECONDS,
) -> FastAPI:
    """The whole HTTP service. The policy is read once here; a bad one raises PolicyError, settings that would
    leave its doors open to the network raise DoorsOpen.

    `budget_seconds` bounds recording one body; past it the sender gets 503 and retries.
    """
    if problem := refusal(settings):
        raise DoorsOpen(problem)
    doors = Doors(settings)
    if doors.open:
        log.warning(
            "DOORS OPEN: no tokens are set, so anyone on this machine may post alerts and heartbeats to %s:%s "
            "and read the calendars; set ALERT_TOKENS, HEARTBEAT_TOKENS and CALENDAR_TOKEN to close them",
            settings.http_host,
            settings.http_port,
        )
    policy = policy or load_policy(settings.incident_policy)
    signer = signing_key(settings.decision_signing_key, settings.decision_keys)
    verify.trust([signer.public_key])  # this process runs a worker too (HTTP_RUNS_WORKER)
    metrics = HttpMetrics(settings.metrics_gauge_seconds)
    windows = WindowCache()
    holder: dict[str, Client] = {}
    signed: dict[str, Client] = {}

    async def serve_incidents() -> None:
        """This process's worker; once it is connected, alerts go through its client (eager start)."""
        try:
            connected = await connect_when_up(settings, runtime=None)
            holder["client"] = connected
            await build_worker(connected, settings).run()
        except Exception:  # alerts still start incidents, for the other workers to pick up
            log.exception("this HTTP service's worker stopped; new incidents now wait for another worker")

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        holder["client"] = client or await lazy_client(settings)
        worker = asyncio.create_task(serve_incidents()) if client is None and settings.http_runs_worker else None
        yield
        if worker:
            worker.cancel()  # the worker shuts down
            with suppress(asyncio.CancelledError):
                await worker

    app = FastAPI(title="incident-orchestrator", lifespan=lifespan, docs_url=None, redoc_url=None)

    def temporal() -> Client:
        # Tests may drive the app without running its lifespan; the given client is then used as is.
        return holder.get("client") or client or _no_client()

    def deciding() -> Client:
        """The client that signs the decisions people take here (client/signing.py), over temporal()'s connection."""
        current = temporal()
        if signed.get("over") is not current:
            signed["over"], signed["client"] = current, signing(current, signer)
        return signed["client"]

    app.add_middleware(Timing, metrics=metrics)

    @app.exception_handler(HttpError)
    async def http_error(_: Request, err: HttpError) -> JSONResponse:
        return JSONResponse({"error": err.message}, status_code=err.status, headers=err.headers)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/metrics")
    async def prometheus(request: Request) -> Response:
        doors.metrics(request)
        try:
            await asyncio.wait_for(metrics.count_open_incidents(temporal()), timeout=5)
        except Exception as err:  # Temporal down or slow: the counters this replica holds still matter
            log.warning("open incidents not counted: %s", err)
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.post("/alerts/{source}", status_code=202, description=LIMITS_DESCRIBED)
    async def alerts(source: str, request: Request) -> JSONResponse:
        parse = PARSERS.get(source)
        if parse is None:
            raise HttpError(404, f"unknown alert source {source!r}; known: {', '.join(PARSERS)}")
        try:
            doors.alert(request, source)
            events = parse(parse_json(await read_body(request, settings.max_body_bytes)), datetime.now(UTC))
        except HttpError as err:
            metrics.alerts.labels(source, _OUTCOMES.get(err.status, "invalid")).inc()
            raise
        except AlertBodyError as err:
            metrics.alerts.labels(source, "invalid").inc()
            raise HttpError(422, str(err)) from err
        try:
            async with asyncio.timeout(budget_seconds):
                opened = await record(temporal(), settings, policy, await windows.mark(temporal(), policy, events))
        except Exception as err:
            if not is_retryable(err):
                raise
            metrics.alerts.labels(source, "unavailable").inc(len(events))
            log.warning("Temporal unavailable, %d %s alerts refused with 503: %s", len(events), source, err)
            raise HttpError(503, "Temporal is unavailable; retry later", {"Retry-After": RETRY_AFTER_SECONDS}) from err
        metrics.alerts.labels(source, "accepted").inc(len(events))
        metrics.incidents_opened.labels(source).inc(len(opened))
        metrics.dedup_hits.labels(source).inc(len(events) - len(opened))
        incidents = list(dict.fromkeys(incident_id_for(e.source, e.dedup_key) for e in events))
        return JSONResponse({"incidents": incidents, "alerts": len(events)}, status_code=202)

    app.include_router(oncall_http.router(settings, policy, temporal, doors))
    app.include_router(decisions_api.router(settings, policy, deciding))
    app.include_router(
        registers.router(settings, policy, deciding, lambda request: read_body(request, settings.max_body_bytes))
    )
    app.include_router(codec_endpoint.router(settings, lambda request: read_body(request, settings.max_body_bytes)))
    app.include_router(
        contact.router(
            settings, policy, deciding, temporal, lambda request: read_body(request, settings.max_body_bytes)
        )
    )
    for chat in (slack_endpoint, teams_endpoint):
        app.include_router(
            chat.router(
                settings, policy, deciding, metrics, lambda request: read_body(request, settings.max_body_bytes)
            )
        )
    return app


class Timing:
    """Request latency by route template, until the response is sent (a Slack background task after it
    does not count). Plain ASGI: FastAPI's @middleware("http") costs a task and a stream per request."""

    def __init__(self, app: ASGIApp, metrics: HttpMetrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def timed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                route = getattr(scope.get("route"), "path", "unmatched")  # the router put it in the scope
                self.metrics.latency.labels(route=route, method=scope["method"], status=str(status)).observe(
                    time.perf_counter() - started
                )

        await self.app(scope, receive, timed_send)


def _no_client() -> Client:
    raise RuntimeError("Failed client connect: the app's lifespan has not run")


async def record(client: Client, settings: Settings, policy: Policy, events: list[AlertEvent]) -> list[str]:
    """Signal every alert to its incident; the ids of incidents these alerts opened.

    Alerts go concurrently, so that a storm body of thousands fits in the budget; only the same alert
    (fingerprint) seen twice in one body keeps its order, so a firing and its resolution stay in sequence.
    """
    chains: dict[tuple[str, str], list[AlertEvent]] = {}
    for event in events:
        chains.setdefault((incident_id_for(event.source, event.dedup_key), event.fingerprint), []).append(event)
    gate = asyncio.Semaphore(CONCURRENT_SENDS)

    async def chain(incident_id: str, same_alert: list[AlertEvent]) -> str | None:
        opened = False
        for event in same_alert:
            async with gate:
                opened |= await send_alert(client, settings, policy, event)
        return incident_id if opened else None

    # Every send runs to its end (none left running after the answer); then the first failure, if any.
    results = await asyncio.gather(*(chain(key[0], group) for key, group in chains.items()), return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return list(dict.fromkeys(result for result in results if isinstance(result, str)))


def main() -> None:
    settings = Settings()
    observability.configure_logging(settings)
    try:
        app = create_app(settings)
    except (PolicyError, DoorsOpen) as err:
        print(f"incident-http: {err}", file=sys.stderr)
        raise SystemExit(2) from err
    if settings.http_runs_worker:
        refuse_undeliverable(settings, "incident-http")
    try:
        uvicorn.run(
            app, host=settings.http_host, port=settings.http_port, log_level=settings.log_level.lower(), log_config=None
        )  # keep observability's handlers: redaction, JSON lines
    finally:
        free_temporal()  # this process runs a worker too (HTTP_RUNS_WORKER)


if __name__ == "__main__":
    main()
