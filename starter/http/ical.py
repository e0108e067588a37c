"""The on-call feed: a schedule's shifts as an iCalendar file (`GET /schedules/<name>.ics`), built with the
maintained `icalendar` package, so that people see their shifts, overrides included, in their calendars."""

from __future__ import annotations

from datetime import datetime, timedelta

from icalendar import Calendar, Event

from workflows.contracts.policy import Policy
from workflows.oncall.rotation import Override, shifts

PAST, AHEAD = timedelta(weeks=1), timedelta(weeks=12)


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
