"""The recovery plan's rules: plain functions over the incident's state, like incident/rules.py
(tests/workflows/test_recovery_rules.py).

Seed 003: "Task Prioritization: Ensure tasks are organized and prioritized based on the business impact and
recovery time objectives (RTO). For example, if a critical system is down, those tasks must take precedence";
"Escalate Delays: If certain recovery tasks are delayed or not progressing as planned, the POC is responsible
for escalating these issues to the relevant leadership or decision-makers".
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from workflows.contracts.policy import Policy
from workflows.contracts.refusal import Refusal, Rule
from workflows.contracts.vocabulary import Status
from workflows.incident.lifecycle import progress_window
from workflows.incident.model import (
    AssignTask,
    CompleteTask,
    Decision,
    EscalateTask,
    IncidentState,
    ReassignTask,
    ReprioritiseTask,
    UpdateTask,
)
from workflows.recovery.model import Task, TaskNote, TaskStatus
from workflows.recovery.view import task_line

# A plan a person can read at a glance, and a state that stays small: a task beyond this is refused.
TASKS_PER_INCIDENT = 50
# Progress notes a task keeps (the timeline keeps every one).
NOTES_KEPT = 20


class Chase(StrEnum):
    NUDGE = "nudge"  # the task is past due: its owner is reminded
    ESCALATE = "escalate"  # still late after the policy's grace: the decision-makers are told


# --- the plan's order and clock ----------------------------------------------------------------------------


def shortest_rto(policy: Policy, systems: list[str]) -> int | None:
    rtos = [rto for name in systems if (service := policy.services.get(name)) and (rto := service.rto_minutes)]
    return min(rtos, default=None)


def prioritised(tasks: list[Task]) -> list[Task]:
    """Open tasks first; the shortest RTO of the systems restored first (none: last), then the gravest
    business impact, then the order they were added in."""
    return sorted(
        tasks,
        key=lambda t: (t.done, t.rto_minutes is None, t.rto_minutes or 0, t.business_impact.value, _number(t)),
    )


def _number(task: Task) -> int:
    return int(task.task_id.removeprefix("T"))


def due_time(
    s: IncidentState, policy: Policy, due_minutes: int | None, rto_minutes: int | None, now: datetime
) -> datetime | None:
    """When the task is due: in `due_minutes`, else by its systems' RTO (counted from the incident's opening,
    as the RTO is), else never."""
    if due_minutes:
        return now + timedelta(minutes=due_minutes)
    return s.opened_at + timedelta(minutes=rto_minutes) if rto_minutes else None


def _chasing(s: IncidentState) -> bool:
    return s.confirmed and s.status is not Status.CLOSED


def next_chase(s: IncidentState, policy: Policy) -> datetime | None:
    """The next moment a late task is to be chased: its due time (nudge), then the policy's grace after it
    (escalate)."""
    if not _chasing(s):
        return None
    grace = timedelta(minutes=policy.response.task_escalate_after_minutes)
    moments = [
        t.due if t.nudged_at is None else t.due + grace
        for t in s.tasks
        if not t.done and t.due is not None and t.escalated_at is None
    ]
    return min(moments, default=None)


def chases_due(s: IncidentState, policy: Policy, now: datetime) -> list[tuple[Task, Chase]]:
    """The late tasks to chase now, marked as chased: a nudge to the owner once it is due, and an escalation
    once it is still open the policy's grace after that."""
    if not _chasing(s):
        return []
    grace = timedelta(minutes=policy.response.task_escalate_after_minutes)
    due: list[tuple[Task, Chase]] = []
    for t in s.tasks:
        if t.done or t.due is None or t.escalated_at is not None:
            continue
        if t.nudged_at is None and t.due <= now:
            t.nudged_at = now
            due.append((t, Chase.NUDGE))
        elif t.nudged_at is not None and t.due + grace <= now:
            t.escalated_at = now
            due.append((t, Chase.ESCALATE))
    return due


# --- what people read of it ----------------------------------------------------------------------------------


def task_by_id(s: IncidentState, task_id: str) -> Task:
    task = next((t for t in s.tasks if t.task_id == task_id), None)
    if task is None:
        known = ", ".join(t.task_id for t in s.tasks) or "none yet"
        raise Refusal(f"no task {task_id} on {s.incident_id} (tasks: {known})")
    return task


# --- the checks ----------------------------------------------------------------------------------------------


def _while_open(s: IncidentState, what: str) -> None:
    if s.status is not Status.OPEN:
        raise Refusal(f"{s.incident_id} is {s.status.value}: {what} only while it is open")


def _person(policy: Policy, person: str) -> None:
    if person not in policy.people:
        raise Refusal(f"{person!r} is not a person in the policy")


def _systems(policy: Policy, systems: list[str]) -> None:
    unknown = [name for name in systems if name not in policy.services]
    if unknown:
        known = ", ".join(policy.services) or "none"
        raise Refusal(f"unknown systems {', '.join(unknown)}: name services of the policy ({known})")


def _open_task(s: IncidentState, task_id: str) -> Task:
    task = task_by_id(s, task_id)
    if task.done:
        raise Refusal(f"task {task_id} is already done")
    return task


