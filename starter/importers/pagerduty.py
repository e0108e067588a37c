"""PagerDuty's REST API export as a policy fragment: users with their contact methods and notification rules
(urgency high or low, start delay), schedules (layers, restrictions, overrides) and escalation policies.

The export is a directory of what the REST API v2 answers (README, "Moving in"): `users.json`
(GET /users?include[]=contact_methods&include[]=notification_rules), `escalation_policies.json`
(GET /escalation_policies) and `schedules/<id>.json` (GET /schedules/{id}?since=...&until=..., whose
overrides sub-schedule carries the overrides of that window).

A layer becomes a layer: its turn length (hours, days or weeks), its rotation's virtual start (the first
member's first turn; its local time and weekday are the handoff's), its end, its users and restrictions.
The API lists the top layer first; here the last layer wins, so the order is turned round.
"""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any

from starter.importers.fragment import Directory, Fragment, ImportRefused, e164, load, model, reachable, schedule_key
from workflows.contracts.people import NotificationRules, NotificationStep
from workflows.contracts.policy import Escalation, Policy, Tier
from workflows.contracts.vocabulary import Channel
from workflows.oncall.rotation import Layer, Restriction, Rotation, Schedule, Weekday, known_zone, zone

CHANNELS = {
    "phone_contact_method": Channel.VOICE,
    "sms_contact_method": Channel.SMS,
    "email_contact_method": Channel.EMAIL,
}
TURNS = ((7 * 86400, Rotation.WEEKLY), (86400, Rotation.DAILY), (3600, Rotation.HOURLY))
WEEKDAYS = list(Weekday)  # PagerDuty's start_day_of_week is ISO 8601's: Monday is 1


def import_pagerduty(export: Path, policy: Policy, escalation: str | None, now: datetime) -> Fragment:
    """The fragment for an export directory; `escalation` names the escalation policy to write."""
    fragment = Fragment()
    directory = Directory(policy, fragment)
    users = {str(u.get("id")): _user(u, directory) for u in _list(load(export / "users.json"), "users", "users.json")}
    schedules: dict[str, str] = {}
    for path in sorted((export / "schedules").glob("*.json")):
        body = load(path)
        data = body.get("schedule") if isinstance(body, dict) else None
        if not isinstance(data, dict):
            raise ImportRefused(f'{path}: expected PagerDuty\'s schedule, {{"schedule": {{...}}}}')
        key = schedule_key(str(data.get("name") or path.stem), policy)
        fragment.schedules[key] = _schedule(path.name, data, users, fragment, now)
        schedules[str(data.get("id"))] = key
        overrides = (data.get("overrides_subschedule") or {}).get("rendered_schedule_entries") or []
        for entry in overrides:
            who = users.get(str((entry.get("user") or {}).get("id")))
            if who is None:
                fragment.drop(f"override of {key} from {entry.get('start')}", "its user is not in users.json")
                continue
            start, end = datetime.fromisoformat(entry["start"]), datetime.fromisoformat(entry["end"])
            fragment.override(key, who, start, end, now)
    path = export / "escalation_policies.json"
    for found in _list(load(path), "escalation_policies", path.name) if path.exists() else []:
        name = str(found.get("name", ""))
        if name != escalation:
            fragment.drop(
                f"escalation policy {name!r}", f'a policy has one ladder; write this one with --escalation "{name}"'
            )
            continue
        fragment.escalation = _escalation(found, users, schedules, fragment)
    if escalation is not None and fragment.escalation is None:
        raise ImportRefused(f"no escalation policy {escalation!r} in escalation_policies.json")
    return fragment


def _list(body: Any, key: str, where: str) -> list[dict[str, Any]]:
    found = body.get(key) if isinstance(body, dict) else None
    if not isinstance(found, list):
        raise ImportRefused(f'{where}: expected PagerDuty\'s list answer, {{"{key}": [...]}}')
    return [f for f in found if isinstance(f, dict)]


# --- users ---------------------------------------------------------------------------------------


def _user(user: dict[str, Any], directory: Directory) -> str:
    email = str(user.get("email", ""))
    methods = {str(m.get("id")): m for m in user.get("contact_methods") or [] if isinstance(m, dict)}
    phones = [
        e164(f"{m.get('country_code', '')}{m.get('address', '')}", email, directory.fragment)
        for m in methods.values()
        if m.get("type") in ("phone_contact_method", "sms_contact_method")
    ]
    phones = list(dict.fromkeys(p for p in phones if p))
    for extra in phones[1:]:
        directory.fragment.drop(f"{email}'s number {extra}", "a person has one phone number here")
    person_id = directory.person(email, str(user.get("name", "")), phone=phones[0] if phones else "")
    if any(m.get("type") == "push_notification_contact_method" for m in methods.values()):
        directory.fragment.drop(f"{email}'s PagerDuty app", "push goes through ntfy here: add an ntfy_topic")
    steps: dict[str, list[NotificationStep]] = {"high": [], "low": []}
    for rule in sorted(user.get("notification_rules") or [], key=lambda r: int(r.get("start_delay_in_minutes", 0))):
        method = methods.get(str((rule.get("contact_method") or {}).get("id")), {})
        kind, urgency = str(method.get("type", "")), str(rule.get("urgency", "high"))
        delay = int(rule.get("start_delay_in_minutes", 0))
        what = f"{email}'s {urgency}-urgency rule ({kind or 'unknown method'} after {delay} min)"
        if urgency not in steps or kind not in CHANNELS:
            directory.fragment.drop(what, "no equivalent contact method here (push goes through ntfy)")
            continue
        number = "+" + re.sub(r"\D", "", f"{method.get('country_code', '')}{method.get('address', '')}")
        if kind != "email_contact_method" and phones and number != phones[0]:
            directory.fragment.drop(what, f"it calls {number}, not the person's one number here")
            continue
        if kind == "email_contact_method" and method.get("address") not in ("", email):
            directory.fragment.drop(f"{what}.address", f"e-mail goes to {email}, the person's one address here")
        step = NotificationStep(channel=CHANNELS[kind], after_minutes=delay)
        if reachable(directory, person_id, step, what):
            steps[urgency].append(step)
    if steps["high"] or steps["low"]:
        directory.set_rules(person_id, model(f"{email}'s rules", NotificationRules, **steps))
    return person_id


