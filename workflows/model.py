"""Data types shared by workflows, activities and the ways in: enums, messages and incident state.

Every model here travels through Temporal's pydantic data converter, so it is part of running
incidents' histories: add fields with defaults, never rename or remove one.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

# --- enums -------------------------------------------------------------------------------------


class Phase(StrEnum):
    """The phases of seed 004, in order, plus the end of the incident."""

    DETECTION = "detection"
    INVESTIGATION = "investigation"
    IDENTIFICATION = "identification"
    MONITORING = "monitoring"
    RESOLUTION = "resolution"
    ANALYSIS = "analysis"
    PUBLISHING = "publishing"
    CLOSED = "closed"


class Status(StrEnum):
    """What the IncidentStatus search attribute says."""

    OPEN = "open"
    RESOLVED = "resolved"
    CLOSED = "closed"


class Severity(StrEnum):
    SEV1 = "SEV1"
    SEV2 = "SEV2"
    SEV3 = "SEV3"
    SEV4 = "SEV4"

    @property
    def priority(self) -> str:
        """Seed 003 speaks of high, medium and low priority."""
        return {"SEV1": "high", "SEV2": "high", "SEV3": "medium", "SEV4": "low"}[self.value]


class IncidentKind(StrEnum):
    """Seed 001: an issue is either an incident or a disturbance."""

    INCIDENT = "incident"
    DISTURBANCE = "disturbance"


class Scope(StrEnum):
    """Seed 001: global incidents belong to the Technical Manager, local ones to the CSM."""

    LOCAL = "local"
    GLOBAL = "global"


class CriticalCriterion(StrEnum):
    """Seed 002's definition of a critical incident; any one of them makes it SEV1."""

    SITE_DOWN = "site_down"
    KEY_FUNCTION_BROKEN = "key_function_broken"
    MANY_USERS_BLOCKED = "many_users_blocked"
    SECURITY_BREACH = "security_breach"
    CLIENT_URGENT = "client_urgent"


class Role(StrEnum):
    """Every role the five seeds name. The policy says who holds which."""

    INCIDENT_COMMANDER = "incident_commander"
    COMMUNICATIONS_LEAD = "communications_lead"
    RESPONDER = "responder"
    RESPONSIBLE_DEVELOPER = "responsible_developer"
    PROJECT_MANAGER = "project_manager"
    CTO = "cto"
    ACCOUNT_MANAGER = "account_manager"
    TECHNICAL_MANAGER = "technical_manager"
    CUSTOMER_SERVICE_MANAGER = "customer_service_manager"
    SENIOR_MANAGEMENT = "senior_management"
    PMO = "pmo"
    BUSINESS_LEAD = "business_lead"
    TECHNICAL_SLT = "technical_slt"
    MESSAGING_OFFICER = "messaging_officer"
    LEGAL_OFFICER = "legal_officer"
    CUSTOMER_LIAISON = "customer_liaison"
    ELT_APPROVER = "elt_approver"
    DISTRIBUTOR = "distributor"


class Channel(StrEnum):
    """How a person is reached."""

    PAGE = "page"
    SLACK = "slack"
    EMAIL = "email"
    TELEGRAM = "telegram"


class Audience(StrEnum):
    """Seed 004's three audiences."""

    INTERNAL = "internal_stakeholders"
    STRATEGIC = "strategic_customers"
    ALL_CUSTOMERS = "all_customers"


class AlertStatus(StrEnum):
    FIRING = "firing"
    RESOLVED = "resolved"


def incident_id_for(source: str, dedup_key: str) -> str:
    """The incident id an alert group maps to: stable, short, readable ("INC-7F3KQ2MA").

    The workflow id is this id, so signal-with-start sends every alert of a group to the one open
    incident for it, however many webhook replicas receive them.
    """
    digest = hashlib.sha256(f"{source}\x00{dedup_key}".encode()).digest()
    return "INC-" + base64.b32encode(digest).decode()[:8]


def occurrence(incident_id: str, opened_at: datetime | None) -> str:
    """The prefix of every idempotency key of one occurrence of an incident."""
    return f"{incident_id}@{opened_at:%Y%m%dT%H%M%S}" if opened_at else incident_id


# --- alerts ------------------------------------------------------------------------------------


class AlertEvent(BaseModel):
    """One alert from any source, normalised by the webhook. Its text is data, never markup."""

    source: str
    dedup_key: str
    fingerprint: str = ""
    status: AlertStatus = AlertStatus.FIRING
    title: str
    description: str = ""
    severity: Severity | None = None
    service: str = ""
    labels: dict[str, str] = Field(default_factory=dict)
    links: list[str] = Field(default_factory=list)
    criteria: list[CriticalCriterion] = Field(default_factory=list)
    received_at: datetime | None = None


