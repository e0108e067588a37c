"""What every importer writes: a policy fragment to append to the policy file, and a report line for each item
of the export that it could not carry over (the item, then why), so that nothing is dropped silently.

The fragment holds the people the policy does not have yet, the notification rules of those it has (a TOML
subtable may follow its table anywhere in the file), the schedules, at most one escalation (a policy has one
ladder), and the `incidentctl override add` commands for the overrides still to come: overrides live in the
schedule's workflow, not in the policy.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from settings import describe_validation_error
from workflows.contracts.people import CONTACT_FIELD, NotificationRules, NotificationStep, Person
from workflows.contracts.policy import Escalation, Policy
from workflows.oncall.rotation import Restriction, Schedule

# A person's fields an import fills, in the order they are written.
PERSON_FIELDS = ("name", "email", "pager_id", "phone", "slack_user_id")


class ImportRefused(ValueError):
    """The export cannot become a policy fragment; the message names what to fix."""


@dataclass
class Fragment:
    people: dict[str, Person] = field(default_factory=dict)  # new people
    rules: dict[str, NotificationRules] = field(default_factory=dict)  # of people already in the policy
    schedules: dict[str, Schedule] = field(default_factory=dict)
    escalation: Escalation | None = None
    commands: list[str] = field(default_factory=list)  # to run once the stack is up
    dropped: list[str] = field(default_factory=list)

    def drop(self, item: str, why: str) -> None:
        # one comment line each: a name from the export with a line break in it must not become TOML
        self.dropped.append(re.sub(r"[\x00-\x1f\x7f]+", " ", f"{item}: {why}"))

    def override(self, schedule: str, who: str, start: datetime, end: datetime, now: datetime) -> None:
        """An override of the source, as the command that makes it here; one already over is named instead."""
        if end <= now:
            self.drop(f"override of {schedule} by {who} until {end:%Y-%m-%d %H:%M} UTC", "already over")
            return
        self.commands.append(
            shlex.join(
                [
                    "incidentctl",
                    "override",
                    "add",
                    schedule,
                    "--who",
                    who,
                    "--from",
                    _instant(max(start, now)),
                    "--until",
                    _instant(end),
                    "--reason",
                    "moved in",
                ]
            )
        )

    def toml(self) -> str:
        """The fragment as TOML to append to the policy: the report first, as comments."""
        lines = [f"# not carried over: {line}" for line in self.dropped]
        lines += [f"# run: {command}" for command in self.commands]
        for person_id, person in self.people.items():
            lines += ["", f"[people.{person_id}]"]
            lines += [f"{name} = {_str(getattr(person, name))}" for name in PERSON_FIELDS if getattr(person, name)]
            if person.notification_rules is not None:
                lines += _rules(person_id, person.notification_rules)
        for person_id, rules in self.rules.items():
            lines += _rules(person_id, rules)
        for name, schedule in self.schedules.items():
            lines += ["", *schedule_toml(name, schedule)]
        if self.escalation is not None:
            lines += ["", "[escalation]", f"repeat = {self.escalation.repeat}"]
            for tier in self.escalation.tiers:
                lines += [
                    "",
                    "[[escalation.tiers]]",
                    f"notify = {_list(tier.notify)}",
                    f"channels = {_list([c.value for c in tier.channels])}",
                    f"wait_minutes = {tier.wait_minutes}",
                ]
        return "\n".join(lines).lstrip("\n") + "\n"


class Directory:
    """The people an import reaches: the policy's (by e-mail or pager id, whatever the case) and the new ones
    it adds, each under an id of its own."""

    def __init__(self, policy: Policy, fragment: Fragment) -> None:
        self.policy = policy
        self.fragment = fragment
        self._known: dict[str, str] = {}
        for person_id, person in policy.people.items():
            for contact in (person.email, person.pager_id):
                if contact:
                    self._known.setdefault(contact.lower(), person_id)

    def find(self, address: str) -> str | None:
        return self._known.get(address.lower())

    def person(self, address: str, name: str, **contacts: str) -> str:
        """The person with this e-mail (or user name): the policy's, or a new one the fragment adds."""
        if not address:
            raise ImportRefused(f"a user ({name or 'no name'}) has neither an e-mail nor a user name")
        found = self.find(address)
        if found is not None:
            have = self.policy.people.get(found)
            for contact, value in contacts.items():
                if have is not None and value and getattr(have, contact) != value:
                    self.fragment.drop(
                        f"people.{found}.{contact}", f"{found} is in the policy already: set {contact} = {_str(value)}"
                    )
            return found
        person_id = _free_id(_slug(address.split("@")[0]), self.policy.people.keys() | self.fragment.people.keys())
        email = address if "@" in address else ""
        fields = {"name": name or address, "email": email, "pager_id": address} | {
            k: v for k, v in contacts.items() if v
        }
        self.fragment.people[person_id] = Person(**fields)
        self._known[address.lower()] = person_id
        return person_id

    def set_rules(self, person_id: str, rules: NotificationRules) -> None:
        if person_id in self.fragment.people:
            person = self.fragment.people[person_id]
            self.fragment.people[person_id] = person.model_copy(update={"notification_rules": rules})
        elif self.policy.people[person_id].notification_rules is not None:
            self.fragment.drop(f"people.{person_id}.notification_rules", f"{person_id} has rules in the policy already")
        else:
            self.fragment.rules[person_id] = rules

    def contact(self, person_id: str, channel_field: str) -> str:
        person = self.fragment.people.get(person_id) or self.policy.people[person_id]
        value: str = getattr(person, channel_field)
        return value


