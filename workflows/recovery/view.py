"""What people read of the recovery plan: one line per task, and the context an escalation carries."""

from __future__ import annotations

from datetime import datetime

from workflows.contracts.clock import local
from workflows.contracts.policy import Policy
from workflows.recovery.model import Task


def task_line(policy: Policy, t: Task) -> str:
    """One task in one line: who, what it restores, when it is due, how it stands."""
    systems = f" ({', '.join(t.systems)})" if t.systems else ""
    due = f", due {local(policy, t.due)}" if t.due and not t.done else ""
    chased = (
        "" if t.done else (", late: escalated" if t.escalated_at else ", late: owner nudged" if t.nudged_at else "")
    )
    return f"{t.task_id} {t.title}{systems} from {t.assignee}: {t.status.value}{due}{chased}; {t.priority}"


def context(policy: Policy, t: Task, now: datetime) -> str:
    """What the decision-makers need to decide about a task: the task, how late, and where it stands."""
    late = f", {int((now - t.due).total_seconds() // 60)} min past due" if t.due and t.due <= now else ""
    last = f" Last progress ({local(policy, t.notes[-1].at)}, {t.notes[-1].by}): {t.notes[-1].text}." if t.notes else ""
    return f"{task_line(policy, t)}{late}.{last}"


def plan_summary(policy: Policy, tasks: list[Task]) -> str:
    """The recovery plan for the postmortem: each task in order, when it was finished, and its notes."""
    lines = []
    for t in tasks:
        finished = f", finished {local(policy, t.done_at)}" if t.done_at else ""
        chased = "; escalated" if t.escalated_at else "; ran late, owner nudged" if t.nudged_at else ""
        notes = "".join(f"\n  - {local(policy, n.at)}, {n.by}: {n.text}" for n in t.notes)
        lines.append(f"- {task_line(policy, t)}{finished}{chased}{notes}")
    return "\n".join(lines)
