"""What the workflows ask of the activities, and what the activities answer: one model per call.

Every model here travels through Temporal's pydantic data converter, so it is part of running
incidents' histories: add fields with defaults, never rename or remove one.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from workflows.contracts.policy import FollowUps, Records
from workflows.contracts.vocabulary import Phase, Severity
from workflows.incident.model import ChatButton, TimelineEntry


class PageRequest(BaseModel):
    """Open (or re-open) the paging alert for an incident; the dedup key makes it idempotent."""

    incident_id: str
    dedup_key: str
    summary: str
    severity: Severity
    description: str = ""
    responders: list[str] = Field(default_factory=list)  # provider-side user names / emails
    details: dict[str, str] = Field(default_factory=dict)
    provider: str = "opsgenie"  # from the policy: opsgenie | pagerduty | jsm


class PageAction(BaseModel):
    """Acknowledge, resolve or annotate the paging alert known by dedup key."""

    incident_id: str
    dedup_key: str
    provider: str = "opsgenie"
    note: str = ""
    actor: str = ""


class PageResult(BaseModel):
    provider: str
    reference: str = ""  # OpsGenie requestId / PagerDuty dedup_key as returned
    delivered_to: str = ""  # "outbox" when no account is configured


class FirstPost(BaseModel):
    """The channel's first message (the incident's welcome), posted by the call that opens the channel: one call,
    not two, and nothing can come before it."""

    text: str
    idempotency_key: str
    mention_user_ids: list[str] = Field(default_factory=list)

    def to(self, channel: str) -> ChatPost:
        return ChatPost(
            channel=channel,
            text=self.text,
            idempotency_key=self.idempotency_key,
            mention_user_ids=self.mention_user_ids,
        )


class ChatChannelRequest(BaseModel):
    incident_id: str
    title: str
    topic: str = ""
    purpose: str = ""
    invite_user_ids: list[str] = Field(default_factory=list)
    bookmarks: dict[str, str] = Field(default_factory=dict)  # title -> url
    channel_prefix: str = "inc"  # the policy's channel_prefix
    first_post: FirstPost | None = None  # posted once the channel exists (opening it; not when ensuring it again)


class ChatChannel(BaseModel):
    channel_id: str
    name: str
    delivered_to: str = ""
    first_post_failure: str = ""  # why the chat refused the first post for good (the channel is open all the same)


class ChatPost(BaseModel):
    """A message to a channel (id or name). `text` is plain data: the adapter escapes it."""

    channel: str
    text: str
    idempotency_key: str
    mention_user_ids: list[str] = Field(default_factory=list)
    buttons: list[ChatButton] = Field(default_factory=list)
    # Bring the message posted under this key up to date (its text replaced) rather than post another: the
    # welcome, when the conference bridge arrives after the channel opened.
    revises: bool = False


class ChatDirectMessage(BaseModel):
    """One text to each of several people, each in a DM of their own, each once (`idempotency_key:person`).

    One call for all the people a step reaches: an incident's first minute is a few activities, not one
    per person."""

    recipients: dict[str, str]  # person id -> their id in the chat
    text: str
    idempotency_key: str
    buttons: list[ChatButton] = Field(default_factory=list)

    def key_for(self, person: str) -> str:
        return f"{self.idempotency_key}:{person}"


class ChatDelivered(BaseModel):
    """What a direct message reached: the people the chat refused for good (user not found, ...), and why."""

    failures: dict[str, str] = Field(default_factory=dict)  # person id -> the chat's reason
    delivered_to: str = ""


class ChatArchive(BaseModel):
    channel: str


class ChatResult(BaseModel):
    channel: str = ""
    ts: str = ""
    delivered_to: str = ""


class AckFor(BaseModel):
    """A page to one person that should carry the way to acknowledge it as them (trust/links.py)."""

    incident_id: str
    person: str


class EmailRequest(BaseModel):
    """One e-mail. `personal=True` sends one message per recipient (strategic customers)."""

    to: list[str]
    subject: str
    text: str
    html: str = ""
    idempotency_key: str
    personal: bool = False
    acknowledge: AckFor | None = None  # a page: the e-mail ends with a link that acknowledges as its person


class EmailResult(BaseModel):
    message_ids: list[str] = Field(default_factory=list)
    delivered_to: str = ""


class Settled(BaseModel):
    """Which of a call's people it has settled so far: reached, or refused for good (person id -> why). A call that
    sends to several people in turn carries it in its heartbeat (a retry goes on from there) and in its failure (the
    workflow still credits the people it reached)."""

    sent: list[str] = Field(default_factory=list)
    refused: dict[str, str] = Field(default_factory=dict)

    @classmethod
    def read(cls, details: Sequence[Any]) -> Settled:
        """From heartbeat or failure details: nothing settled when there are none, or they are not a Settled."""
        try:
            return cls.model_validate(details[0]) if details else cls()
        except ValidationError:
            return cls()


class TelegramMessage(BaseModel):
    """One text to each of several people, each in their own Telegram chat, each once (`idempotency_key:person`).

    One call for all the people a step reaches, like a chat's direct message (ChatDirectMessage)."""

    recipients: dict[str, str]  # person id -> their Telegram chat id
    text: str
    idempotency_key: str
    acknowledge_incident: str = ""  # a page: each message carries a button that acknowledges it as its person

    def key_for(self, person: str) -> str:
        return f"{self.idempotency_key}:{person}"

    def acknowledge_for(self, person: str) -> AckFor | None:
        return AckFor(incident_id=self.acknowledge_incident, person=person) if self.acknowledge_incident else None