def reachable(directory: Directory, person_id: str, step: NotificationStep, what: str) -> bool:
    """A step is kept only where the person has the address it needs; otherwise it is named."""
    needs = CONTACT_FIELD[step.channel]
    if directory.contact(person_id, needs):
        return True
    directory.fragment.drop(what, f"{person_id} has no {needs} here: add it, then the {step.channel.value} step")
    return False


def schedule_key(name: str, policy: Policy) -> str:
    key = _slug(name) or "imported"
    if key in policy.schedules:
        raise ImportRefused(f"the policy already has a schedule {key!r}; rename or remove one of them first")
    return key


def load(path: Path) -> Any:
    """One file of the export, as JSON."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise ImportRefused(f"cannot read {path}: {err.strerror}") from err
    except json.JSONDecodeError as err:
        raise ImportRefused(f"{path}: not JSON: {err}") from err


def model(where: str, build: Any, **fields: Any) -> Any:
    """`build(**fields)`, or a refusal that names where the value came from."""
    try:
        return build(**fields)
    except ValidationError as err:
        raise ImportRefused(f"{where}: {describe_validation_error(err)}") from err


def schedule_toml(name: str, schedule: Schedule) -> list[str]:
    lines = [f"[schedules.{name}]", f"timezone = {_str(schedule.timezone)}"]
    for layer in schedule.layers:
        lines += ["", f"[[schedules.{name}.layers]]"]
        if layer.name:
            lines.append(f"name = {_str(layer.name)}")
        lines += [
            f"members = {_list(layer.members)}",
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
    return lines


def _rules(person_id: str, rules: NotificationRules) -> list[str]:
    lines: list[str] = []
    for urgency in ("high", "low"):
        for step in getattr(rules, urgency):
            lines += [
                "",
                f"[[people.{person_id}.notification_rules.{urgency}]]",
                f'channel = "{step.channel.value}"',
                f"after_minutes = {step.after_minutes}",
            ]
    return lines


def _inline(r: Restriction) -> str:
    if r.start_day and r.end_day:
        return (
            f'start_day = "{r.start_day.value}", start = "{r.start:%H:%M}", '
            f'end_day = "{r.end_day.value}", end = "{r.end:%H:%M}"'
        )
    days = "" if len(r.days) == 7 else f", days = {_list([d.value for d in r.days])}"
    return f'start = "{r.start:%H:%M}", end = "{r.end:%H:%M}"{days}'


def _str(value: str) -> str:
    """A TOML basic string (JSON's escapes, without \\u surrogate pairs, which TOML refuses)."""
    return json.dumps(value, ensure_ascii=False)


def _list(values: list[str]) -> str:
    return "[" + ", ".join(_str(v) for v in values) + "]"


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9_-]+", "-", name.lower()).strip("-")


def _free_id(wanted: str, taken: Any) -> str:
    wanted = wanted or "person"
    number, found = 1, wanted
    while found in taken:
        number += 1
        found = f"{wanted}-{number}"
    return found


def _instant(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="minutes").replace("+00:00", "Z")


def e164(number: str, whose: str, fragment: Fragment) -> str:
    """+<digits> from what a source writes ("+44 20 7946 0958", "44-2079460958"); "" and a report line for
    what is no phone number."""
    digits = re.sub(r"\D", "", number)
    if 8 <= len(digits) <= 15:
        return f"+{digits}"
    fragment.drop(f"{whose}'s number {number!r}", "not a phone number with its country code")
    return ""
