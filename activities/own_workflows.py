"""Workflows of our own that an incident starts without making them its children: its message loop and its
record's writer. The activity starts them through the worker's own client.

A child's start costs the server a transfer task that must also write "child started" into the parent's
history, under the parent's lock. A new SEV1 is busiest just then (its page, channel and first messages
complete in the same seconds), so in an alert storm that write ran past its deadline and was tried again,
for every second incident, and the retries pushed a busy server further behind. Neither workflow needs the
child's bond (the incident abandons them on close and talks to them by signals): started here, the server
only starts a workflow, and the worker that runs the activity takes its first task itself (eager start).

The guarantee is once: a retried start (a worker killed before it reported) finds the workflow already
there, whether it is still running or has finished.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import activity
from temporalio.common import Priority, WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from workflows.comms.model import LoopStart
from workflows.contracts.activity_io import RecordInput
from workflows.contracts.temporal.ids import COMMS_WORKFLOW, RECORD_WORKFLOW, record_workflow_id
from workflows.contracts.temporal.priority import PEOPLE, STAKEHOLDERS

RECORD_LIFETIME = timedelta(days=60)  # a record's writer outlives no incident it writes for


async def start_once(
    workflow_type: str,
    input: Any,
    workflow_id: str,
    priority: Priority,
    execution_timeout: timedelta | None = None,
) -> bool:
    """Start a workflow of ours on this activity's task queue; False when an earlier attempt started it."""
    try:
        await activity.client().start_workflow(
            workflow_type,
            input,
            id=workflow_id,
            task_queue=activity.info().task_queue,
            execution_timeout=execution_timeout,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            priority=priority,
            request_eager_start=True,
        )
    except WorkflowAlreadyStartedError:
        return False
    return True


class OwnWorkflowActivities:
    @activity.defn
    async def start_message_loop(self, start: LoopStart) -> bool:
        """Start the incident's message loop; False when it was already started (by an earlier attempt)."""
        return await start_once(COMMS_WORKFLOW, start.input, start.workflow_id, STAKEHOLDERS)

    @activity.defn
    async def start_record_writer(self, start: RecordInput) -> bool:
        """Start the incident's record writer; False when an earlier attempt started it."""
        return await start_once(RECORD_WORKFLOW, start, record_workflow_id(start.occurrence), PEOPLE, RECORD_LIFETIME)
