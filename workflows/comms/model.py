"""Data types of seed 004's Message Creation Loop: the CommsWorkflow's input, state, steps and results.

Every model here travels through Temporal's pydantic data converter and is part of running comms
workflows' histories: add fields with defaults, never rename or remove one.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field, field_validator

from workflows.contracts.policy import Policy
from workflows.contracts.vocabulary import EXTERNAL_AUDIENCES, Audience, Phase, Role
from workflows.incident.model import ClientsEvaluated, Decision, IncidentFacts, PhaseChanged, TimelineEntry


class Step(StrEnum):
    """Where a message is in the loop. Distribution runs only after every approval is on record."""

    QUEUED = "queued"  # behind an earlier audience of the phase
    DRAFTING = "drafting"  # the Technical SLT owes the draft
    IN_REVIEW = "in_review"  # the reviewers owe reviews; an open strong objection blocks
    APPROVAL = "approval"  # the ELT Approver (and, for external audiences, the Communications Lead)
    SEND_APPROVAL = "send_approval"  # the Incident Commander owes the approval to send
    DISTRIBUTING = "distributing"  # the workflow is sending it
    CONFIRMING = "confirming"  # sent; the distributor owes the confirmation
    SENT = "sent"
    SKIPPED = "skipped"
    SUPERSEDED = "superseded"  # the incident moved phase before it was sent


UNSENT = (Step.QUEUED, Step.DRAFTING, Step.IN_REVIEW, Step.APPROVAL, Step.SEND_APPROVAL)
FINISHED = (Step.SENT, Step.SKIPPED, Step.SUPERSEDED)


class Verdict(StrEnum):
    APPROVE = "approve"
    OBJECT = "object"


class ApprovalKind(StrEnum):
    ELT = "elt"  # the ELT Approver authorises release
    EXTERNAL = "external"  # seed 000: the Communications Lead approves every external message
    SEND = "send"  # the Incident Commander approves sending


# --- the workflow's input and result -----------------------------------------------------------


class CommsInput(BaseModel):
    facts: IncidentFacts
    policy: Policy
    triggered_by: str
    reason: str = ""
    state: CommsState | None = None  # carried by continue-as-new


class LoopStart(BaseModel):
    """What the incident asks the start_message_loop activity to start."""

    workflow_id: str
    input: CommsInput


class CommsSummary(BaseModel):
    incident_id: str
    sent: list[str] = Field(default_factory=list)  # message ids
    unconfirmed: list[str] = Field(default_factory=list)  # sent, distributor has not confirmed
    skipped: list[str] = Field(default_factory=list)
    superseded: list[str] = Field(default_factory=list)
    statuspage_incident_id: str = ""


# --- state -------------------------------------------------------------------------------------


class Version(BaseModel):
    """One version of a message's text. Every version is kept, with its author."""

    number: int
    author: str
    at: datetime
    subject: str
    text: str
    html: str = ""
    source: str = ""  # the template it was rendered from, or "edit" / "objection resolved"
    note: str = ""


class ReviewStatus(BaseModel):
    """One reviewer role's review. An approval counts only for the version it was given on."""

    role: Role
    verdict: Verdict | None = None
    by: str | None = None
    at: datetime | None = None
    version: int | None = None


class Objection(BaseModel):
    """A strong objection: the message goes no further until the Technical SLT resolves it."""

    number: int
    by: str
    role: Role
    reason: str
    at: datetime
    version: int
    resolved_by: str | None = None
    resolved_at: datetime | None = None
    resolution: str = ""


class Suggestion(BaseModel):
    """A reviewer's wording. Seed 004: "Make wording suggestions to the Technical SLT, but ultimately it is their
    tone and voice that takes precedence": it becomes the text only when the Technical SLT accepts it."""

    number: int
    by: str
    at: datetime
    version: int  # the version it was made on
    subject: str
    text: str
    note: str = ""
    accepted: bool | None = None  # None: the Technical SLT has not decided
    decided_by: str | None = None
    reason: str = ""


class Approval(BaseModel):
    kind: ApprovalKind
    by: str
    at: datetime
    version: int
    note: str = ""


class Owed(BaseModel):
    """Something a person owes on a message, with their estimate: who is waiting on whom."""

    key: str  # "draft", "review:legal_officer", "resolve:1", "authorize", ...
    what: str  # for people: "review", "resolve objection 1 (dana)"
    role: Role
    people: list[str]
    since: datetime
    due: datetime
    estimated_by: str | None = None  # None: the policy's default estimate
    estimate_number: int = 0
    asked: int = 0  # the message's ask number when the owner was asked; 0: not yet
    nudged: bool = False  # the Business Lead has checked back at least once on this estimate
    minutes: int = 0  # the estimate's length; 0: the policy's default
    check_backs: int = 0  # on this estimate: each further length of silence checks back again


class Delivery(BaseModel):
    channel: str  # "slack", "email", "statuspage"
    target: str
    idempotency_key: str
    delivered_to: str = ""
    error: str = ""


