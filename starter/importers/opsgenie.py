"""OpsGenie's API export as a policy fragment: users with their contact methods and notification rules,
schedules (rotations, restrictions, overrides) and escalations.

The export is a directory of what OpsGenie's REST API v2 answers (README, "Moving in"):
`users.json` (GET /v2/users), `users/<username>.contacts.json` (GET /v2/users/{username}/contacts),
`users/<username>.rule-<id>.json` (GET /v2/users/{username}/notification-rules/{id}), `escalations.json`
(GET /v2/escalations), `schedules/<id>.json` (GET /v2/schedules/{id}, with its rotations) and
`schedules/<id>.overrides.json` (GET /v2/schedules/{id}/overrides).

A rotation becomes a layer: its type and length, its start date (whose local time and weekday are the
handoff's), end date, participants (users; `none` is a turn with nobody) and both kinds of time restriction.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from datetime import datetime, time
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from settings import describe_validation_error
from starter.importers.fragment import (
    Directory,
    Fragment,
    ImportRefused,
    e164,
    load,
    model,
    reachable,
    schedule_key,
)
from workflows.contracts.people import NotificationRules, NotificationStep
from workflows.contracts.policy import Escalation, Policy, Tier
from workflows.contracts.vocabulary import Channel
from workflows.oncall.rotation import Layer, Restriction, Rotation, Schedule, Weekday, known_zone, zone

CHANNELS = {"sms": Channel.SMS, "voice": Channel.VOICE, "email": Channel.EMAIL}
HIGH = {"P1", "P2"}  # the urgent severities, SEV1 and SEV2, page as P1 and P2
MINUTES = {"minutes": 1, "hours": 60, "days": 1440}


def import_opsgenie(export: Path, policy: Policy, escalation: str | None, now: datetime) -> Fragment:
    """The fragment for an export directory; `escalation` names the one to write (a policy has one ladder)."""
    fragment = Fragment()
    directory = Directory(policy, fragment)
    for user in _data(load(export / "users.json"), "users.json"):
        _user(export, user, directory)
    schedules: dict[str, str] = {}  # OpsGenie id and name -> policy key
    for path in sorted((export / "schedules").glob("*.json")):
        if "." in path.stem:
            continue  # <id>.overrides.json, and whatever else the export keeps beside a schedule
        body = load(path)
        data = body.get("data", body) if isinstance(body, dict) else None
        if not isinstance(data, dict):
            raise ImportRefused(f"{path}: expected an OpsGenie schedule")
        key = schedule_key(str(data.get("name") or path.stem), policy)
        if data.get("enabled") is False:
            fragment.drop(f"schedule {key}", "disabled in OpsGenie; imported all the same, name it where it pages")
        schedule = _schedule(path.name, data, data.get("rotations"), lambda u: directory.person(u, u))
        fragment.schedules[key] = schedule
        schedules.update({str(data.get("id", "")): key, str(data.get("name", "")): key})
        overrides = path.with_name(f"{path.stem}.overrides.json")
        if overrides.exists():
            _overrides(overrides, key, directory, now)
    escalations = (
        _data(load(export / "escalations.json"), "escalations.json") if (export / "escalations.json").exists() else []
    )
    for found in escalations:
        name = str(found.get("name", ""))
        if escalation is None or name != escalation:
            fragment.drop(
                f"escalation {name!r}", f"a policy has one ladder; write this one with --escalation {json.dumps(name)}"
            )
            continue
        fragment.escalation = _escalation(found, directory, schedules, policy)
    if escalation is not None and fragment.escalation is None:
        raise ImportRefused(f"no escalation {escalation!r} in escalations.json")
    return fragment


def schedule_from_opsgenie(text: str, policy: Policy, rotations_text: str = "") -> tuple[str, Schedule]:
    """One schedule (`import opsgenie-schedule`): its name as a policy key, and the schedule. Its users must be
    people of the policy already."""
    try:
        body = json.loads(text)
        rotations_body = json.loads(rotations_text) if rotations_text else None
    except json.JSONDecodeError as err:
        raise ImportRefused(f"not JSON: {err}") from err
    data = body.get("data", body) if isinstance(body, dict) else None
    if not isinstance(data, dict):
        raise ImportRefused('expected an OpsGenie schedule: {"data": {"name", "timezone", "rotations"}}')
    rotations = rotations_body.get("data") if isinstance(rotations_body, dict) else data.get("rotations")
    directory = Directory(policy, Fragment())

    def known(username: str) -> str:
        found = directory.find(username)
        if found is None:
            raise ValueError(f"{username} is no person of the policy (by email or pager_id); add them first")
        return found

    name = str(data.get("name") or "imported")
    return schedule_key(name, policy.model_copy(update={"schedules": {}})), _schedule("", data, rotations, known)


def _schedule(where: str, data: dict[str, Any], rotations: Any, person: Callable[[str], str]) -> Schedule:
    prefix = f"{where}: " if where else ""
    if not rotations or not isinstance(rotations, list):
        raise ImportRefused(f"{prefix}the schedule has no rotations: export it with them, or pass --rotations FILE")
    try:
        tz = known_zone(str(data.get("timezone") or "UTC"))
    except ValueError as err:
        raise ImportRefused(f"{prefix}timezone: {err}") from err
    layers = [_layer(f"{prefix}rotations[{i}]", r, tz, person) for i, r in enumerate(rotations)]
    try:
        return Schedule(timezone=tz, layers=layers)
    except ValidationError as err:
        raise ImportRefused(prefix + describe_validation_error(err)) from err


def _layer(where: str, rotation: Any, tz: str, person: Callable[[str], str]) -> Layer:
    if not isinstance(rotation, dict):
        raise ImportRefused(f"{where}: not an object")
    try:
        start = datetime.fromisoformat(str(rotation["startDate"])).astimezone(zone(tz))
        kind = Rotation(str(rotation.get("type", "")))
        end = rotation.get("endDate")
        return Layer(
            name=str(rotation.get("name", "")),
            members=[_member(f"{where}.participants[{i}]", p, person) for i, p in enumerate(rotation["participants"])],
            rotation=kind,
            length=int(rotation.get("length", 1)),
            handoff=start.time().replace(tzinfo=None),
            handoff_day=Weekday(start.strftime("%A").lower()) if kind is Rotation.WEEKLY else None,
            starts=start.date(),
            ends=datetime.fromisoformat(str(end)) if end else None,
            restrictions=_restrictions(where, rotation.get("timeRestriction")),
        )
    except ImportRefused:
        raise
    except KeyError as err:
        raise ImportRefused(f"{where}: missing {err.args[0]}") from err
    except ValidationError as err:
        raise ImportRefused(f"{where}: {describe_validation_error(err)}") from err
    except ValueError as err:
        raise ImportRefused(f"{where}: {err}") from err


def _member(where: str, participant: Any, person: Callable[[str], str]) -> str:
    kind = participant.get("type") if isinstance(participant, dict) else None
    if kind == "none":
        return ""  # a turn with nobody on call in this layer
    if kind != "user":
        name = participant.get("name", "?") if isinstance(participant, dict) else participant
        raise ImportRefused(f"{where}: a {kind or 'participant'} ({name}) cannot be imported; list its users instead")
    try:
        return person(str(participant.get("username", "")))
    except ValueError as err:
        raise ImportRefused(f"{where}: {err}") from err


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


def _data(body: Any, where: str) -> list[dict[str, Any]]:
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list):
        raise ImportRefused(f'{where}: expected OpsGenie\'s list answer, {{"data": [...]}}')
    return [d for d in data if isinstance(d, dict)]


# --- users: contact methods and notification rules -----------------------------------------------


def _user(export: Path, user: dict[str, Any], directory: Directory) -> None:
    username = str(user.get("username", ""))
    phone = ""
    contacts = export / "users" / f"{username}.contacts.json"
    for contact in _data(load(contacts), contacts.name) if contacts.exists() else []:
        method, to = contact.get("method"), str(contact.get("to", ""))
        if method in ("sms", "voice") and not phone:
            phone = e164(to, username, directory.fragment)
        elif method in ("sms", "voice") and e164(to, username, directory.fragment) != phone:
            directory.fragment.drop(f"{username}'s {method} number {to}", "a person has one phone number here")
        elif method == "mobile":
            directory.fragment.drop(f"{username}'s OpsGenie app", "push goes through ntfy here: add an ntfy_topic")
    person_id = directory.person(username, str(user.get("fullName", "")), phone=phone)
    rules: dict[str, list[NotificationStep]] = {"high": [], "low": []}
    taken: set[str] = set()
    files = sorted((export / "users").glob(f"{username}.rule-*.json"))
    found = [r for path in files if isinstance(r := load(path).get("data"), dict)]
    for rule in sorted(found, key=lambda r: int(r.get("order", 0))):
        what = f"{username}'s notification rule {rule.get('name', '')!r}"
        if rule.get("actionType") != "create-alert":
            directory.fragment.drop(what, f"only new-alert rules page here, not {rule.get('actionType')!r}")
            continue
        if not rule.get("enabled", True):
            directory.fragment.drop(what, "disabled in OpsGenie")
            continue
        urgencies = _urgencies(rule.get("criteria") or {})
        if urgencies is None:
            directory.fragment.drop(what, "its conditions are not on priority alone")
            continue
        for name in ("timeRestriction", "repeat"):
            if rule.get(name) and (name != "repeat" or rule[name].get("enabled")):
                directory.fragment.drop(f"{what}.{name}", "no equivalent here (quiet hours are per person)")
        for urgency in urgencies - taken:
            rules[urgency] = _steps(what, rule.get("steps") or [], person_id, directory)
        taken |= urgencies
    if rules["high"] or rules["low"]:
        directory.set_rules(person_id, model(f"{username}'s rules", NotificationRules, **rules))


def _urgencies(criteria: dict[str, Any]) -> set[str] | None:
    """Which of high and low a rule's criteria select; None: conditions that are not on priority alone."""
    if criteria.get("type", "match-all") == "match-all":
        return {"high", "low"}
    conditions = criteria.get("conditions") or []
    if criteria.get("type") != "match-any-condition" and len(conditions) > 1:
        return None
    found: set[str] = set()
    for condition in conditions:
        if condition.get("field") != "priority" or condition.get("not"):
            return None
        if condition.get("operation") != "equals":
            return None
        found.add("high" if condition.get("expectedValue") in HIGH else "low")
    return found or None