def _check_add(s: IncidentState, d: AssignTask, policy: Policy) -> None:
    _while_open(s, "add recovery tasks")
    _person(policy, d.assignee)
    _systems(policy, d.systems)
    if len(s.tasks) >= TASKS_PER_INCIDENT:
        raise Refusal(f"{s.incident_id} has {len(s.tasks)} tasks, the most a plan holds; finish or fold some first")


def _check_reassign(s: IncidentState, d: ReassignTask, policy: Policy) -> None:
    _while_open(s, "reassign tasks")
    _person(policy, d.assignee)
    if _open_task(s, d.task_id).assignee == d.assignee:
        raise Refusal(f"task {d.task_id} is already {d.assignee}'s")


def _check_reprioritise(s: IncidentState, d: ReprioritiseTask, policy: Policy) -> None:
    _while_open(s, "reprioritise tasks")
    _open_task(s, d.task_id)
    if d.systems is None and d.business_impact is None and d.due_minutes is None:
        raise Refusal("say what changes: the systems it restores, its business impact or its due time")
    _systems(policy, d.systems or [])


def _check_update(s: IncidentState, d: UpdateTask, policy: Policy) -> None:
    _open_task(s, d.task_id)
    if d.status is TaskStatus.DONE:
        raise Refusal(f"a finished task is marked done (incidentctl task done {s.incident_id} {d.task_id})")


def _check_complete(s: IncidentState, d: CompleteTask, policy: Policy) -> None:
    _open_task(s, d.task_id)


def _check_escalate(s: IncidentState, d: EscalateTask, policy: Policy) -> None:
    _open_task(s, d.task_id)


# --- what each decision changes -------------------------------------------------------------------------------


def _note(task: Task, by: str, text: str, now: datetime) -> None:
    if text.strip():
        task.notes = [*task.notes, TaskNote(at=now, by=by, text=text)][-NOTES_KEPT:]


def _add(s: IncidentState, d: AssignTask, policy: Policy, now: datetime) -> str:
    rto = shortest_rto(policy, d.systems)
    task = Task(
        task_id=f"T{len(s.tasks) + 1}",
        title=d.title,
        assignee=d.assignee,
        systems=list(d.systems),
        rto_minutes=rto,
        business_impact=d.business_impact,
        due=due_time(s, policy, d.due_minutes, rto, now),
        created_at=now,
    )
    s.tasks = prioritised([*s.tasks, task])
    return f"task {task_line(policy, task)}: assigned to {d.assignee}"


def _reassign(s: IncidentState, d: ReassignTask, policy: Policy, now: datetime) -> str:
    task = task_by_id(s, d.task_id)
    before, task.assignee, task.nudged_at, task.escalated_at = task.assignee, d.assignee, None, None
    _note(task, d.actor, f"reassigned from {before} to {d.assignee}" + (f": {d.reason}" if d.reason else ""), now)
    return f"task {d.task_id} reassigned from {before} to {d.assignee}" + (f": {d.reason}" if d.reason else "")


def _reprioritise(s: IncidentState, d: ReprioritiseTask, policy: Policy, now: datetime) -> str:
    task = task_by_id(s, d.task_id)
    if d.systems is not None:
        task.systems, task.rto_minutes = list(d.systems), shortest_rto(policy, d.systems)
    if d.business_impact is not None:
        task.business_impact = d.business_impact
    if d.due_minutes is not None or d.systems is not None:
        task.due = due_time(s, policy, d.due_minutes, task.rto_minutes, now)
        task.nudged_at, task.escalated_at = None, None  # a new due time is chased afresh
    _note(task, d.actor, f"reprioritised: {d.reason}", now)
    s.tasks = prioritised(s.tasks)
    rank = next(i for i, t in enumerate(s.tasks, 1) if t.task_id == d.task_id)
    return f"task {task_line(policy, task)}; now #{rank} in the plan: {d.reason}"


def _update(s: IncidentState, d: UpdateTask, policy: Policy, now: datetime) -> str:
    task = task_by_id(s, d.task_id)
    if d.status is not None:
        task.status = d.status
    _note(task, d.actor, d.note, now)
    if s.confirmed and s.status is Status.OPEN:
        s.progress_due = progress_window(policy, now)  # progress on the plan is progress on the incident
    return f"task {d.task_id} {task.status.value} ({d.actor}): {d.note}"


def _complete(s: IncidentState, d: CompleteTask, policy: Policy, now: datetime) -> str:
    task = task_by_id(s, d.task_id)
    task.status, task.done_at = TaskStatus.DONE, now
    _note(task, d.actor, d.note or "done", now)
    s.tasks = prioritised(s.tasks)
    return f"task {d.task_id} done" + (f": {d.note}" if d.note else "")


def _escalate(s: IncidentState, d: EscalateTask, policy: Policy, now: datetime) -> str:
    task = task_by_id(s, d.task_id)
    task.escalated_at = now
    return f"task {d.task_id} escalated by {d.actor}; recommendation: {d.recommendation}"


RECOVERY_RULES: dict[type[Decision], Rule] = {
    AssignTask: Rule(_check_add, _add),
    ReassignTask: Rule(_check_reassign, _reassign),
    ReprioritiseTask: Rule(_check_reprioritise, _reprioritise),
    UpdateTask: Rule(_check_update, _update),
    CompleteTask: Rule(_check_complete, _complete),
    EscalateTask: Rule(_check_escalate, _escalate),
}
