"""The incident's side of its record (policy `records`, `follow_ups`): what the record should show, and telling
its writer (workflows/records/writer.py) that it changed.

The incident starts the writer when it is confirmed and signals it after each new timeline entry, from where
the entry is written: the signal depends on nothing the incident waits for, so a worker replaying the
incident asks for it at the same place. The writer reads what to write with the `record` query (`view`) and
sends back what it wrote (`heard`).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.own_workflows import OwnWorkflowActivities
    from activities.registers.sync import RegisterActivities
    from workflows.contracts.activity_io import (
        FollowUpRequest,
        RecordInput,
        RecordSync,
        RecordView,
        RecordWrite,
        record_history,
    )
    from workflows.contracts.policy import Policy
    from workflows.contracts.temporal import ids
    from workflows.contracts.temporal.priority import PEOPLE
    from workflows.contracts.vocabulary import RecordHome, Status
    from workflows.delivery.deliveries import Deliveries
    from workflows.delivery.reach import ActivityOptions, attempt, starting_own_workflow
    from workflows.incident.derive import incident_commander
    from workflows.incident.model import IncidentState
    from workflows.records.actions import listed
    from workflows.records.writer import RecordNews
    from workflows.recovery.view import task_line

# The closed incident's last sync: a register that is down holds the close for a minute at most.
LAST_SYNC: ActivityOptions = {
    "start_to_close_timeout": timedelta(seconds=30),
    "heartbeat_timeout": timedelta(seconds=10),
    "schedule_to_close_timeout": timedelta(minutes=1),
    "retry_policy": RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=10)),
    "priority": PEOPLE,
}


def record_fields(s: IncidentState, policy: Policy) -> dict[str, str]:
    """What the record shows of the incident now."""
    return {
        "title": s.title,
        "status": s.status.value,
        "severity": s.severity.value,
        "priority": s.severity.priority,
        "phase": s.phase.value,
        "assignee": incident_commander(s, policy),
        "service": s.service,
        "alerts": str(s.alert_count),
        "tasks": "; ".join(task_line(policy, t) for t in s.tasks),
        "postmortem": s.postmortem_url or s.postmortem_location,
        "action_items": listed(s),
    } | s.resolution


class RecordKeeper:
    def __init__(
        self, s: IncidentState, policy: Policy, out: Deliveries, redraft: Callable[[], Coroutine[Any, Any, None]]
    ) -> None:
        self.s, self.policy, self.out, self.redraft = s, policy, out, redraft
        self._kept = policy.keeps_record_elsewhere
        self._told_closed = False

    def kick(self) -> None:
        """The incident was confirmed, or a person decided: the writer starts, or hears of it. Only from the
        confirmation and the decisions' handlers, where the incident's own commands are asked for too: entries
        written when a delivery comes back go with the next decision's sync, or the closed incident's last."""
        if not self._kept or not self.s.confirmed or self._told_closed:
            return  # the writer stops at the close: the incident's last sync is its own (written_out)
        self._told_closed = self.s.status is Status.CLOSED  # once, so that it stops
        if not self.s.record.started:
            self.s.record.started = True
            self.out.spawn(self._start_writer())
        else:
            self.out.spawn(self._tell_writer())

    async def _start_writer(self) -> None:
        """Started as a workflow of its own, not a child (activities/own_workflows.py says why). Its first sync
        reads whatever changed while it started."""
        start = RecordInput(incident_id=self.s.incident_id, occurrence=self.s.occurrence)
        started, failure = await attempt(
            "incident record",
            self.out.tracked(
                workflow.execute_activity_method(
                    OwnWorkflowActivities.start_record_writer, start, **starting_own_workflow(PEOPLE)
                )
            ),
        )
        if failure:
            self.out.note("record", f"{failure}; the closed incident writes its record itself")
        elif not started:
            workflow.logger.info("the record's writer runs already")

    async def _tell_writer(self) -> None:
        try:
            await workflow.get_external_workflow_handle(ids.record_workflow_id(self.s.occurrence)).signal(
                ids.RECORD_CHANGED
            )
        except Exception as err:  # not started yet (its first sync reads this change), or finished
            workflow.logger.info("the record's writer took no signal: %s", err)

    def view(self) -> RecordView:
        """What the record and the follow-ups should be now (read-only: it answers a query)."""
        s, policy = self.s, self.policy
        write = None
        if policy.records.home is not RecordHome.FILES:
            fields = record_fields(s, policy)
            write = RecordWrite(
                key=s.occurrence,
                incident_id=s.incident_id,
                record_id=s.record.record_id,
                fields=fields,
                assignee_account=self._account(policy.records.home.value, fields["assignee"]),
                entries=record_history(s.timeline),
                unsure=True,  # whatever an earlier sync wrote before it was cut off is looked for first
                records=policy.records,
            )
        follow_ups = {
            a.item_id: FollowUpRequest(
                key=f"{s.occurrence}/{a.item_id}",
                incident_id=s.incident_id,
                title=a.title,
                description=f"Follow-up {a.item_id} of incident {s.incident_id} ({s.title}), added by {a.added_by}."
                + (f" Incident record: {s.record.url}" if s.record.url else ""),
                due=a.due,
                owner_account=self._account(policy.follow_ups.home, a.owner),
                incident_url=s.record.url,
                follow_ups=policy.follow_ups,
            )
            for a in s.action_items
            if not a.issue and policy.follow_ups.home
        }
        return RecordView(
            occurrence=s.occurrence,
            closed=s.status is Status.CLOSED,
            record=write,
            message_loop=s.comms_workflow_id if write else "",
            follow_ups=follow_ups,
        )

    def _account(self, system: str, person: str) -> str:
        found = self.policy.people.get(person)
        return found.account(system) if found else ""

    async def written_out(self) -> None:
        """The closed incident's last sync, its own: what it wrote while closing goes into the record too. Its
        writer stopped at the close (it writes nothing after it), so the two never write at once. A register
        that is down does not hold the close for long; the timeline is complete in any case."""
        s = self.s
        if not s.record.started:
            return
        last = RecordSync(
            incident_id=s.incident_id,
            occurrence=s.occurrence,
            record_id=s.record.record_id,
            filed=[a.item_id for a in s.action_items if a.issue],
            last=True,
        )
        synced, failure = await attempt(
            "incident record", workflow.execute_activity_method(RegisterActivities.sync_record, last, **LAST_SYNC)
        )
        if synced is None:
            workflow.logger.info("the record's last sync failed: %s", failure)
            return
        s.record.record_id, s.record.url, s.record.written = synced.record_id, synced.url, synced.written

    def heard(self, news: RecordNews) -> None:
        """What the writer wrote: the record's address (once), each new follow-up issue, or that it failed."""
        s = self.s
        if news.failure:
            self.out.note("record", news.failure)
            return
        first = news.record_id and not s.record.record_id
        s.record.record_id, s.record.url, s.record.written = news.record_id, news.url, news.written
        if first and s.status is not Status.CLOSED:  # closing: the last sync is under way
            self.out.note(
                "record", f"Incident record in {self.policy.records.home.value}: {news.url or news.record_id}"
            )
        for item in s.action_items:
            if item.item_id in news.issues and not item.issue:
                item.issue, item.url = news.issues[item.item_id]
                home = self.policy.follow_ups.home
                if s.status is not Status.CLOSED:
                    self.out.note("follow_up", f"action item {item.item_id} is {home} issue {item.issue}: {item.url}")
        if news.issues and s.checklist["postmortem_drafted"]:
            self.out.spawn(self.redraft())  # the postmortem links the issues
