"""What the Temporal UI shows of an incident: its search attributes and its status line.

Search attributes are upserted only when one of them changes (each upsert is an event in the history);
the status line (the workflow's current details) follows every change of who is waited on.
"""

from __future__ import annotations

from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.contracts.policy import Policy
    from workflows.contracts.temporal import search_attributes as sa
    from workflows.incident.derive import incident_commander, waiting_on
    from workflows.incident.model import IncidentState


class Visibility:
    def __init__(self, s: IncidentState, policy: Policy) -> None:
        self.s, self.policy = s, policy
        self._visible: tuple[Any, ...] = ()

    def _searchable(self) -> tuple[Any, ...]:
        s = self.s
        return (s.severity, s.phase, s.status, s.scope, s.service, s.kind, bool(s.acknowledged_by))

    def _shown(self) -> tuple[Any, ...]:
        """What the status line is made of: cheap to compare on every activation, unlike the line itself."""
        s = self.s
        return (
            self._searchable(),
            s.acknowledged_by,
            s.confirmed,
            s.assessment_due,
            s.estimate_due,
            s.next_update_due,
            s.escalation_exhausted_at,
            tuple((t.status, t.assignee, t.due, t.nudged_at, t.escalated_at) for t in s.tasks),
            tuple(s.checklist.values()),
            tuple(s.assigned.items()),
            tuple(s.on_call.items()),  # who holds a scheduled role: the IC and the people waited on
            tuple(st.approved for st in s.statements),
            tuple(r.approved for r in s.channel_requests),
        )

    async def keep_current(self) -> None:
        """Refreshed once the workflow task has done all it can (conditions are checked last), so the task that
        takes the first alert and confirms the incident upserts its search attributes once, not twice."""
        while True:
            await workflow.wait_condition(lambda: self._shown() != self._visible)
            self.refresh()

    def refresh(self) -> None:
        """Search attributes follow every change they show (each upsert is an event in the history), and
        the UI's current details follow every change of who is waited on."""
        s, before = self.s, self._visible
        if self._shown() == before:
            return
        self._visible = self._shown()
        if not before or before[0] != self._searchable():
            workflow.upsert_search_attributes(
                [
                    sa.SEVERITY.value_set(s.severity.value),
                    sa.PHASE.value_set(s.phase.value),
                    sa.STATUS.value_set(s.status.value),
                    sa.SCOPE.value_set(s.scope.value),
                    sa.SERVICE.value_set(sa.keyword(s.service or "-")),
                    sa.KIND.value_set(s.kind.value if s.kind else "unassessed"),
                    sa.ACKNOWLEDGED.value_set(bool(s.acknowledged_by)),
                ]
            )
        ack = f"acked by {s.acknowledged_by}" if s.acknowledged_by else "not acknowledged"
        waiting = "; ".join(waiting_on(s, self.policy)) or "nothing"
        workflow.set_current_details(
            f"**{s.severity.value} · {s.phase.value} · {s.status.value}** · {ack} · "
            f"IC {incident_commander(s, self.policy) or '-'}\n\n{s.title}\n\nWaiting on: {waiting}"
        )
