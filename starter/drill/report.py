"""The drill's report: one timeline of what the workflows recorded, what the recorders saw sent and which
steps were refused, what was still owed at the end, and its text rendering (on the policy's clock)."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field

from starter.drill.recorder import Call
from workflows.comms.model import FINISHED, CommsState, RenderStatement
from workflows.contracts.activity_io import (
    ChatArchive,
    ChatChannelRequest,
    ChatDirectMessage,
    ChatPost,
    ConferenceRequest,
    DirectMessage,
    EmailRequest,
    IncidentLogEntry,
    PageAction,
    PageRequest,
    PostmortemRequest,
    RecordSync,
    StatuspageRequest,
    TelegramMessage,
)
from workflows.contracts.policy import Policy
from workflows.incident.model import IncidentState


class DrillEvent(BaseModel):
    """One line of the timeline: something a workflow recorded, sent, or refused."""

    at: datetime
    minute: float  # minutes after the scenario's start
    source: str  # "incident", "comms", "sent" (a recorder) or "refused" (a scenario step)
    kind: str  # the timeline entry's kind, or the activity's name
    actor: str | None = None
    to: list[str] = Field(default_factory=list)
    text: str
    data: dict[str, Any] = Field(default_factory=dict)


class StepOutcome(BaseModel):
    index: int
    minute: float
    at: datetime
    step: str
    accepted: bool
    answer: str


class DrillReport(BaseModel):
    organisation: str
    policy_file: str
    scenario_file: str
    scenario: str
    incident_id: str
    timezone: str
    started_at: datetime
    start_note: str = ""
    ended_at: datetime
    wall_seconds: float  # the whole drill: loading the workflows, the test server's start and stop, the run
    events: list[DrillEvent]
    steps: list[StepOutcome]
    unanswered: list[str]
    incident: IncidentState
    comms: CommsState | None = None
    documents: dict[str, str] = Field(default_factory=dict)  # what the real records activities wrote

    def sent(self, activity_name: str | None = None) -> list[DrillEvent]:
        return [e for e in self.events if e.source == "sent" and activity_name in (None, e.kind)]

    def messages_sent(self) -> list[str]:
        """The stakeholder messages of the message loop that went out (seed 004), not deliveries."""
        return [m.message_id for m in self.comms.messages if m.step.value == "sent"] if self.comms else []


# --- from records to a timeline ----------------------------------------------------------------


def timeline(
    t0: datetime,
    policy: Policy,
    calls: list[Call],
    refusals: list[DrillEvent],
    incident: IncidentState,
    comms: CommsState | None,
) -> list[DrillEvent]:
    people = _people_by_contact(policy)
    events = list(refusals)
    for entry in incident.timeline:
        events.append(
            DrillEvent(
                at=entry.at,
                minute=to_minutes(entry.at - t0),
                source="incident",
                kind=entry.kind,
                actor=entry.actor,
                text=entry.text,
            )
        )
    for entry in comms.log if comms else []:
        events.append(
            DrillEvent(
                at=entry.at,
                minute=to_minutes(entry.at - t0),
                source="comms",
                kind=entry.kind,
                actor=entry.actor,
                text=entry.text,
            )
        )
    for call in calls:
        to, text = _what_was_sent(call.request, people)
        events.append(
            DrillEvent(
                at=call.at,
                minute=to_minutes(call.at - t0),
                source="sent",
                kind=call.activity,
                to=to,
                text=text,
                data=call.request.model_dump(mode="json"),
            )
        )
    return sorted(events, key=lambda e: e.at)  # stable: at one instant, what was decided before what was sent


def _people_by_contact(policy: Policy) -> dict[str, str]:
    """Slack ids, e-mail addresses, pager ids and Telegram chats back to the person ids of the policy."""
    found: dict[str, str] = {}
    for person_id, p in policy.people.items():
        for contact in p.contacts():
            found.setdefault(contact, person_id)
    return found


def _what_was_sent(request: BaseModel, people: dict[str, str]) -> tuple[list[str], str]:
    """(to whom, what) of one recorded activity call, people named by their policy ids."""

    def who(contacts: list[str]) -> list[str]:
        return [people.get(c, c) for c in contacts]

    if isinstance(request, PageRequest):
        return who(request.responders), f"{request.provider} page: {request.summary}"
    if isinstance(request, DirectMessage):
        return [request.person], request.text
    if isinstance(request, PageAction):
        return [], f"{request.provider} alert {request.dedup_key}{f': {request.note}' if request.note else ''}"
    if isinstance(request, ChatChannelRequest):
        opened = f"channel opened: {request.purpose} ({request.topic})"
        if request.first_post is not None:
            tagging = " tagging " + ", ".join(who(request.first_post.mention_user_ids))
            opened += f"; welcome{tagging if request.first_post.mention_user_ids else ''}: {request.first_post.text}"
        return who(request.invite_user_ids), opened
    if isinstance(request, ChatPost):
        mentions = f" (tagging {', '.join(who(request.mention_user_ids))})" if request.mention_user_ids else ""
        return [request.channel], request.text + mentions
    if isinstance(request, ChatDirectMessage):
        return who(list(request.recipients.values())), request.text
    if isinstance(request, ChatArchive):
        return [request.channel], "channel archived"
    if isinstance(request, EmailRequest):
        return who(request.to), f"{'one e-mail each' if request.personal else 'e-mail'}: {request.subject}"
    if isinstance(request, TelegramMessage):
        return who(list(request.recipients.values())), request.text
    if isinstance(request, StatuspageRequest):
        return ["status page"], f"{request.phase.value}: {request.name}"
    if isinstance(request, ConferenceRequest):
        return [], f"conference for {request.topic}: {request.bridge_url or 'no bridge in the policy'}"
    if isinstance(request, IncidentLogEntry):
        return [f"{request.log} incident log"], f"{request.fields.get('event', '')} entry: {request.title}"
    if isinstance(request, PostmortemRequest):
        return ["postmortem"], "draft with sections: " + "; ".join(request.sections)
    if isinstance(request, RecordSync):
        return ["incident record"], "brought up to date"
    if isinstance(request, RenderStatement):
        return [], f"statement {request.phase.value}/{request.audience.value} rendered"
    return [], request.model_dump_json()


def unanswered(incident: IncidentState, comms: CommsState | None) -> list[str]:
    lines = [
        f"{incident.incident_id} ({incident.status.value}, {incident.phase.value}): {w}" for w in incident.waiting_on
    ]
    for m in comms.messages if comms else []:
        if m.step in FINISHED:
            continue
        owed = "; ".join(f"{', '.join(o.people) or 'nobody'} ({o.role.value}) to {o.what}" for o in m.waiting_on)
        lines.append(f"message {m.message_id} ({m.step.value}){f': {owed}' if owed else ''}")
    return lines


def to_minutes(delta: timedelta) -> float:
    return round(delta.total_seconds() / 60, 2)


# --- text output -------------------------------------------------------------------------------


def render_text(report: DrillReport, width: int = 160) -> str:
    """The timeline on the policy's clock, as the workflows' own texts write their moments."""
    zone = ZoneInfo(report.timezone)
    out = [
        f"Drill {report.scenario!r} under {report.organisation}'s policy ({report.policy_file})",
        f"Incident {report.incident_id}; start {_local(report.started_at, zone, '%a %Y-%m-%d %H:%M %Z')}; "
        f"times in {report.timezone}; {report.wall_seconds:.1f} s of wall time",
    ]
    if report.start_note:
        out.append(f"Note: {report.start_note}")
    out.append("")
    for e in report.events:
        who = f"[{e.actor}] " if e.actor else ""
        to = f"-> {', '.join(e.to)}: " if e.to else ""
        text = " / ".join(e.text.splitlines())
        kind = f"{e.source}.{e.kind}"
        line = f"{_offset(e.minute):>10} {_local(e.at, zone, '%a %H:%M')}  {kind:<32} {who}{to}{text}"
        out.append(line if len(line) <= width else line[: width - 1] + "…")
    end = report.ended_at
    out += ["", f"Unanswered at {_offset(to_minutes(end - report.started_at))} ({_local(end, zone, '%a %H:%M')}):"]
    out += [f"  - {line}" for line in report.unanswered] or ["  nothing"]
    out += ["", *summary(report)]
    return "\n".join(out)


def summary(report: DrillReport) -> list[str]:
    """Deliveries (every call a recorder took instead of a peer) apart from stakeholder messages (seed 004's
    approved messages, each of which is several deliveries), and the scenario's steps."""
    sent = report.sent()
    counted = sorted(Counter(e.kind for e in sent).items(), key=lambda kind_n: (-kind_n[1], kind_n[0]))
    kinds = ", ".join(f"{kind} {n}" for kind, n in counted)  # the most first, then by name: the same every run
    lines = [f"Deliveries: {len(sent)} recorded, none sent{f' ({kinds})' if kinds else ''}"]
    if report.comms is None:
        lines.append("Stakeholder messages: none (not a business incident)")
    else:
        steps = Counter(m.step.value for m in report.comms.messages)
        lines.append(
            f"Stakeholder messages: {len(report.comms.messages)} in the message loop, "
            + ", ".join(f"{n} {step}" for step, n in steps.most_common())
        )
    refused = sum(1 for s in report.steps if not s.accepted)
    lines.append(f"Steps: {len(report.steps)} taken, {refused} refused")
    return lines


def _offset(minutes: float) -> str:
    seconds = round(minutes * 60)
    return f"+{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def _local(moment: datetime, zone: ZoneInfo, fmt: str) -> str:
    return moment.astimezone(zone).strftime(fmt)
