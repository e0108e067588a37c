"""`incidentctl import opsgenie-schedule`: OpsGenie's Schedule API JSON into the policy's schedule.

Reads what `GET /v2/schedules/{id}?identifierType=id` answers (`{"data": {..., "timezone", "rotations"}}`),
or a schedule whose rotations came from `GET /v2/schedules/{id}/rotations` (`{"data": [...]}`). Each
rotation becomes a layer, in the order given: type hourly / daily / weekly and length, startDate (the
first handoff, read in the schedule's time zone: its local time and weekday are the handoff's), endDate,
participants (users by username, matched to the policy's people by e-mail or pager id; `none` is a turn
with nobody), and timeRestriction (`time-of-day`, or `weekday-and-time-of-day`). Teams and escalations
as participants have no equivalent here: they are refused by name.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, time
from typing import Any

from pydantic import ValidationError

from settings import describe_validation_error
from workflows.contracts.policy import Policy
from workflows.oncall.rotation import Layer, Restriction, Rotation, Schedule, Weekday, known_zone, zone


class ImportRefused(ValueError):
    """The file cannot become a schedule; the message names what to fix."""


def schedule_from_opsgenie(text: str, policy: Policy, rotations_text: str = "") -> tuple[str, Schedule]:
    """The schedule's name (as a policy key) and the schedule."""
    try:
        body = json.loads(text)
        rotations_body = json.loads(rotations_text) if rotations_text else None
    except json.JSONDecodeError as err:
        raise ImportRefused(f"not JSON: {err}") from err
    data = body.get("data", body) if isinstance(body, dict) else None
    if not isinstance(data, dict):
        raise ImportRefused('expected an OpsGenie schedule: {"data": {"name", "timezone", "rotations"}}')
    rotations = rotations_body.get("data") if isinstance(rotations_body, dict) else data.get("rotations")
    if not rotations or not isinstance(rotations, list):
        raise ImportRefused("the schedule has no rotations: export it with them, or pass --rotations FILE")
    try:
        tz = known_zone(str(data.get("timezone") or "UTC"))
    except ValueError as err:
        raise ImportRefused(f"timezone: {err}") from err
    people = _people_by_username(policy)
    layers = [_layer(i, r, tz, people) for i, r in enumerate(rotations)]
    try:
        schedule = Schedule(timezone=tz, layers=layers)
    except ValidationError as err:
        raise ImportRefused(describe_validation_error(err)) from err
    return _key(str(data.get("name") or "imported")), schedule


def _people_by_username(policy: Policy) -> dict[str, str]:
    found: dict[str, str] = {}
    for person_id, person in policy.people.items():
        for contact in (person.email, person.pager_id):
            if contact:
                found.setdefault(contact.lower(), person_id)
    return found


def _layer(index: int, rotation: Any, tz: str, people: dict[str, str]) -> Layer:
    where = f"rotations[{index}]"
    if not isinstance(rotation, dict):
        raise ImportRefused(f"{where}: not an object")
    try:
        start = datetime.fromisoformat(str(rotation["startDate"])).astimezone(zone(tz))
        kind = Rotation(str(rotation.get("type", "")))
        end = rotation.get("endDate")
        return Layer(
            name=str(rotation.get("name", "")),
            members=[_member(f"{where}.participants[{i}]", p, people) for i, p in enumerate(rotation["participants"])],
            rotation=kind,
            length=int(rotation.get("length", 1)),
            handoff=start.time().replace(tzinfo=None),
            handoff_day=Weekday(start.strftime("%A").lower()) if kind is Rotation.WEEKLY else None,
            starts=start.date(),
            ends=datetime.fromisoformat(str(end)) if end else None,
            restrictions=_restrictions(where, rotation.get("timeRestriction")),
        )
    except KeyError as err:
        raise ImportRefused(f"{where}: missing {err.args[0]}") from err
    except ValidationError as err:
        raise ImportRefused(f"{where}: {describe_validation_error(err)}") from err
    except ValueError as err:
        raise ImportRefused(f"{where}: {err}") from err


def _member(where: str, participant: Any, people: dict[str, str]) -> str:
    kind = participant.get("type") if isinstance(participant, dict) else None
    if kind == "none":
        return ""  # a turn with nobody on call in this layer
    if kind != "user":
        name = participant.get("name", "?") if isinstance(participant, dict) else participant
        raise ImportRefused(f"{where}: a {kind or 'participant'} ({name}) cannot be imported; list its users instead")
    username = str(participant.get("username", ""))
    if username.lower() not in people:
        raise ImportRefused(f"{where}: {username} is no person of the policy (by email or pager_id); add them first")
    return people[username.lower()]


def _restrictions(where: str, restriction: Any) -> list[Restriction]:
    if not restriction:
        return []
    kind = restriction.get("type")
    if kind == "time-of-day":
        r = restriction["restriction"]
        return [Restriction(start=_time(r["startHour"], r["startMin"]), end=_time(r["endHour"], r["endMin"]))]
    if kind == "weekday-and-time-of-day":
        return [
            Restriction(
                start_day=r["startDay"],
                start=_time(r["startHour"], r["startMin"]),
                end_day=r["endDay"],
                end=_time(r["endHour"], r["endMin"]),
            )
            for r in restriction["restrictions"]
        ]
    raise ImportRefused(f"{where}.timeRestriction.type: {kind!r} is neither time-of-day nor weekday-and-time-of-day")


def _time(hour: Any, minute: Any) -> time:
    return time(int(hour) % 24, int(minute))


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9_-]+", "-", name.lower()).strip("-") or "imported"


def as_toml(name: str, schedule: Schedule) -> str:
    """The schedule as the policy's TOML, ready to append to the policy file."""
    lines = [f"[schedules.{name}]", f"timezone = {json.dumps(schedule.timezone)}"]
    for layer in schedule.layers:
        lines += ["", f"[[schedules.{name}.layers]]"]
        if layer.name:
            lines.append(f"name = {json.dumps(layer.name)}")
        lines += [
            f"members = {json.dumps(layer.members)}",
            f'rotation = "{layer.rotation.value}"',
            f"length = {layer.length}",
            f'handoff = "{layer.handoff:%H:%M}"',
        ]
        if layer.handoff_day:
            lines.append(f'handoff_day = "{layer.handoff_day.value}"')
        lines.append(f"starts = {layer.starts.isoformat()}")
        if layer.ends:
            lines.append(f"ends = {layer.ends.isoformat()}")
        if layer.restrictions:
            lines.append("restrictions = [")
            lines += [f"  {{ {_inline(r)} }}," for r in layer.restrictions]
            lines.append("]")
    return "\n".join(lines) + "\n"


def _inline(r: Restriction) -> str:
    if r.start_day and r.end_day:
        return (
            f'start_day = "{r.start_day.value}", start = "{r.start:%H:%M}", '
            f'end_day = "{r.end_day.value}", end = "{r.end:%H:%M}"'
        )
    return f'start = "{r.start:%H:%M}", end = "{r.end:%H:%M}"'
