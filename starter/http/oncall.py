"""The HTTP service's on-call routes: `POST /heartbeats/<name>` and `GET /schedules/<name>.ics`.

A beat is token-protected like the alert endpoints and answers 202 once Temporal has it; an undeclared
heartbeat is a 404 naming the declared ones. The feed takes the token as a bearer header or, for
calendar apps that cannot send headers, as `?token=`.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from temporalio.client import Client

from client import oncall as oncall_client
from settings import Settings
from starter.http.ical import on_call_feed
from workflows.contracts.policy import Policy

log = logging.getLogger("webhook")


def router(
    settings: Settings, policy: Policy, temporal: Callable[[], Client], authorize: Callable[[Request], None]
) -> APIRouter:
    routes = APIRouter()

    @routes.post("/heartbeats/{name}", status_code=202)
    async def heartbeat(name: str, request: Request) -> JSONResponse:
        authorize(request)
        declared = policy.heartbeats.get(name)
        if declared is None:
            known = ", ".join(sorted(policy.heartbeats)) or "none (declare them under [heartbeats] in the policy)"
            return JSONResponse({"error": f"unknown heartbeat {name!r}; declared: {known}"}, status_code=404)
        try:
            await oncall_client.beat(temporal(), settings.incident_task_queue, name, declared)
        except Exception as err:
            log.warning("heartbeat %s not recorded: %s", name, err)
            return _unavailable()
        return JSONResponse({"heartbeat": name, "due_within_minutes": declared.deadline().total_seconds() / 60}, 202)

    @routes.get("/schedules/{name}.ics")
    async def calendar(name: str, request: Request) -> Response:
        token = request.query_params.get("token")
        if token is None or settings.webhook_token is None:
            authorize(request)
        elif not hmac.compare_digest(token.encode(), settings.webhook_token.get_secret_value().encode()):
            return JSONResponse({"error": "wrong token"}, status_code=401)
        if name not in policy.schedules:
            known = ", ".join(sorted(policy.schedules)) or "none"
            return JSONResponse({"error": f"unknown schedule {name!r}; known: {known}"}, status_code=404)
        try:
            overrides = await oncall_client.overrides(temporal(), name)
        except Exception as err:
            log.warning("overrides of %s unreadable: %s", name, err)
            return _unavailable()
        body = on_call_feed(name, policy, overrides, datetime.now(UTC))
        return Response(body, media_type="text/calendar; charset=utf-8")

    return routes


def _unavailable() -> JSONResponse:
    return JSONResponse(
        {"error": "Temporal is unavailable; retry later"}, status_code=503, headers={"Retry-After": "5"}
    )