# --- schedules -----------------------------------------------------------------------------------


def _schedule(where: str, data: dict[str, Any], users: dict[str, str], fragment: Fragment, now: datetime) -> Schedule:
    try:
        tz = known_zone(str(data.get("time_zone") or "UTC"))
    except ValueError as err:
        raise ImportRefused(f"{where}: time_zone: {err}") from err
    found = data.get("schedule_layers") or []
    if not found:
        raise ImportRefused(f"{where}: the schedule has no layers")
    layers = [
        _layer(f"{where}: {layer.get('name', i)!r}", layer, tz, users, fragment, now) for i, layer in enumerate(found)
    ]
    return model(where, Schedule, timezone=tz, layers=list(reversed(layers)))


def _layer(
    where: str, layer: dict[str, Any], tz: str, users: dict[str, str], fragment: Fragment, now: datetime
) -> Layer:
    turn = int(layer.get("rotation_turn_length_seconds", 0))
    kind = next((k for seconds, k in TURNS if turn > 0 and turn % seconds == 0), None)
    if kind is None:
        raise ImportRefused(f"{where}: a turn of {turn} s is not whole hours")
    anchor = datetime.fromisoformat(str(layer["rotation_virtual_start"])).astimezone(zone(tz))
    start = datetime.fromisoformat(str(layer.get("start") or anchor.isoformat()))
    if start > max(anchor, now):
        fragment.drop(f"{where}.start", f"here the layer is on call from its rotation's start, {anchor:%Y-%m-%d %H:%M}")
    members = []
    for entry in layer.get("users") or []:
        user = entry.get("user") or {}
        if str(user.get("id")) not in users:
            raise ImportRefused(f"{where}: user {user.get('summary', user.get('id'))!r} is not in users.json")
        members.append(users[str(user.get("id"))])
    end = layer.get("end")
    return model(
        where,
        Layer,
        name=str(layer.get("name", "")),
        members=members,
        rotation=kind,
        length=turn // next(s for s, k in TURNS if k is kind),
        handoff=anchor.time().replace(tzinfo=None),
        handoff_day=Weekday(anchor.strftime("%A").lower()) if kind is Rotation.WEEKLY else None,
        starts=anchor.date(),
        ends=datetime.fromisoformat(str(end)) if end else None,
        restrictions=[r for r in (_restriction(where, r) for r in layer.get("restrictions") or []) if r is not None],
    )


def _restriction(where: str, found: dict[str, Any]) -> Restriction | None:
    start = time.fromisoformat(str(found.get("start_time_of_day", "00:00:00")))
    length = timedelta(seconds=int(found.get("duration_seconds", 0)))
    end = (datetime.combine(datetime.min, start) + length).time()
    if found.get("type") == "daily_restriction":
        return None if length >= timedelta(days=1) else Restriction(start=start, end=end)
    if found.get("type") == "weekly_restriction":
        if length >= timedelta(weeks=1):
            return None
        first = WEEKDAYS[int(found.get("start_day_of_week", 1)) - 1]
        last = WEEKDAYS[
            (first.number + (start.hour * 3600 + start.minute * 60 + int(length.total_seconds())) // 86400) % 7
        ]
        return Restriction(start_day=first, start=start, end_day=last, end=end)
    raise ImportRefused(f"{where}: restriction type {found.get('type')!r} is neither daily nor weekly")


# --- escalation policies -------------------------------------------------------------------------


def _escalation(
    found: dict[str, Any], users: dict[str, str], schedules: dict[str, str], fragment: Fragment
) -> Escalation:
    name = str(found.get("name", ""))
    tiers = []
    for i, rule in enumerate(found.get("escalation_rules") or []):
        notify = []
        for target in rule.get("targets") or []:
            kind, ident = target.get("type"), str(target.get("id"))
            if kind in ("user_reference", "user") and ident in users:
                notify.append(users[ident])
            elif kind in ("schedule_reference", "schedule") and ident in schedules:
                notify.append(f"schedule:{schedules[ident]}")
            else:
                fragment.drop(
                    f"escalation policy {name!r} rule {i + 1}: {target.get('summary', ident)}",
                    f"a {kind} not in the export",
                )
        if notify:
            tiers.append(
                model(
                    f"escalation policy {name!r}",
                    Tier,
                    notify=notify,
                    wait_minutes=int(rule.get("escalation_delay_in_minutes", 30)),
                )
            )
        else:
            fragment.drop(f"escalation policy {name!r} rule {i + 1}", "it reaches nobody here")
    if not tiers:
        raise ImportRefused(f"escalation policy {name!r} reaches nobody this policy can page")
    return model(f"escalation policy {name!r}", Escalation, tiers=tiers, repeat=int(found.get("num_loops") or 0))
