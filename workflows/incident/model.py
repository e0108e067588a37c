"""The incident's data: alerts, the timeline, the decisions people take, and the state it keeps.

Every model here travels through Temporal's pydantic data converter, so it is part of running
incidents' histories: add fields with defaults, never rename or remove one.
"""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, Field, model_validator

from workflows.contracts import limits
from workflows.contracts.roles import RoleHolders
from workflows.contracts.trust.proof import Proven
from workflows.contracts.vocabulary import (
    AlertStatus,
    Audience,
    Channel,
    CriticalCriterion,
    IncidentKind,
    Phase,
    Role,
    Scope,
    Severity,
    Status,
    occurrence,
)
from workflows.recovery.model import Task, TaskStatus

# --- alerts ------------------------------------------------------------------------------------


class Silence(BaseModel):
    """Alerts of `service` (and carrying every `matchers` label) page nobody until `until`."""

    silence_id: str
    service: str
    matchers: dict[str, str] = Field(default_factory=dict)
    start: datetime
    until: datetime
    reason: str
    by: str = ""
    held: list[str] = Field(default_factory=list)  # incidents waiting for this window's end (SilencesWorkflow)

    def matches(self, service: str, labels: dict[str, str], at: datetime) -> bool:
        return (
            self.start <= at < self.until
            and self.service == service
            and all(labels.get(k) == v for k, v in self.matchers.items())
        )


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
    silence: Silence | None = None  # the maintenance window it arrived in, as the HTTP service found it

    @model_validator(mode="after")
    def _shortened(self) -> AlertEvent:
        """An alert over the limits that got past the door (started straight in Temporal) is shortened, not
        refused: its incident still pages, and no search attribute or peer refuses its text."""
        self.title = limits.cut(self.title, limits.TITLE.value_bytes)
        self.description = limits.cut(self.description, limits.DESCRIPTION.value_bytes)
        self.service = limits.cut(self.service, limits.SERVICE.value_bytes)
        self.dedup_key = limits.cut(self.dedup_key, limits.DEDUP_KEY.value_bytes)
        self.fingerprint = limits.cut(self.fingerprint, limits.FINGERPRINT.value_bytes)
        self.labels = limits.cut_map(self.labels, limits.LABELS)
        self.links = [limits.cut(link, limits.LINK.value_bytes) for link in self.links[: limits.LINKS.entries]]
        return self

    def critical(self, criterion_label: str) -> list[CriticalCriterion]:
        """Seed 002's critical criteria the alert carries: its own, and its criterion label's value."""
        label = self.labels.get(criterion_label, "")
        known = label in CriticalCriterion.__members__.values()
        return [*self.criteria, CriticalCriterion(label)] if known else list(self.criteria)


# --- timeline and state ------------------------------------------------------------------------


class TimelineEntry(BaseModel):
    at: datetime
    kind: str
    text: str
    actor: str | None = None


class Handover(BaseModel):
    """Seed 001: a change of scope hands the incident to the other owner; both are told."""

    at: datetime
    from_owner: str
    to_owner: str
    scope: Scope
    told: bool = False


class Evaluation(BaseModel):
    """Seed 001's client-communication evaluation point: the owner decides whether and how clients are told."""

    number: int
    point: str  # what made it one: "confirmed", "phase monitoring", "status update 2"
    phase: Phase  # the phase whose client messages the answer is about
    asked_of: str = ""
    asked_at: datetime
    asks: int = 1  # asked again at each later point while unanswered
    tell: bool | None = None  # None: waiting for the owner's answer
    audiences: list[Audience] = Field(default_factory=list)  # how: the client audiences to tell
    reason: str = ""
    decided_by: str = ""
    decided_at: datetime | None = None


# --- human decisions: each is an Update and a Signal of the same name --------------------------


class Decision(Proven):
    """Who decided, as the service that signed it says (workflows/contracts/trust/proof.py). The validator checks their
    role in the policy and the incident's state."""

    actor: str