class StatuspageRequest(BaseModel):
    """Create the status-page incident for this incident, or update it when it exists."""

    incident_id: str
    name: str
    phase: Phase
    body: str
    idempotency_key: str
    statuspage_incident_id: str = ""


class StatuspageResult(BaseModel):
    statuspage_incident_id: str
    delivered_to: str = ""


class ConferenceRequest(BaseModel):
    incident_id: str
    topic: str
    bridge_url: str = ""  # the policy's standing bridge, used when Zoom is not configured


class ConferenceResult(BaseModel):
    join_url: str
    delivered_to: str = ""


class DeliveryResult(BaseModel):
    """Result of a delivery that returns nothing the workflow needs but where it went."""

    delivered_to: str = ""


class IncidentLogEntry(BaseModel):
    """A line in the project's incident log or the global one (seeds 001, 002, 003)."""

    log: str  # "project" | "global"
    project: str
    incident_id: str
    title: str
    fields: dict[str, str] = Field(default_factory=dict)
    idempotency_key: str
    log_dir: str = ""


class PostmortemRequest(BaseModel):
    incident_id: str
    title: str
    opened_at: datetime | None = None  # names the file: an alert group can recur after it closes
    severity: Severity
    service: str = ""
    sections: dict[str, str] = Field(default_factory=dict)  # heading -> text known so far
    timeline: list[TimelineEntry] = Field(default_factory=list)
    log_dir: str = ""
    timezone: str = "UTC"  # the policy's: the timeline is read in the team's time


class RecordResult(BaseModel):
    location: str


LOOP = "m"  # a record entry of the message loop's log: its marker reads `#m3`


class RecordEntry(BaseModel):
    """One line of the incident's history in its record; `log` and `number` (from 1) find it there again."""

    number: int
    at: datetime
    kind: str
    text: str
    actor: str | None = None
    log: str = ""  # "": the incident's timeline; LOOP: the message loop's log (seed 004's reviews, approvals)

    def marker(self, key: str) -> str:
        """What a written entry carries so a retry can tell it is there already."""
        return f"[{key}#{self.log}{self.number}]"

    def line(self, key: str) -> str:
        who = f"{self.actor}: " if self.actor else ""
        return f"{self.at:%Y-%m-%d %H:%M:%S} UTC · {self.kind} · {who}{self.text} {self.marker(key)}"


def record_history(timeline: list[TimelineEntry], loop: list[TimelineEntry] | None = None) -> list[RecordEntry]:
    """The record's history: the incident's timeline but its alert lines, and the message loop's log, by time.
    Alert lines are bounded (lifecycle.bound_timeline), so the oldest leave the timeline; every other entry
    stays where it is and keeps its number in the record."""
    own = [RecordEntry(number=n, **e.model_dump()) for n, e in enumerate((e for e in timeline if e.kind != "alert"), 1)]
    return with_loop(own, loop or [])


def with_loop(own: list[RecordEntry], loop: list[TimelineEntry]) -> list[RecordEntry]:
    theirs = [RecordEntry(number=n, log=LOOP, **e.model_dump()) for n, e in enumerate(loop, 1)]
    return sorted([*own, *theirs], key=lambda e: e.at) if theirs else own


