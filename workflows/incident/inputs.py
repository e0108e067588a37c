"""What IncidentWorkflow and its escalation ladder are started with, return and tell each other.

Kept out of the workflow modules: the sandbox runs a workflow's module afresh for every new workflow,
and building pydantic classes there cost a tenth of the worker's time in an alert storm. Part of
running workflows' histories: add fields with defaults, never rename or remove one."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from workflows.contracts.policy import Policy
from workflows.contracts.vocabulary import Channel, Role, Severity
from workflows.incident.model import AlertEvent, IncidentState


class EscalationInput(BaseModel):
    incident_id: str
    policy: Policy
    round: int = 1
    title: str
    severity: Severity
    assigned: dict[Role, str] = Field(default_factory=dict)
    ui_url: str = ""
    occurrence: str = ""  # prefix of idempotency keys (IncidentState.occurrence)


def tier_page(input: EscalationInput, ladder: int, number: int) -> tuple[str, str]:
    """What a tier is told, and the step key its deliveries carry: one text whoever pages it."""
    text = (
        f"[{input.severity.value}] {input.incident_id}: {input.title} needs an acknowledgement "
        f"(tier {number}{f', repeat {ladder}' if ladder else ''}). {input.ui_url}"
    ).strip()
    return text, f"escalation:r{input.round}:l{ladder}:t{number}"


class StopEscalation(BaseModel):
    reason: str


class HandOn(BaseModel):
    """The person paged asked for the next tier now (an Escalate decision): their own later methods stop too."""

    person: str


class EscalationResult(BaseModel):
    stopped_because: str = ""
    tiers_reached: int = 0
    page_keys: list[str] = Field(default_factory=list)


class EscalationNotice(BaseModel):
    """Sent by EscalationWorkflow to its incident for the timeline: who was reached, how, when."""

    at: datetime
    tier: int
    round: int
    people: list[str]
    channels: list[Channel]
    text: str
    page_keys: list[str] = Field(default_factory=list)
    occurrence: str = ""  # which occurrence of the incident the ladder belongs to
    exhausted: bool = False  # every tier (and repeat) reached and nobody acknowledged


class IncidentInput(BaseModel):
    incident_id: str
    policy: Policy
    ui_url: str = ""  # link to this incident in the Temporal UI, for messages
    state: IncidentState | None = None  # carried over by continue-as-new
    # a run of this many events continues as new, well before Temporal's limits (and its suggestion)
    history_limit: int = 5000
    # The alert that opens the incident, when the HTTP service starts it (eagerly, see client/alerts.py)
    # rather than by signal-with-start: it counts before any alert signalled later.
    first_alert: AlertEvent | None = None
    # Alerts after the first, in order: the next occurrence's, when they fired as the last one was closing.
    later_alerts: list[AlertEvent] = Field(default_factory=list)
