"""Grafana OnCall's API export as a policy fragment: users with their personal notification rules, schedules
(rotations and overrides) and an escalation chain.

The export is a directory of what the public API v1 answers (README, "Moving in"): `users.json`
(GET /api/v1/users/), `personal_notification_rules.json` (GET /api/v1/personal_notification_rules/),
`schedules.json` (GET /api/v1/schedules/), `on_call_shifts.json` (GET /api/v1/on_call_shifts/),
`escalation_chains.json` and `escalation_policies.json` (GET /api/v1/escalation_chains/, .../escalation_policies/).
The API gives no phone numbers: SMS and call steps are named until the person has a `phone`.

A rotation (`rolling_users`, or a `recurrent_event`) becomes a layer, the higher level later (it wins). A shift
as long as its recurrence covers all of it; a shorter one, or one on some weekdays only, becomes the layer's
restrictions. Overrides and single events become `incidentctl override add` commands.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from starter.importers.fragment import Directory, Fragment, ImportRefused, load, model, reachable, schedule_key
from workflows.contracts.people import NotificationRules, NotificationStep
from workflows.contracts.policy import Escalation, Policy, Tier
from workflows.contracts.vocabulary import Channel
from workflows.oncall.rotation import Layer, Restriction, Rotation, Schedule, Weekday, known_zone, zone

CHANNELS = {
    "notify_by_sms": Channel.SMS,
    "notify_by_phone_call": Channel.VOICE,
    "notify_by_email": Channel.EMAIL,
    "notify_by_slack": Channel.SLACK,
    "notify_by_telegram": Channel.TELEGRAM,
    "notify_by_mobile_app": Channel.PUSH,
    "notify_by_mobile_app_critical": Channel.PUSH,
}
DAYS = {"MO": Weekday.MONDAY, "TU": Weekday.TUESDAY, "WE": Weekday.WEDNESDAY, "TH": Weekday.THURSDAY}
DAYS |= {"FR": Weekday.FRIDAY, "SA": Weekday.SATURDAY, "SU": Weekday.SUNDAY}
PERIODS = {"hourly": timedelta(hours=1), "daily": timedelta(days=1), "weekly": timedelta(weeks=1)}
REPEATS = 5  # "repeat escalation from the beginning", at most five times


def import_grafana_oncall(export: Path, policy: Policy, escalation: str | None, now: datetime) -> Fragment:
    """The fragment for an export directory; `escalation` names the escalation chain to write."""
    fragment = Fragment()
    directory = Directory(policy, fragment)
    users: dict[str, str] = {}
    for user in _results(export / "users.json"):
        slack = next((s.get("user_id", "") for s in user.get("slack") or [] if isinstance(s, dict)), "")
        users[str(user["id"])] = directory.person(
            str(user.get("email", "")), str(user.get("username", "")), slack_user_id=slack
        )
    found_rules = export / "personal_notification_rules.json"
    rules = _results(found_rules) if found_rules.exists() else []
    for user_id, person_id in users.items():
        _rules(
            person_id,
            sorted((r for r in rules if r.get("user_id") == user_id), key=lambda r: int(r.get("position", 0))),
            directory,
        )
    shifts = {str(s["id"]): s for s in _results(export / "on_call_shifts.json")}
    schedules: dict[str, str] = {}
    for found in _results(export / "schedules.json"):
        key = schedule_key(str(found.get("name") or found["id"]), policy)
        for missing in (i for i in found.get("shifts") or [] if i not in shifts):
            fragment.drop(f"schedule {key} shift {missing}", "not in on_call_shifts.json")
        mine = [shifts[i] for i in found.get("shifts") or [] if i in shifts]
        schedule = _schedule(key, found, mine, users, fragment, now)
        if schedule is not None:
            fragment.schedules[key] = schedule
            schedules[str(found["id"])] = key
    chains = _results(export / "escalation_chains.json") if (export / "escalation_chains.json").exists() else []
    steps = _results(export / "escalation_policies.json") if chains else []
    for chain in chains:
        name = str(chain.get("name", ""))
        if name != escalation:
            fragment.drop(
                f"escalation chain {name!r}", f'a policy has one ladder; write this one with --escalation "{name}"'
            )
            continue
        mine = sorted(
            (s for s in steps if s.get("escalation_chain_id") == chain.get("id")),
            key=lambda s: int(s.get("position", 0)),
        )
        fragment.escalation = _escalation(name, mine, users, schedules, fragment)
    if escalation is not None and fragment.escalation is None:
        raise ImportRefused(f"no escalation chain {escalation!r} in escalation_chains.json")
    return fragment


def _results(path: Path) -> list[dict[str, Any]]:
    body = load(path)
    found = body.get("results") if isinstance(body, dict) else None
    if not isinstance(found, list):
        raise ImportRefused(f'{path.name}: expected Grafana OnCall\'s list answer, {{"results": [...]}}')
    return [f for f in found if isinstance(f, dict)]


def _rules(person_id: str, rules: list[dict[str, Any]], directory: Directory) -> None:
    steps: dict[str, list[NotificationStep]] = {"high": [], "low": []}
    delay = {"high": 0, "low": 0}
    for rule in rules:
        urgency, kind = "high" if rule.get("important") else "low", str(rule.get("type", ""))
        if kind == "wait":
            delay[urgency] += int(rule.get("duration", 0)) // 60
            continue
        label = "important" if urgency == "high" else "default"
        what = f"{person_id}'s {label} notification rule {kind} after {delay[urgency]} min"
        if kind not in CHANNELS:
            directory.fragment.drop(what, "no equivalent contact method here")
            continue
        step = NotificationStep(channel=CHANNELS[kind], after_minutes=delay[urgency])
        if reachable(directory, person_id, step, what):
            steps[urgency].append(step)
    if steps["high"] or steps["low"]:
        directory.set_rules(person_id, model(f"{person_id}'s rules", NotificationRules, **steps))


# --- schedules -----------------------------------------------------------------------------------


def _schedule(
    key: str,
    found: dict[str, Any],
    shifts: list[dict[str, Any]],
    users: dict[str, str],
    fragment: Fragment,
    now: datetime,
) -> Schedule | None:
    try:
        tz = known_zone(str(found.get("time_zone") or "UTC"))
    except ValueError as err:
        raise ImportRefused(f"schedule {key}: time_zone: {err}") from err
    if found.get("type") == "ical":
        fragment.drop(f"schedule {key}", "an iCal schedule has no rotations to read; export its calendar's shifts")
        return None
    layers: list[tuple[int, Layer]] = []
    for shift in shifts:
        what = f"schedule {key} shift {shift.get('name', shift.get('id'))!r}"
        if shift.get("time_zone") not in (None, "", tz):
            fragment.drop(what, f"its time zone {shift['time_zone']} is not the schedule's, {tz}")
            continue
        if shift.get("type") in ("override", "single_event"):
            start = datetime.fromisoformat(str(shift["start"]))  # local wall time, as the shift's length
            end = start + timedelta(seconds=int(shift["duration"]))
            for user in shift.get("users") or []:
                if user in users:
                    fragment.override(
                        key, users[user], start.replace(tzinfo=zone(tz)), end.replace(tzinfo=zone(tz)), now
                    )
            continue
        layer = _layer(what, shift, users, fragment)
        if layer is not None:
            layers.append((int(shift.get("level") or 0), layer))
    if not layers:
        fragment.drop(f"schedule {key}", "none of its shifts could become a layer")
        return None
    return model(
        f"schedule {key}", Schedule, timezone=tz, layers=[layer for _, layer in sorted(layers, key=lambda x: x[0])]
    )


def _layer(what: str, shift: dict[str, Any], users: dict[str, str], fragment: Fragment) -> Layer | None:
    frequency = str(shift.get("frequency") or "")
    if shift.get("by_month") or shift.get("by_monthday"):
        fragment.drop(what, "a shift on some months or days of the month has no equivalent here")
        return None
    if frequency not in PERIODS:
        fragment.drop(what, f"a {frequency or 'one-off'} recurrence has no equivalent here (hourly, daily, weekly)")
        return None
    groups = shift.get("rolling_users") or [[u] for u in (shift.get("users") or [])[:1]]
    members = []
    for group in groups:
        for extra in group[1:]:
            fragment.drop(
                f"{what}: {users.get(extra, extra)}", f"on call with {users.get(group[0])}; one person per turn here"
            )
        if group and group[0] in users:
            members.append(users[group[0]])
        elif group:
            fragment.drop(f"{what}: {group[0]}", "not in users.json; the turn is left out")
    first = int(shift.get("start_rotation_from_user_index") or 0) % max(len(members), 1)
    members = members[first:] + members[:first]
    if not members:
        fragment.drop(what, "it names nobody in users.json")
        return None
    start = datetime.fromisoformat(str(shift.get("rotation_start") or shift["start"]))
    interval = int(shift.get("interval") or 1)
    period, length = PERIODS[frequency] * interval, timedelta(seconds=int(shift.get("duration", 0)))
    days = [DAYS[d] for d in shift.get("by_day") or []]
    if days and frequency == "daily" and len(members) > 1:
        fragment.drop(what, "a daily rotation on some weekdays only turns on those days alone; rotate weekly here")
        return None
    restrictions: list[Restriction] = []
    if days or length < period:
        if frequency == "hourly" or (length >= timedelta(days=1) and (days or frequency == "daily")):
            fragment.drop(what, "a shift shorter than its recurrence is a window of the day or week here")
            return None
        end = (start + length).time()
        if days:
            restrictions = [Restriction(start=start.time(), end=end, days=days)]
        elif frequency == "daily":
            restrictions = [Restriction(start=start.time(), end=end)]
        else:
            first_day = Weekday(start.strftime("%A").lower())
            last_day = Weekday((start + length).strftime("%A").lower())
            restrictions = [Restriction(start_day=first_day, start=start.time(), end_day=last_day, end=end)]
    until = shift.get("until")
    kind = Rotation(frequency)
    return model(
        what,
        Layer,
        name=str(shift.get("name", "")),
        members=members,
        rotation=kind,
        length=interval,
        handoff=start.time(),
        handoff_day=Weekday(start.strftime("%A").lower()) if kind is Rotation.WEEKLY else None,
        starts=start.date(),
        ends=datetime.fromisoformat(str(until)) if until else None,
        restrictions=restrictions,
    )


# --- escalation chains ---------------------------------------------------------------------------


def _escalation(
    name: str, steps: list[dict[str, Any]], users: dict[str, str], schedules: dict[str, str], fragment: Fragment
) -> Escalation:
    tiers: list[tuple[list[str], int]] = []
    repeat = 0
    waiting = True  # a notify step after a wait starts a tier; one after a notify joins it
    for step in steps:
        kind, what = str(step.get("type", "")), f"escalation chain {name!r} step {int(step.get('position', 0)) + 1}"
        if kind == "wait":
            if tiers:
                tiers[-1] = (tiers[-1][0], tiers[-1][1] + int(step.get("duration", 0)) // 60)
            else:
                fragment.drop(f"{what} (wait)", "here the first tier is paged at once")
            waiting = True
            continue
        if kind == "repeat_escalation":
            repeat = REPEATS
            continue
        if kind == "notify_persons":
            targets = [users[p] for p in step.get("persons_to_notify") or [] if p in users]
        elif kind == "notify_on_call_from_schedule" and str(step.get("notify_on_call_from_schedule")) in schedules:
            targets = [f"schedule:{schedules[str(step['notify_on_call_from_schedule'])]}"]
        else:
            fragment.drop(f"{what} ({kind})", "no equivalent here: a tier pages people and schedules")
            continue
        if step.get("important"):
            fragment.drop(f"{what}.important", "urgency here comes from the incident's severity")
        if waiting or not tiers:
            tiers.append((targets, 0))
        else:
            tiers[-1] = (tiers[-1][0] + targets, tiers[-1][1])
        waiting = False
    if not tiers:
        raise ImportRefused(f"escalation chain {name!r} pages nobody this policy can page")
    if tiers[-1][1] == 0:
        fragment.drop(f"escalation chain {name!r}", "its last step has no wait after it; here it waits 5 min")
    built = [model(name, Tier, notify=list(dict.fromkeys(t)), wait_minutes=w or 5) for t, w in tiers]
    return model(f"escalation chain {name!r}", Escalation, tiers=built, repeat=repeat)
