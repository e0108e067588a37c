"""The message loop's start: the incident starts its loop through the worker's own client, not as its child.

A child's start costs the server a transfer task that must also write "child started" into the parent's
history, under the parent's lock. A new SEV1 is busiest just then (its page, channel and first messages
complete in the same seconds), so in an alert storm that write ran past its deadline and was tried again,
for every second incident, and the retries pushed a busy server further behind. The loop never needed the
child's bond (the incident abandons it on close and talks to it by signals): started here, the server only
starts a workflow, and the worker that runs this activity takes the loop's first task itself (eager start).

The guarantee is once: a retried start (a worker killed before it reported) finds the loop already there,
whether it is still running or has finished.
"""

from __future__ import annotations

from temporalio import activity
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from workflows.comms.model import LoopStart
from workflows.contracts.ids import COMMS_WORKFLOW
from workflows.contracts.priority import STAKEHOLDERS


class MessageLoopActivities:
    @activity.defn
    async def start_message_loop(self, start: LoopStart) -> bool:
        """Start the incident's message loop; False when it was already started (by an earlier attempt)."""
        try:
            await activity.client().start_workflow(
                COMMS_WORKFLOW,
                start.input,
                id=start.workflow_id,
                task_queue=activity.info().task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                priority=STAKEHOLDERS,
                request_eager_start=True,
            )
        except WorkflowAlreadyStartedError:
            return False
        return True
