"""RecordWorkflow: the one writer of an incident's record in its register, and of its follow-up issues.

The incident starts it when it is confirmed (through an activity, as its message loop: not as its child)
and tells it each time its timeline grows (a signal, sent from
wherever the entry is written, with nothing to decide). The writer syncs: one activity reads the incident's
state and writes what the record lacks. Entries written while a sync is under way go together into the next
one, so a burst of decisions is one or two writes, in order, never an older state over a newer one. It tells
the incident what it wrote (the record's address, the new issues). A register that is down delays only
this writer: the incident pages, decides and closes without waiting, and the writer tries again until the
record holds the closed incident.

The incident never waits on this writer's activities, so its own commands never interleave with them: a
worker replaying the incident from scratch asks for the same commands in the same order.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.registers.sync import RegisterActivities
    from workflows.contracts.activity_io import RecordInput, RecordSync, RecordSynced
    from workflows.contracts.temporal import ids
    from workflows.contracts.temporal.priority import PEOPLE
    from workflows.delivery.reach import ActivityOptions, attempt

# Ticket systems rate-limit by the minute and go down for maintenance: retry up to a minute apart for half an
# hour; a sync heartbeats, so one whose worker died is retried within 10 s.
SYNC: ActivityOptions = {
    "start_to_close_timeout": timedelta(minutes=2),
    "heartbeat_timeout": timedelta(seconds=10),
    "schedule_to_close_timeout": timedelta(minutes=30),
    "retry_policy": RetryPolicy(initial_interval=timedelta(seconds=2), maximum_interval=timedelta(minutes=1)),
    "priority": PEOPLE,
}
RETRY_AFTER = timedelta(minutes=10)  # after a sync's retries ran out


class RecordNews(BaseModel):
    """What the writer tells the incident after a sync that wrote something it did not know."""

    record_id: str = ""
    url: str = ""
    written: int = 0
    issues: dict[str, tuple[str, str]] = {}  # action item -> (issue key, url)
    failure: str = ""  # a sync gave up: the register is down


@workflow.defn(name=ids.RECORD_WORKFLOW)
class RecordWorkflow:
    def __init__(self) -> None:
        self._changed = True  # the first sync runs at once

    @workflow.run
    async def run(self, input: RecordInput) -> RecordSynced:
        incident = workflow.get_external_workflow_handle(input.incident_id)
        continued = workflow.info().continued_run_id is not None  # only our own continue-as-new carries state
        known = (input.known if continued else None) or RecordSynced()
        filed = list(input.filed) if continued else []
        while workflow.info().get_current_history_length() < input.history_limit:
            await workflow.wait_condition(lambda: self._changed)
            self._changed = False
            request = RecordSync(
                incident_id=input.incident_id, occurrence=input.occurrence, record_id=known.record_id, filed=filed
            )
            synced, failure = await attempt(
                "incident record", workflow.execute_activity_method(RegisterActivities.sync_record, request, **SYNC)
            )
            if synced is None:
                await tell(incident, RecordNews(failure=f"{failure}; tried again in 10 min"))
                await workflow.sleep(RETRY_AFTER)
                self._changed = True
                continue
            filed += list(synced.issues)
            if synced.over:
                return synced  # the incident closed: its last sync is its own
            if synced.record_id != known.record_id or synced.issues:
                news = RecordNews(
                    record_id=synced.record_id,
                    url=synced.url,
                    written=synced.written,
                    issues={item: (issue.issue, issue.url) for item, issue in synced.issues.items()},
                )
                await tell(incident, news)
            known = synced
        # Each sync adds about 8 events: a long incident's writer goes on in a new run, which syncs at once
        # (a change signalled meanwhile is not lost; a sync with nothing new writes nothing).
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(
            input.model_copy(update={"known": known.model_copy(update={"issues": {}}), "filed": filed})
        )

    @workflow.signal(name=ids.RECORD_CHANGED)
    def changed(self) -> None:
        self._changed = True


async def tell(incident: workflow.ExternalWorkflowHandle[Any], news: RecordNews) -> None:
    """News for the incident; an incident that finished meanwhile needs none."""
    try:
        await incident.signal(ids.RECORD_NEWS, news)
    except Exception as err:
        workflow.logger.info("the incident took no news: %s", err)