# --- timeline and state ------------------------------------------------------------------------


class TimelineEntry(BaseModel):
    at: datetime
    kind: str
    text: str
    actor: str | None = None


class Task(BaseModel):
    """Seed 003: recovery tasks, prioritised by business impact and RTO."""

    task_id: str
    title: str
    assignee: str
    business_impact: Severity = Severity.SEV3
    done: bool = False
    created_at: datetime | None = None


# --- activity inputs and results ---------------------------------------------------------------


class PageRequest(BaseModel):
    """Open (or re-open) the paging alert for an incident; the dedup key makes it idempotent."""

    incident_id: str
    dedup_key: str
    summary: str
    severity: Severity
    description: str = ""
    responders: list[str] = Field(default_factory=list)  # provider-side user names / emails
    details: dict[str, str] = Field(default_factory=dict)
    provider: str = "opsgenie"  # from the policy: opsgenie | pagerduty


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


class SlackChannelRequest(BaseModel):
    incident_id: str
    title: str
    topic: str = ""
    purpose: str = ""
    invite_user_ids: list[str] = Field(default_factory=list)
    bookmarks: dict[str, str] = Field(default_factory=dict)  # title -> url
    channel_prefix: str = "inc"  # the policy's slack_channel_prefix


class SlackChannel(BaseModel):
    channel_id: str
    name: str
    delivered_to: str = ""


class SlackPost(BaseModel):
    """A message to a channel (id or name). `text` is plain data: the adapter escapes it."""

    channel: str
    text: str
    idempotency_key: str
    mention_user_ids: list[str] = Field(default_factory=list)
    blocks: list[dict[str, Any]] = Field(default_factory=list)


class SlackDirectMessage(BaseModel):
    user_id: str
    text: str
    idempotency_key: str


class SlackArchive(BaseModel):
    channel: str


class SlackResult(BaseModel):
    channel: str = ""
    ts: str = ""
    delivered_to: str = ""


class EmailRequest(BaseModel):
    """One e-mail. `personal=True` sends one message per recipient (strategic customers)."""

    to: list[str]
    subject: str
    text: str
    html: str = ""
    idempotency_key: str
    personal: bool = False


class EmailResult(BaseModel):
    message_ids: list[str] = Field(default_factory=list)
    delivered_to: str = ""


class TelegramRequest(BaseModel):
    chat_id: str
    text: str
    idempotency_key: str


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


class RecordResult(BaseModel):
    location: str


# --- human decisions: each is an Update and a Signal of the same name --------------------------


class Decision(BaseModel):
    """Who decided. The validator checks their role in the policy and the incident's state."""

    actor: str


class Acknowledge(Decision):
    note: str = ""


class AssignRole(Decision):
    role: Role
    person: str


class Classify(Decision):
    kind: IncidentKind | None = None
    severity: Severity | None = None
    scope: Scope | None = None
    criteria: list[CriticalCriterion] = Field(default_factory=list)
    note: str = ""


class SetPhase(Decision):
    phase: Phase
    note: str = ""


class Estimate(Decision):
    minutes: int = Field(gt=0, le=7 * 24 * 60)
    note: str = ""


class ProgressNote(Decision):
    text: str


class StatusUpdate(Decision):
    text: str


class AssignTask(Decision):
    title: str
    assignee: str
    business_impact: Severity = Severity.SEV3


class CompleteTask(Decision):
    task_id: str


class ReportDataLoss(Decision):
    """Seed 003's RPO: how many minutes of data the recovery point loses."""

    minutes: int = Field(ge=0)


class TriggerBusinessIncident(Decision):
    reason: str = ""


class Resolve(Decision):
    """Seed 000's resolution message: overview, how it was resolved, prevention."""

    overview: str
    how_resolved: str
    prevention: str
    root_cause: str = ""  # often known only at the review (ReviewHeld.root_cause)


class Reopen(Decision):
    reason: str


class ReviewHeld(Decision):
    notes: str = ""
    root_cause: str = ""


class PublishPostmortem(Decision):
    url: str = ""


class CloseIncident(Decision):
    pass


# --- the workflows' inputs and what they share -------------------------------------------------


class IncidentFacts(BaseModel):
    """What templates and child workflows may know of the incident: no secrets, no markup."""

    incident_id: str
    title: str
    service: str = ""
    severity: Severity = Severity.SEV3
    phase: Phase = Phase.DETECTION
    opened_at: datetime | None = None
    summary: str = ""
    impact: str = ""
    ui_url: str = ""