class RecordWrite(BaseModel):
    """The incident record as it is now, and history entries the record may not hold yet (in order).

    `key` is the incident's occurrence as the peer stores it (a Jira label, a ServiceNow correlation id, a
    Confluence page title): a write that finds no record by `record_id` looks it up by `key` before creating.
    """

    key: str
    incident_id: str
    record_id: str = ""  # the peer's id of the record, once a write returned it
    fields: dict[str, str]  # title, status, severity, phase, assignee, service, tasks, resolution...
    assignee_account: str = ""  # the assignee's id in the peer (policy people's jira_account_id ...)
    entries: list[RecordEntry] = Field(default_factory=list)
    unsure: bool = False  # the write before this one failed: some of these entries may be there already
    records: Records


class RecordWritten(BaseModel):
    record_id: str
    url: str = ""


class FollowUpRequest(BaseModel):
    """One action item of the postmortem as an issue; `key` (incident occurrence and item) finds it again."""

    key: str
    incident_id: str
    title: str
    description: str  # with the way back to the incident
    due: date | None = None
    owner_account: str = ""  # the owner's id in Jira or Linear (policy people)
    incident_url: str = ""  # the incident's record, linked from the issue
    follow_ups: FollowUps


class FollowUpCreated(BaseModel):
    issue: str  # OPS-12, ENG-34
    url: str = ""


class RecordView(BaseModel):
    """The incident as its record and follow-ups should be now (the incident's `record` query)."""

    occurrence: str
    closed: bool  # the incident's last sync is its own (RecordSync.last)
    record: RecordWrite | None = None  # None: the record is the log files alone
    message_loop: str = ""  # its workflow id, once the incident is a business incident: its log joins the record
    follow_ups: dict[str, FollowUpRequest] = Field(default_factory=dict)  # action item -> its issue, to file


class RecordInput(BaseModel):
    """The record's writer (RecordWorkflow) of one occurrence of an incident; its start_record_writer too.
    A writer that continues as new carries what it knows (`known`, `filed`) into its next run; a run started
    from outside is given none (it would name another record to write to)."""

    incident_id: str
    occurrence: str
    known: RecordSynced | None = None
    filed: list[str] = Field(default_factory=list)
    history_limit: int = Field(default=1000, ge=30)  # about 125 syncs; each run syncs at least once


class RecordSync(BaseModel):
    """Bring the incident's record, and its follow-up issues, up to the incident's state as it is now."""

    incident_id: str
    occurrence: str
    record_id: str = ""  # the peer's id of the record, once a sync returned it
    filed: list[str] = Field(default_factory=list)  # action items whose issue the incident knows of
    last: bool = False  # the closed incident's own last sync: the writer writes nothing after the close


class RecordSynced(BaseModel):
    """What a sync wrote: the record, the new follow-up issues, and whether it was the last (the incident
    closed, or a later occurrence runs under its id)."""

    record_id: str = ""
    url: str = ""
    written: int = 0  # history entries the record holds
    issues: dict[str, FollowUpCreated] = Field(default_factory=dict)  # action item -> its new issue
    over: bool = False


class Reached(BaseModel):
    """What an attempt to reach people did: one line per delivery, and paging keys to close later."""

    lines: list[str] = Field(default_factory=list)
    page_keys: list[str] = Field(default_factory=list)
    failures: list[str] = Field(default_factory=list)


class DirectMessage(BaseModel):
    """A page to one person on one contact method (push, SMS, a call): the activity adds the links that
    acknowledge as that person (workflows/contracts/trust/links.py) and the callback for the provider's reports."""

    incident_id: str
    person: str
    address: str  # the ntfy topic, or the E.164 phone number
    title: str
    text: str
    idempotency_key: str  # also names this delivery in the provider's status callbacks
    urgent: bool = True
    telephony: str = "twilio"  # for SMS and calls, the policy's provider


class DirectResult(BaseModel):
    reference: str = ""  # ntfy's message id, Twilio's SM…/CA… sid
    delivered_to: str = ""


class DeliveryReport(BaseModel):
    """A provider's word, after it accepted a page, that the page did not reach its person (Twilio's status
    callback: undelivered, failed, busy, no answer): their notification rules move on at once."""

    idempotency_key: str
    reason: str
