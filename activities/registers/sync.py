"""The incident's record in its organisation's register, brought up to the incident's state in one go.

Asks the incident what its record should show now (the `record` query: its state, whole history and the
action items without an issue) and, for a business incident, its message loop for the loop's log; then
hands the record to its system's adapter (jira.py, servicenow.py, confluence.py), which writes only the
entries the record lacks, by their markers, and each action item to its tracker (jira.py, linear.py),
which finds an issue filed before it creates one. What the writer's history holds of this is the call and
its small answer, never the record's text.
"""

from __future__ import annotations

from pydantic import BaseModel, Field
from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError

from activities.outbox import Outbox
from activities.registers.confluence import ConfluenceActivities
from activities.registers.jira import JiraActivities
from activities.registers.linear import LinearActivities
from activities.registers.servicenow import ServiceNowActivities
from settings import Settings
from workflows.contracts.activity_io import RecordSync, RecordSynced, RecordView, with_loop
from workflows.contracts.temporal import ids
from workflows.contracts.vocabulary import RecordHome
from workflows.incident.model import TimelineEntry


class RegisterActivities:
    def __init__(self, settings: Settings, outbox: Outbox) -> None:
        self.jira = JiraActivities(settings, outbox)
        self.servicenow = ServiceNowActivities(settings, outbox)
        self.confluence = ConfluenceActivities(settings, outbox)
        self.linear = LinearActivities(settings, outbox)

    @activity.defn
    async def sync_record(self, request: RecordSync) -> RecordSynced:
        incident = activity.client().get_workflow_handle(request.incident_id)
        try:
            view = await incident.query(ids.RECORD_VIEW, result_type=RecordView)
        except RPCError as err:
            raise ApplicationError(f"the incident could not be read: {err}", type="record:incident") from err
        if view.occurrence != request.occurrence:  # a later occurrence runs under the id: this one's is done
            return RecordSynced(record_id=request.record_id, over=True)
        if view.closed and not request.last:  # the closed incident writes its last sync itself
            return RecordSynced(record_id=request.record_id, over=True)
        synced = RecordSynced(over=view.closed)
        if view.record is not None:
            entries = with_loop(view.record.entries, await self._loop_log(view.message_loop))
            write = view.record.model_copy(
                update={"record_id": request.record_id or view.record.record_id, "entries": entries}
            )
            adapters = {
                RecordHome.JIRA: self.jira.jira_write_record,
                RecordHome.SERVICENOW: self.servicenow.servicenow_write_record,
                RecordHome.CONFLUENCE: self.confluence.confluence_write_record,
            }
            written = await adapters[write.records.home](write)
            synced.record_id, synced.url, synced.written = written.record_id, written.url, len(write.entries)
        for item, follow_up in view.follow_ups.items():
            if item in request.filed:
                continue
            if synced.url and not follow_up.incident_url:
                follow_up = follow_up.model_copy(update={"incident_url": synced.url})
            if follow_up.follow_ups.home == "jira":
                synced.issues[item] = await self.jira.jira_create_follow_up(follow_up)
            else:
                synced.issues[item] = await self.linear.linear_create_follow_up(follow_up)
        return synced

    async def _loop_log(self, workflow_id: str) -> list[TimelineEntry]:
        """The message loop's log (seed 004's drafts, reviews, approvals and sends), for the record too."""
        if not workflow_id:
            return []
        try:
            loop = await activity.client().get_workflow_handle(workflow_id).query(ids.COMMS_STATE, result_type=LoopLog)
        except RPCError as err:
            raise ApplicationError(f"the message loop could not be read: {err}", type="record:loop") from err
        return loop.log


class LoopLog(BaseModel):
    """What the record reads of the message loop's state (its `state` query)."""

    log: list[TimelineEntry] = Field(default_factory=list)