def _steps(what: str, steps: list[Any], person_id: str, directory: Directory) -> list[NotificationStep]:
    kept: list[NotificationStep] = []
    for i, step in enumerate(steps):
        contact = step.get("contact") or {}
        method = contact.get("method")
        after = step.get("sendAfter") or {}
        minutes = int(after.get("timeAmount", 0)) * MINUTES.get(str(after.get("timeUnit", "minutes")), 1)
        where = f"{what} step {i + 1} ({method} after {minutes} min)"
        if not step.get("enabled", True):
            directory.fragment.drop(where, "disabled in OpsGenie")
        elif method not in CHANNELS:
            directory.fragment.drop(where, "push goes through ntfy here: add an ntfy_topic, then a push step")
        else:
            found = NotificationStep(channel=CHANNELS[method], after_minutes=minutes)
            if reachable(directory, person_id, found, where):
                kept.append(found)
    return kept


# --- overrides and escalations -------------------------------------------------------------------


def _overrides(path: Path, key: str, directory: Directory, now: datetime) -> None:
    for override in _data(load(path), path.name):
        user = override.get("user") or {}
        what = f"override {override.get('alias', '')!r} of {key}"
        if user.get("type") != "user":
            directory.fragment.drop(what, f"a {user.get('type')} cannot be on call here; name one of its users")
            continue
        if override.get("rotations"):
            directory.fragment.drop(f"{what}.rotations", "an override here takes the whole schedule")
        who = directory.person(str(user.get("username", "")), "")
        start = datetime.fromisoformat(str(override["startDate"]))
        directory.fragment.override(key, who, start, datetime.fromisoformat(str(override["endDate"])), now)