class Acknowledge(Decision):
    note: str = ""
    via: str = ""  # how a page reached the person who acknowledges from it ("SMS"), set by the HTTP service


class Escalate(Decision):
    """The person paged hands the page on: the next tier is paged now (a keypress in a page's call)."""

    via: str = ""


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
    """Seed 003: a recovery task for `assignee`; the systems it restores rank it by their RTO."""

    title: str = Field(min_length=1, max_length=200)
    assignee: str
    systems: list[str] = Field(default_factory=list, max_length=10)
    due_minutes: int | None = Field(default=None, gt=0, le=7 * 24 * 60)  # none: the systems' RTO
    business_impact: Severity = Severity.SEV3


class ReassignTask(Decision):
    task_id: str
    assignee: str
    reason: str = Field(default="", max_length=1000)


class ReprioritiseTask(Decision):
    """Seed 003's "shifting recovery priorities": other systems, another impact or a new due time."""

    task_id: str
    systems: list[str] | None = Field(default=None, max_length=10)
    business_impact: Severity | None = None
    due_minutes: int | None = Field(default=None, gt=0, le=7 * 24 * 60)
    reason: str = Field(min_length=1, max_length=1000)


class UpdateTask(Decision):
    """Progress on a task: a note, and perhaps its new status (done has its own decision)."""

    task_id: str
    note: str = Field(min_length=1, max_length=1000)
    status: TaskStatus | None = None


class CompleteTask(Decision):
    task_id: str
    note: str = Field(default="", max_length=1000)


class EscalateTask(Decision):
    """Seed 003: "escalates issues to the appropriate decision-makers, providing relevant context and
    recommending actions"."""

    task_id: str
    recommendation: str = Field(min_length=1, max_length=1000)


class ReportDataLoss(Decision):
    """Seed 003's RPO: how many minutes of data the recovery point loses."""

    minutes: int = Field(ge=0)


class EvaluateClients(Decision):
    """The owner's answer at an evaluation point: tell clients now (through which client audiences) or not now."""

    tell: bool
    audiences: list[Audience] = Field(default_factory=list)  # empty: every client audience of the policy
    reason: str = Field(min_length=1)


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


class PlanUpdated(Decision):
    """Seeds 000, 003: the review's changes to the response, communication or recovery plan, recorded."""

    changes: str = Field(min_length=1, max_length=5000)
    url: str = Field(default="", max_length=2048)


class SendResolution(Decision):
    """Seed 000: "the Communications lead should communicate this to all relevant parties": in her words, or
    the resolution as drafted."""

    text: str = Field(default="", max_length=15_000)


class PublishPostmortem(Decision):
    url: str = ""


class CloseIncident(Decision):
    """Seed 001's completion: the stakeholders satisfied, the preventive measures in place (post_incident.
    completion_checks)."""

    stakeholders_satisfied: bool = False
    preventive_measures: str = ""


class AddActionItem(Decision):
    """A follow-up of the postmortem: what, whose, by when (an issue in Jira or Linear, policy `follow_ups`)."""

    title: str = Field(min_length=1, max_length=250)
    owner: str
    due: date | None = None


class DraftStatement(Decision):
    """Words for parties outside the incident (seed 000's billers, vendors, software providers)."""

    parties: list[str] = Field(min_length=1)  # names in the policy's comms.external_parties, or "client_contacts"
    subject: str = Field(min_length=1)
    text: str = Field(min_length=1)


class ApproveStatement(Decision):
    statement_id: str
    text: str = ""  # the Communications Lead's own wording, when she edits the draft


class WithholdStatement(Decision):
    statement_id: str
    reason: str = Field(min_length=1)


class RequestChannel(Decision):
    """Seed 000: no extra Slack channel unless the Incident Commander or Communications Lead approved it."""

    name: str = Field(min_length=1, max_length=40)
    reason: str = Field(min_length=1)


class ApproveChannel(Decision):
    request_id: str


class DeclineChannel(Decision):
    request_id: str
    reason: str = Field(min_length=1)


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
    roles: RoleHolders = Field(default_factory=RoleHolders)  # the message loop's answer to who holds a role
    conference_url: str = ""  # the incident's call, once it is open


