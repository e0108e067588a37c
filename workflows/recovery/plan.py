"""The recovery plan's deliveries: owners told of their tasks, late tasks chased, escalations with context.

The rules (recovery/rules.py) change the plan; this tells the people it concerns. A late task is nudged
once at its due time and escalated once the policy's grace later (`response.task_escalate_after_minutes`)
to the decision-makers (`response.breach_notify`, by `response.breach_channels`). Each delivery is keyed by
the task and the step, so a retry reaches nobody twice.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.contracts.clock import local
    from workflows.contracts.policy import Policy
    from workflows.contracts.roles import expand
    from workflows.delivery.deliveries import Deliveries
    from workflows.incident.deadline import Clock
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
    from workflows.recovery import rules
    from workflows.recovery.model import Task
    from workflows.recovery.view import context, task_line


class RecoveryPlan:
    def __init__(self, s: IncidentState, policy: Policy, out: Deliveries, clock: Clock) -> None:
        self.s, self.policy, self.out, self.clock = s, policy, out, clock

    async def chase_late_tasks(self) -> None:
        """Seed 003's "Escalate Delays": a task past due nudges its owner, then goes to the decision-makers."""
        deadline = self.clock.deadline(lambda: rules.next_chase(self.s, self.policy))
        while True:
            await deadline.passed()
            for task, chase in rules.chases_due(self.s, self.policy, workflow.now()):
                if chase is rules.Chase.NUDGE:
                    self._nudge(task)
                else:
                    self._escalate(
                        task,
                        "policy",
                        "reassign it, add people or move its due time "
                        f"(incidentctl task assign|reprioritise {self.s.incident_id} {task.task_id})",
                    )

    def follow_up(self, d: Decision) -> None:
        """Whom a decision on the plan concerns, once the rules applied it."""
        s = self.s
        number = sum(s.decisions_taken.values())  # one more with every decision: a key for this one
        match d:
            case AssignTask():
                task = next(t for t in s.tasks if t.task_id == f"T{len(s.tasks)}")
                self._tell_owner(
                    task,
                    f"Task {task_line(self.policy, task)}: {task.title}. Report progress with "
                    f"incidentctl task update {s.incident_id} {task.task_id}.",
                    "assigned",
                )
            case ReassignTask():
                task = rules.task_by_id(s, d.task_id)
                self._tell_owner(
                    task, f"Task {task_line(self.policy, task)} is now yours (from {d.actor}).", f"assigned:{number}"
                )
            case ReprioritiseTask():
                task = rules.task_by_id(s, d.task_id)
                self._tell_owner(
                    task,
                    f"Task {task_line(self.policy, task)} was reprioritised by {d.actor}: {d.reason}",
                    f"reprioritised:{number}",
                )
            case EscalateTask():
                self._escalate(rules.task_by_id(s, d.task_id), d.actor, d.recommendation)
            case UpdateTask() | CompleteTask():
                self.out.post(f"{s.incident_id}: {s.timeline[-1].text}", f"task:{d.task_id}:{number}")

    def _tell_owner(self, task: Task, text: str, step: str) -> None:
        self.out.reach([task.assignee], self.out.chats, f"{self.s.incident_id}: {text}", f"task:{task.task_id}:{step}")

    def _nudge(self, task: Task) -> None:
        assert task.due is not None  # only a task with a due time is chased
        self._tell_owner(
            task,
            f"Task {task.task_id} ({task.title}) was due at {local(self.policy, task.due)}: how does it stand? "
            f"(incidentctl task update|done {self.s.incident_id} {task.task_id})",
            f"nudge:{task.due:%Y%m%d%H%M}",
        )
        self.out.note("task", f"task {task.task_id} is past due; reminded {task.assignee}")

    def _escalate(self, task: Task, by: str, recommendation: str) -> None:
        """To the decision-makers, with the task's context and a recommended action; in the channel too."""
        s, response = self.s, self.policy.response
        people = expand(self.policy, response.breach_notify, s.roles)
        text = (
            f"{s.incident_id}: recovery task escalated ({'late' if by == 'policy' else f'by {by}'}). "
            f"{context(self.policy, task, workflow.now())} Recommendation: {recommendation}"
        )
        key = f"task:{task.task_id}:escalated:{workflow.now():%Y%m%d%H%M%S}"
        self.out.reach(people, response.breach_channels, text, key)
        self.out.post(text, key, mentions=people)
        self.out.note("task", f"task {task.task_id} escalated to {', '.join(people) or 'nobody'}: {recommendation}")
