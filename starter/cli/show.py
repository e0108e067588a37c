"""What `incidentctl show` prints: an incident's facts, who owes what, what waits for approval, its timeline."""

from __future__ import annotations

from datetime import datetime

from workflows.contracts.clock import local
from workflows.contracts.policy import Policy
from workflows.incident.model import IncidentState


def print_state(s: IncidentState, policy: Policy) -> None:
    """The incident as `incidentctl show` prints it, its moments in the policy's time zone."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console(highlight=False)
    facts = [
        ("Incident", f"{s.incident_id}  {s.title}"),
        ("Status", f"{s.status.value}, phase {s.phase.value}"),
        (
            "Severity",
            f"{s.severity.value} ({s.kind.value if s.kind else 'unclassified'}, {s.scope.value} scope)"
            + (f", critical: {', '.join(s.criteria)}" if s.criteria else ""),
        ),
        ("Service", s.service or "-"),
        ("Opened", _when(policy, s.opened_at)),
        ("Acknowledged", f"{s.acknowledged_by} at {_when(policy, s.acknowledged_at)}" if s.acknowledged_by else "no"),
        (
            "Alerts",
            f"{s.alert_count} received, "
            f"{sum(a.status.value == 'firing' for a in s.alerts.values())} of {len(s.alerts)} firing",
        ),
        ("Roles", ", ".join(f"{role.value}: {person}" for role, person in s.assigned.items()) or "-"),
        ("Channel", s.channel or "-"),
        ("Record", s.record.url or s.record.record_id or "-"),
    ]
    for name, value in facts:
        console.print(Text.assemble((f"{name:<13}", "bold"), value))
    if s.waiting_on:
        console.print(Text("Waiting on", style="bold"))
        for line in s.waiting_on:
            console.print(Text(f"  - {line}"))
    if s.tasks:
        tasks = Table(title="Recovery plan (seed 003), in order")
        for column in ("id", "title", "owner", "restores", "priority", "due", "status", "last note"):
            tasks.add_column(column)
        for t in s.tasks:
            chased = " (escalated)" if t.escalated_at else " (nudged)" if t.nudged_at else ""
            due = "-" if t.due is None else _when(policy, t.due) + ("" if t.done else chased)
            last = f"{t.notes[-1].by}: {t.notes[-1].text}" if t.notes else "-"
            row = (t.task_id, t.title, t.assignee, ", ".join(t.systems) or "-", t.priority, due, t.status.value, last)
            tasks.add_row(*(Text(v) for v in row))
        console.print(tasks)
    if s.action_items:
        items = Table(title="Action items")
        for column in ("id", "title", "owner", "due", "issue"):
            items.add_column(column)
        for a in s.action_items:
            due = f"{a.due:%Y-%m-%d}" if a.due else "-"
            items.add_row(*(Text(v) for v in (a.item_id, a.title, a.owner, due, a.url or a.issue or "-")))
        console.print(items)
    if s.statements or s.channel_requests:
        held = Table(title="Words for people outside, and extra channels (seed 000)")
        for column in ("id", "about", "to", "state", "by"):
            held.add_column(column)
        for st in s.statements:
            held.add_row(*(Text(v) for v in (st.statement_id, st.about, ", ".join(st.parties), st.fate, st.decided_by)))
        for r in s.channel_requests:
            held.add_row(*(Text(v) for v in (r.request_id, f"channel {r.name}", r.requested_by, r.fate, r.decided_by)))
        console.print(held)
    timeline = Table(title="Timeline")
    for column in ("at", "kind", "who", "what"):
        timeline.add_column(column)
    for entry in s.timeline:
        timeline.add_row(Text(_when(policy, entry.at)), Text(entry.kind), Text(entry.actor or ""), Text(entry.text))
    console.print(timeline)


def _when(policy: Policy, moment: datetime | None) -> str:
    return local(policy, moment, with_date=True) if moment else "-"