class PhaseChanged(BaseModel):
    """Sent by IncidentWorkflow to its CommsWorkflow when the incident moves phase (or closes)."""

    phase: Phase
    facts: IncidentFacts


class ClientsEvaluated(BaseModel):
    """Sent by IncidentWorkflow to its CommsWorkflow: the owner's answer at an evaluation point, which releases
    the phase's client messages for drafting or skips them."""

    number: int
    phase: Phase
    tell: bool
    audiences: list[Audience]
    reason: str
    by: str


class AlertSeen(BaseModel):
    status: AlertStatus
    count: int = 1
    title: str = ""
    last_at: datetime | None = None
    changed_at: datetime | None = None  # when it last went from firing to resolved or back
    flapping: bool = False  # it changed again before a quiet period (lifecycle.FLAP_QUIET) passed


class ChatButton(BaseModel):
    """A button that takes a decision as whoever clicks it: a decision's name in the registry
    (workflows/contracts/decisions.py) and its fields, `incident_id` among them."""

    label: str
    decision: str
    fields: dict[str, str]


class ChannelPost(BaseModel):
    """A message waiting for its turn in the incident channel: posts keep their order there."""

    text: str
    key: str  # the step it belongs to; with the incident's occurrence, its idempotency key
    mentions: list[str] = Field(default_factory=list)  # person ids: each chat mentions them by its own id
    revises: bool = False  # replace the text posted under this key (the welcome, once the bridge is known)
    buttons: list[ChatButton] = Field(default_factory=list)


class HeldStatement(BaseModel):
    """Words addressed outside the incident. They leave only once the Communications Lead approved them
    (seed 000), in her wording; the internal copies went out when they were written."""

    statement_id: str  # S1, S2, ... in the order they were written
    about: str  # "status update", "resolution", "statement"
    subject: str
    text: str
    parties: list[str]  # which external parties, by the policy's names
    recipients: list[str]  # their e-mail addresses
    drafted_by: str
    drafted_at: datetime
    approved: bool | None = None  # None: waiting for the Communications Lead
    decided_by: str = ""
    decided_at: datetime | None = None
    reason: str = ""  # why it was withheld

    @property
    def fate(self) -> str:
        """waiting, approved or withheld (a property: not part of the state that is stored or sent)."""
        return "waiting" if self.approved is None else ("approved" if self.approved else "withheld")


class ChannelRequest(BaseModel):
    request_id: str  # C1, C2, ...
    name: str
    reason: str
    requested_by: str
    requested_at: datetime
    approved: bool | None = None  # None: waiting for the Incident Commander or Communications Lead
    decided_by: str = ""
    reason_declined: str = ""
    channel: str = ""  # the channel's name once it exists

    @property
    def fate(self) -> str:
        """waiting, approved or declined (a property: not part of the state that is stored or sent)."""
        return "waiting" if self.approved is None else ("approved" if self.approved else "declined")


class ActionItem(BaseModel):
    item_id: str  # A1, A2, ... in the order they were added
    title: str
    owner: str
    due: date | None = None
    added_by: str
    issue: str = ""  # the follow-up issue's key in Jira or Linear, once it exists
    url: str = ""


class RecordProgress(BaseModel):
    """How far the incident's record in the policy's register is written (workflows/records/)."""

    started: bool = False  # its writer (RecordWorkflow) was started
    record_id: str = ""
    url: str = ""
    written: int = 0  # history entries (the timeline but its alert lines) the record held at the last sync


