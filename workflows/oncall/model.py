"""What the on-call workflows (schedules' overrides, heartbeats, maintenance windows) take and answer.

Kept out of the workflow modules, like inputs.py. Part of running workflows' histories: add fields with
defaults, never rename one; remove one only from a model without extra="forbid" (old histories still
carry it, and decoding ignores it).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field

from workflows.contracts.trust.proof import Proven
from workflows.contracts.vocabulary import Severity
from workflows.incident.model import AlertEvent, Silence
from workflows.oncall.rotation import Override


class Heartbeat(BaseModel):
    """A heartbeat the policy expects: a beat at least every `interval_minutes`, `grace_minutes` of slack;
    a missed one opens an incident of this severity and service, and the next beat resolves it."""

    model_config = ConfigDict(extra="forbid", frozen=True)  # part of a policy (workflows.policy._Strict)

    interval_minutes: int = Field(gt=0)
    grace_minutes: int = Field(default=0, ge=0)
    severity: Severity = Severity.SEV2
    service: str = ""
    title: str = ""  # default: "Heartbeat <name> missed"

    def deadline(self) -> timedelta:
        return timedelta(minutes=self.interval_minutes + self.grace_minutes)


# --- overrides: ScheduleWorkflow ---------------------------------------------------------------


class ScheduleInput(BaseModel):
    schedule: str
    overrides: list[Override] = Field(default_factory=list)  # carried over by continue-as-new
    next_number: int = 1
    # a run of this many events continues as new (our own limit: the test server suggests it early)
    history_limit: int = 5000


class AddOverride(Proven):
    who: str
    start: datetime
    end: datetime
    by: str = ""
    reason: str = ""


class RemoveOverride(Proven):
    override_id: str
    by: str = ""


class OverridesRequest(BaseModel):
    schedules: list[str]


class OverridesAnswer(BaseModel):
    """Each schedule's overrides; a schedule nobody ever overrode has none."""

    overrides: dict[str, list[Override]] = Field(default_factory=dict)


# --- heartbeats: HeartbeatWorkflow -------------------------------------------------------------


class Beat(BaseModel):
    """One beat, with the heartbeat's declaration as the policy has it now (an edited policy applies
    from the next beat)."""

    name: str
    heartbeat: Heartbeat


class HeartbeatInput(BaseModel):
    name: str
    beats: int = 0  # carried over by continue-as-new
    missed_since: datetime | None = None  # an incident is open for this miss
    heartbeat: Heartbeat | None = None  # the latest declaration
    last_beat: datetime | None = None  # carried over: the deadline still counts from it
    # a run of this many events continues as new (our own limit: the test server suggests it early)
    history_limit: int = 5000


class HeartbeatState(BaseModel):
    name: str
    beats: int
    last_beat: datetime | None = None
    due: datetime | None = None
    missed_since: datetime | None = None


class HeartbeatAlert(BaseModel):
    """The alert a missed (firing) or resumed (resolved) heartbeat sends, through the alert path."""

    event: AlertEvent


class HeartbeatQuestion(BaseModel):
    name: str


class HeartbeatDeclared(BaseModel):
    """The heartbeat as the worker's policy file declares it now; None: it declares it no longer."""

    heartbeat: Heartbeat | None = None


class AlertSent(BaseModel):
    incident_id: str
    opened: bool


# --- maintenance windows: SilencesWorkflow ------------------------------------------------------


class AddSilence(Proven):
    service: str
    matchers: dict[str, str] = Field(default_factory=dict)
    until: datetime
    reason: str
    by: str = ""


class ExpireSilence(Proven):
    silence_id: str
    by: str = ""


class SilencesInput(BaseModel):
    silences: list[Silence] = Field(default_factory=list)
    next_number: int = 1
    # a run of this many events continues as new (our own limit: the test server suggests it early)
    history_limit: int = 5000


class HoldIncident(BaseModel):
    """Sent by an incident to the window it waits for."""

    silence_id: str
    incident_id: str


class SilenceLifted(BaseModel):
    silence_id: str
    reason: str
