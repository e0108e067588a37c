"""The HTTP service's on-call routes: `POST /heartbeats/<name>` and `GET /schedules/<name>.ics`.

A beat needs its heartbeat's token and answers 202 once Temporal has it; an undeclared heartbeat is a 404
naming the declared ones. The feed needs the read-only calendar token, as a bearer header or, for calendar
apps that cannot send headers, as `?token=` (starter/http/doors.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from temporalio.client import Client

from client import oncall as oncall_client
from settings import Settings
from starter.http.doors import Doors
from starter.http.ical import on_call_feed
from workflows.contracts.policy import Policy

log = logging.getLogger("webhook")


def router(settings: Settings, policy: Policy, temporal: Callable[[], Client], doors: Doors) -> APIRouter:
    routes = APIRouter()

    @routes.post("/heartbeats/{name}", status_code=202)
    async def heartbeat(name: str, request: Request) -> JSONResponse:
        doors.heartbeat(request, name)
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
        doors.calendar(request)
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
