"""A recovery task as the incident keeps it. Part of running incidents' histories: add fields with defaults."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field

from workflows.contracts.vocabulary import Severity


class TaskStatus(StrEnum):
    OPEN = "open"
    IN_PROGRESS = "in_progress"
    BLOCKED = "blocked"
    DONE = "done"


class TaskNote(BaseModel):
    at: datetime
    by: str
    text: str


class Task(BaseModel):
    """Seed 003: "tasks are organized and prioritized based on the business impact and recovery time
    objectives (RTO)": the shortest RTO of the systems it restores first, its business impact next."""

    task_id: str
    title: str
    assignee: str
    systems: list[str] = Field(default_factory=list)  # services of the policy it restores
    rto_minutes: int | None = None  # the shortest RTO of those systems, when the task was last prioritised
    business_impact: Severity = Severity.SEV3
    status: TaskStatus = TaskStatus.OPEN
    due: datetime | None = None
    notes: list[TaskNote] = Field(default_factory=list)  # the latest few (rules.NOTES_KEPT)
    nudged_at: datetime | None = None  # its owner was reminded once it ran late
    escalated_at: datetime | None = None  # the decision-makers were told
    created_at: datetime | None = None
    done_at: datetime | None = None

    @property
    def done(self) -> bool:
        return self.status is TaskStatus.DONE

    @property
    def priority(self) -> str:
        """How the plan ranks it, in words."""
        rto = f"RTO {self.rto_minutes} min" if self.rto_minutes else "no RTO"
        return f"{rto}, {self.business_impact.priority} impact"