CHECKLIST = (
    "project_log",
    "global_log",
    "pmo_notified",
    "postmortem_drafted",
    "review_held",
    "plan_updated",
    "postmortem_published",
)


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
    channel: str = ""  # the incident channel's name, once it exists in a chat
    chat_channels: dict[Channel, str] = Field(default_factory=dict)  # chat -> its channel's id there
    conference_url: str = ""
    page_keys: list[str] = Field(default_factory=list)  # paging alerts to acknowledge and close
    assessment_requested: bool = False
    assessment_reminders: int = 0  # how often the assessors were asked again (triage.when_unassessed = remind)
    escalation_round: int = 0  # the round of paging the incident calls for (a reopen or a raise adds one)
    escalation_started: int = 0  # the round whose ladder was started
    escalation_active: bool = False
    # When the round's ladder must go on past tier 1: tier 1 is paged and waited on by the incident itself,
    # and the ladder's child workflow is started only then (None: started, or no round waiting).
    ladder_due: datetime | None = None
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
    handovers: list[Handover] = Field(default_factory=list)  # owners by scope, one after the other (seed 001)
    evaluations: list[Evaluation] = Field(default_factory=list)  # client-communication evaluation points (seed 001)
    # seed 001's disturbance: when its owner follows it up next, how often they were reminded, and how many times
    # it was taken up (classified or downgraded) and its owner told of it
    follow_up_due: datetime | None = None
    follow_ups: int = 0
    disturbances_taken_up: int = 0
    disturbances_told: int = 0
    business_incident: bool = False
    business_incident_by: str = ""  # who (or "policy") triggered it, and why: the message loop's input
    business_incident_reason: str = ""
    comms_workflow_id: str = ""  # the message loop's workflow id, once the business incident started
    reopens: int = 0
    resolutions: int = 0
    aftermath_of: int = 0  # the resolution whose post-incident steps have begun
    resolution_sent: int = 0  # the resolution whose message went out (seed 000: by the Communications Lead)
    review_due: datetime | None = None
    next_review_reminder: datetime | None = None
    postmortem_location: str = ""
    postmortem_url: str = ""
    checklist: dict[str, bool] = Field(default_factory=lambda: dict.fromkeys(CHECKLIST, False))
    # per chat, the posts waiting for its channel, in order: a chat that is down holds back only its own
    channel_posts: dict[Channel, list[ChannelPost]] = Field(default_factory=dict)
    statements: list[HeldStatement] = Field(default_factory=list)  # words for external parties (seed 000)
    channel_requests: list[ChannelRequest] = Field(default_factory=list)  # extra Slack channels (seed 000)
    decisions_taken: dict[str, int] = Field(default_factory=dict)  # name -> how many, for step keys
    timeline: list[TimelineEntry] = Field(default_factory=list)
    timeline_dropped: int = 0  # the oldest alert entries left out of the timeline (lifecycle.ALERT_ENTRIES_KEPT)
    recurrences_told: int = 0  # the resolution whose recurrence the Incident Commander was told of
    applied_updates: dict[str, str] = Field(default_factory=dict)  # update id -> answer, the latest few
    waiting_on: list[str] = Field(default_factory=list)  # "who owes what", for people and the UI
    on_call: dict[str, str] = Field(default_factory=dict)  # schedule -> who was on call at the last lookup
    silence: Silence | None = None  # the maintenance window holding the unconfirmed incident
    windows: list[Silence] = Field(default_factory=list)  # every window its alerts arrived in, as they end
    record: RecordProgress = Field(default_factory=RecordProgress)
    action_items: list[ActionItem] = Field(default_factory=list)  # the postmortem's follow-ups

    @property
    def occurrence(self) -> str:
        """The incident id and when it opened: an alert group that fires again after its incident
        closed is a new run of the same id, and its deliveries must not look like the old ones'."""
        return occurrence(self.incident_id, self.opened_at)

    def enter(self, phase: Phase) -> None:
        self.phase = phase
        self.phases_entered.append(phase)

    @property
    def roles(self) -> RoleHolders:
        return RoleHolders(assigned=self.assigned, on_call=self.on_call)

    def facts(self, ui_url: str = "") -> IncidentFacts:
        return IncidentFacts(
            incident_id=self.incident_id,
            title=self.title,
            service=self.service,
            severity=self.severity,
            phase=self.phase,
            opened_at=self.opened_at,
            summary=self.description,
            ui_url=ui_url,
            roles=self.roles,
            conference_url=self.conference_url,
        )