class CommsMessage(BaseModel):
    """One message: a phase x an audience, e.g. "investigation/internal_stakeholders"."""

    message_id: str
    phase: Phase
    audience: Audience
    step: Step = Step.QUEUED
    created_at: datetime
    drafted_by: str | None = None
    pending_draft: Draft | None = None  # recorded by the `draft` handler, rendered by the loop
    draft_error: str = ""
    versions: list[Version] = Field(default_factory=list)
    reviews: list[ReviewStatus] = Field(default_factory=list)
    objections: list[Objection] = Field(default_factory=list)
    suggestions: list[Suggestion] = Field(default_factory=list)
    approvals: list[Approval] = Field(default_factory=list)
    waiting_on: list[Owed] = Field(default_factory=list)
    owner: str = ""  # the people the message waits on, for a glance
    due: datetime | None = None  # the earliest of their estimates
    asks: int = 0  # how many times people were asked for something on this message
    liaison_alerted: bool = False
    liaison_told_ready: bool = False
    told_business_lead: list[str] = Field(default_factory=list)  # news sent to the Business Lead, by key
    deliveries: list[Delivery] = Field(default_factory=list)
    sent_at: datetime | None = None
    confirmed_by: str | None = None
    confirmed_at: datetime | None = None
    ended_by: str | None = None  # who skipped it
    ended_reason: str = ""  # why it was skipped or superseded

    @property
    def current(self) -> Version | None:
        return self.versions[-1] if self.versions else None

    @property
    def external(self) -> bool:
        return self.audience in EXTERNAL_AUDIENCES

    def approved(self, kind: ApprovalKind) -> Approval | None:
        version = self.current.number if self.current else 0
        return next((a for a in self.approvals if a.kind is kind and a.version == version), None)

    def open_objections(self) -> list[Objection]:
        return [o for o in self.objections if o.resolved_by is None]

    def open_suggestions(self) -> list[Suggestion]:
        return [s for s in self.suggestions if s.accepted is None]


class CommsState(BaseModel):
    """Everything the comms workflow knows: what the `state` query returns and continue-as-new carries."""

    incident_id: str
    facts: IncidentFacts
    triggered_by: str
    reason: str = ""
    triggered_at: datetime
    phase: Phase  # the incident's phase as last heard
    round_phase: Phase | None = None  # the phase whose messages are being created
    round: list[str] = Field(default_factory=list)  # that phase's message ids
    next_phase: PhaseChanged | None = None  # recorded by the phase signal, applied by the loop
    audience_order: list[Audience] = Field(default_factory=list)
    messages: list[CommsMessage] = Field(default_factory=list)
    # seed 001: the owner's answers at evaluation points, heard and not yet applied; the client messages they
    # released for drafting (policy comms.evaluation_points)
    evaluations_heard: list[ClientsEvaluated] = Field(default_factory=list)
    released: list[str] = Field(default_factory=list)
    statuspage_incident_id: str = ""
    closed: bool = False
    status: str = ""  # the status line the Temporal UI shows
    log: list[TimelineEntry] = Field(default_factory=list)


# --- the steps: each an Update (validated) and a Signal of the same name -----------------------


class MessageStep(Decision):
    """A step on one message, by its id ("identification/strategic_customers")."""

    message_id: str


class Draft(MessageStep):
    """The Technical SLT drafts from the phase x audience template, or writes the text outright."""

    values: dict[str, str] = Field(default_factory=dict)  # placeholder -> text, e.g. impact
    subject: str = ""
    text: str = ""  # written text instead of the template

    @field_validator("values")
    @classmethod
    def _placeholder_names(cls, value: dict[str, str]) -> dict[str, str]:
        bad = sorted(name for name in value if not name.isidentifier())
        if bad:
            raise ValueError(f"placeholder names must be identifiers like next_update, not {bad}")
        return value


class Edit(MessageStep):
    text: str
    subject: str = ""
    note: str = ""


class Review(MessageStep):
    verdict: Verdict
    reason: str = ""  # required with an objection


class ResolveObjection(MessageStep):
    objection: int
    resolution: str
    text: str = ""  # the revised text, when the resolution changes it
    subject: str = ""


class DecideEdit(MessageStep):
    """accept_edit or decline_edit: the Technical SLT on a reviewer's suggested wording."""

    suggestion: int
    reason: str = ""


class Approve(MessageStep):
    """authorize (ELT), approve_external (Communications Lead), approve_send (Incident Commander)."""

    note: str = ""


class ConfirmSent(MessageStep):
    note: str = ""


class Skip(MessageStep):
    reason: str


class GiveEstimate(MessageStep):
    """Whoever owes something on the message says when it will be done."""

    minutes: int = Field(gt=0, le=24 * 60)
    note: str = ""


class SetAudienceOrder(Decision):
    order: list[Audience]


# --- the statement renderer's activity input and result ----------------------------------------


class RenderStatement(BaseModel):
    phase: Phase
    audience: Audience
    facts: IncidentFacts
    organisation: str = ""
    templates_dir: str = ""  # the policy's comms.templates_dir; empty: the repository's templates only
    timezone: str = "UTC"  # the policy's business_hours.timezone: times are written there, with UTC alongside
    values: dict[str, str] = Field(default_factory=dict)
    subject: str = ""
    text: str = ""  # the drafter's own text: rendered from no template


class RenderedStatement(BaseModel):
    subject: str
    text: str
    html: str = ""
    template: str = ""


CommsInput.model_rebuild()
LoopStart.model_rebuild()
CommsMessage.model_rebuild()
CommsState.model_rebuild()