def _escalation(found: dict[str, Any], directory: Directory, schedules: dict[str, str], policy: Policy) -> Escalation:
    name = str(found.get("name", ""))
    by_delay: dict[int, list[str]] = {}
    for i, rule in enumerate(found.get("rules") or []):
        what = f"escalation {name!r} rule {i + 1}"
        delay = rule.get("delay") or {}
        minutes = int(delay.get("timeAmount", 0)) * MINUTES.get(str(delay.get("timeUnit", "minutes")), 1)
        if rule.get("condition") == "if-not-closed":
            directory.fragment.drop(f"{what}.condition", "a ladder here stops at the first acknowledgement")
        target = _recipient(what, rule, directory, schedules, policy)
        if target:
            by_delay.setdefault(minutes, []).append(target)
    if not by_delay:
        raise ImportRefused(f"escalation {name!r} names nobody this policy can page")
    delays = sorted(by_delay)
    if delays[0] > 0:
        directory.fragment.drop(
            f"escalation {name!r}", f"its first rule waits {delays[0]} min; here tier 1 is paged at once"
        )
    repeat = found.get("repeat") or {}
    last_wait = int(repeat.get("waitInterval") or 0) or 5
    waits = [b - a for a, b in itertools.pairwise(delays)] + [last_wait]
    tiers = [
        model(f"escalation {name!r}", Tier, notify=by_delay[d], wait_minutes=w)
        for d, w in zip(delays, waits, strict=True)
    ]
    return model(f"escalation {name!r}", Escalation, tiers=tiers, repeat=int(repeat.get("count") or 0))


def _recipient(what: str, rule: dict[str, Any], directory: Directory, schedules: dict[str, str], policy: Policy) -> str:
    recipient = rule.get("recipient") or {}
    kind = recipient.get("type")
    if rule.get("notifyType", "default") != "default":
        directory.fragment.drop(what, f"notifies {rule['notifyType']!r}: a tier here pages whoever is on call now")
        return ""
    if kind == "user":
        return directory.person(str(recipient.get("username", "")), "")
    if kind == "schedule":
        key = schedules.get(str(recipient.get("id"))) or schedules.get(str(recipient.get("name")))
        if key is None and str(recipient.get("name")) in policy.schedules:
            key = str(recipient.get("name"))
        if key is None:
            directory.fragment.drop(what, f"schedule {recipient.get('name')!r} is not in the export")
            return ""
        return f"schedule:{key}"
    directory.fragment.drop(what, f"a {kind} cannot be paged here; name its schedule or its people")
    return ""
