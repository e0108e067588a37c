"""The HTTP service's on-call routes: `POST /heartbeats/<name>` and `GET /schedules/<name>.ics`, a schedule's
shifts as an iCalendar file built with the maintained `icalendar` package, so that people see their shifts,
overrides included, in their calendars.

A beat needs its heartbeat's token and answers 202 once Temporal has it; an undeclared heartbeat is a 404
naming the declared ones. The feed needs the read-only calendar token, as a bearer header or, for calendar
apps that cannot send headers, as `?token=` (starter/http/doors.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from icalendar import Calendar, Event
from temporalio.client import Client

from client import oncall as oncall_client
from settings import Settings
from starter.http.doors import Doors
from workflows.contracts.policy import Policy
from workflows.oncall.rotation import Override, shifts

log = logging.getLogger("webhook")
PAST, AHEAD = timedelta(weeks=1), timedelta(weeks=12)  # what the on-call feed covers


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


def on_call_feed(name: str, policy: Policy, overrides: list[Override], now: datetime) -> bytes:
    schedule = policy.schedules[name]
    calendar = Calendar()
    calendar.add("prodid", "-//incident-orchestrator//on-call//EN")
    calendar.add("version", "2.0")
    calendar.add("x-wr-calname", f"On call: {name}")
    calendar.add("x-wr-timezone", schedule.timezone)
    start = now - PAST
    for shift in shifts(schedule, overrides, start, now + AHEAD):
        if not shift.who or shift.start == start:
            continue  # nobody's, or cut off by the feed's window: its true start is further back
        person = policy.people[shift.who].name if shift.who in policy.people else shift.who
        event = Event()
        # One shift, one uid: a refreshed feed updates the event rather than adding another.
        event.add("uid", f"{name}-{shift.who}-{shift.start:%Y%m%dT%H%M%SZ}@incident-orchestrator")
        event.add("summary", f"On call ({name}): {person}")
        event.add("dtstart", shift.start)
        event.add("dtend", shift.end)
        event.add("dtstamp", now)
        event.add("description", f"{person} is on call for schedule {name}.")
        calendar.add_component(event)
    return calendar.to_ical()