class PhaseChanged(BaseModel):
    """Sent by IncidentWorkflow to its CommsWorkflow when the incident moves phase (or closes)."""

    phase: Phase
    facts: IncidentFacts


class Reached(BaseModel):
    """What an attempt to reach people did: one line per delivery, and paging keys to close later."""

    lines: list[str] = Field(default_factory=list)
    page_keys: list[str] = Field(default_factory=list)
    failures: list[str] = Field(default_factory=list)


class AlertSeen(BaseModel):
    status: AlertStatus
    count: int = 1
    title: str = ""
    last_at: datetime | None = None


class ChannelPost(BaseModel):
    """A message waiting for its turn in the incident channel: posts keep their order there."""

    text: str
    key: str  # the step it belongs to; with the incident's occurrence, its idempotency key
    mentions: list[str] = Field(default_factory=list)


CHECKLIST = ("project_log", "global_log", "pmo_notified", "postmortem_drafted", "review_held",
             "postmortem_published")


class IncidentState(BaseModel):
    """Everything an incident knows; what the `state` query returns and continue-as-new carries."""

    incident_id: str
    title: str
    source: str = ""
    dedup_key: str = ""
    service: str = ""
    description: str = ""
    kind: IncidentKind | None = None
    severity: Severity = Severity.SEV3
    scope: Scope = Scope.LOCAL
    criteria: list[CriticalCriterion] = Field(default_factory=list)
    phase: Phase = Phase.DETECTION
    phases_entered: list[Phase] = Field(default_factory=list)  # every move, in order (the message loop hears each)
    status: Status = Status.OPEN
    assigned: dict[Role, str] = Field(default_factory=dict)
    opened_at: datetime
    assessment_due: datetime | None = None
    assessed_by: str | None = None
    confirmed: bool = False
    acknowledged_by: str | None = None
    acknowledged_at: datetime | None = None
    resolved_at: datetime | None = None
    resolved_by: str = ""
    closed_at: datetime | None = None
    resolution: dict[str, str] = Field(default_factory=dict)
    alerts: dict[str, AlertSeen] = Field(default_factory=dict)  # fingerprint -> latest
    alert_count: int = 0
    channel: str = ""
    conference_url: str = ""
    page_keys: list[str] = Field(default_factory=list)  # paging alerts to acknowledge and close
    assessment_requested: bool = False
    escalation_round: int = 0  # the round of paging the incident calls for (a reopen or a raise adds one)
    escalation_started: int = 0  # the round whose ladder was started
    escalation_active: bool = False
    escalation_exhausted_at: datetime | None = None  # the ladder ran out with nobody acknowledging
    estimate_due: datetime | None = None
    estimate_by: str = ""  # who gave the estimate: the check-back goes to them
    progress_due: datetime | None = None
    calls_convened: int = 0
    next_update_due: datetime | None = None
    update_nudged: bool = False
    updates_missed: int = 0
    rto_due: datetime | None = None
    rto_warned: bool = False
    rto_breached: bool = False
    data_loss_minutes: int | None = None
    tasks: list[Task] = Field(default_factory=list)
    business_incident: bool = False
    business_incident_by: str = ""  # who (or "policy") triggered it, and why: the message loop's input
    business_incident_reason: str = ""
    comms_workflow_id: str = ""  # the message loop's workflow id, once the business incident started
    reopens: int = 0
    resolutions: int = 0
    aftermath_of: int = 0  # the resolution whose post-incident steps have begun
    review_due: datetime | None = None
    next_review_reminder: datetime | None = None
    postmortem_location: str = ""
    postmortem_url: str = ""
    checklist: dict[str, bool] = Field(default_factory=lambda: dict.fromkeys(CHECKLIST, False))
    channel_posts: list[ChannelPost] = Field(default_factory=list)  # waiting for the channel, in order
    decisions_taken: dict[str, int] = Field(default_factory=dict)  # name -> how many, for step keys
    timeline: list[TimelineEntry] = Field(default_factory=list)
    waiting_on: list[str] = Field(default_factory=list)  # "who owes what", for people and the UI

    @property
    def occurrence(self) -> str:
        """The incident id and when it opened: an alert group that fires again after its incident
        closed is a new run of the same id, and its deliveries must not look like the old ones'."""
        return occurrence(self.incident_id, self.opened_at)

    def enter(self, phase: Phase) -> None:
        self.phase = phase
        self.phases_entered.append(phase)

    def facts(self, ui_url: str = "") -> IncidentFacts:
        return IncidentFacts(
            incident_id=self.incident_id, title=self.title, service=self.service,
            severity=self.severity, phase=self.phase, opened_at=self.opened_at,
            summary=self.description, ui_url=ui_url,
        )
