"""The on-call workflows from outside: overrides, maintenance windows and heartbeats, as the CLI and the
HTTP service send them. Each call starts its workflow where it is not running yet (the first override of
a schedule, the first window, the first beat), then sends its Update or Signal."""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from workflows.contracts.policy import Policy, Window
from workflows.contracts.refusal import Refusal
from workflows.contracts.temporal import ids
from workflows.contracts.temporal.ids import SILENCES_ID, heartbeat_workflow_id, schedule_workflow_id
from workflows.contracts.trust.authority import check_window
from workflows.incident.model import Silence
from workflows.oncall.model import (
    AddOverride,
    AddSilence,
    Beat,
    ExpireSilence,
    Heartbeat,
    HeartbeatInput,
    HeartbeatState,
    RemoveOverride,
    ScheduleInput,
    SilencesInput,
)
from workflows.oncall.rotation import Override

T = TypeVar("T")

# A query is answered by the worker holding the workflow: within a second or two, unless no worker polls
# its task queue. Shorter than the on-call lookup's attempt (workflows/oncall/lookup.py), so it ends cleanly.
QUERY_TIMEOUT = timedelta(seconds=3)


class OnCallRefused(Exception):
    """A workflow's validator refused the request; the message says why."""


async def _schedule(client: Client, task_queue: str, schedule: str) -> WorkflowHandle[Any, Any]:
    return await client.start_workflow(
        ids.SCHEDULE_WORKFLOW,
        ScheduleInput(schedule=schedule),
        id=schedule_workflow_id(schedule),
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        static_summary=f"Overrides of on-call schedule {schedule}",
    )


async def _silences(client: Client, task_queue: str) -> WorkflowHandle[Any, Any]:
    return await client.start_workflow(
        ids.SILENCES_WORKFLOW,
        SilencesInput(),
        id=SILENCES_ID,
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        static_summary="Maintenance windows",
    )


async def _decided(update: Awaitable[T]) -> T:
    """An update's answer; its validator's refusal as the one line a person sees."""
    try:
        return await update
    except WorkflowUpdateFailedError as err:
        cause = err.cause
        raise OnCallRefused(cause.message if isinstance(cause, ApplicationError) else str(cause or err)) from err


async def add_override(
    client: Client, task_queue: str, policy: Policy, schedule: str, request: AddOverride
) -> Override:
    """An override, unless the policy refuses it to its author or its length (contracts/trust/authority.py)."""
    _authorized(policy, policy.overrides, "override", request.by, request.start, request.end)
    return await _decided(
        (await _schedule(client, task_queue, schedule)).execute_update(ids.ADD_OVERRIDE, request, result_type=Override)
    )


async def remove_override(client: Client, task_queue: str, schedule: str, request: RemoveOverride) -> Override:
    return await _decided(
        (await _schedule(client, task_queue, schedule)).execute_update(
            ids.REMOVE_OVERRIDE, request, result_type=Override
        )
    )


def _authorized(policy: Policy, rule: Window, what: str, by: str, start: datetime, end: datetime) -> None:
    try:
        check_window(policy, rule, what, by, start, end)
    except Refusal as err:
        raise OnCallRefused(str(err)) from err


async def _listed(client: Client, workflow_id: str, query: str, result_type: type[list[T]]) -> list[T]:
    """A query's list; none where the workflow was never started."""
    try:
        return await client.get_workflow_handle(workflow_id).query(
            query, result_type=result_type, rpc_timeout=QUERY_TIMEOUT
        )
    except RPCError as err:
        if err.status is RPCStatusCode.NOT_FOUND:
            return []
        raise


async def overrides(client: Client, schedule: str) -> list[Override]:
    """The schedule's current and future overrides; none where nobody ever overrode it."""
    return await _listed(client, schedule_workflow_id(schedule), ids.OVERRIDES, list[Override])


async def add_silence(
    client: Client, task_queue: str, policy: Policy, request: AddSilence, now: datetime | None = None
) -> Silence:
    """A maintenance window from `now` (Temporal's time; a drill's clock runs ahead), unless the policy refuses it
    to its author or its length (contracts/trust/authority.py)."""
    _authorized(policy, policy.silences, "maintenance window", request.by, now or datetime.now(UTC), request.until)
    return await _decided(
        (await _silences(client, task_queue)).execute_update(ids.ADD_SILENCE, request, result_type=Silence)
    )


async def expire_silence(client: Client, task_queue: str, request: ExpireSilence) -> Silence:
    return await _decided(
        (await _silences(client, task_queue)).execute_update(ids.EXPIRE_SILENCE, request, result_type=Silence)
    )


async def silences(client: Client) -> list[Silence]:
    return await _listed(client, SILENCES_ID, ids.ACTIVE_SILENCES, list[Silence])


async def beat(client: Client, task_queue: str, name: str, heartbeat: Heartbeat) -> None:
    """One beat, by signal-with-start: the first beat starts the heartbeat's watch."""
    await client.start_workflow(
        ids.HEARTBEAT_WORKFLOW,
        HeartbeatInput(name=name, heartbeat=heartbeat),
        id=heartbeat_workflow_id(name),
        task_queue=task_queue,
        start_signal=ids.BEAT,
        start_signal_args=[Beat(name=name, heartbeat=heartbeat)],
        static_summary=f"Heartbeat {name}",
    )


async def heartbeat_state(client: Client, name: str) -> HeartbeatState:
    state: HeartbeatState = await client.get_workflow_handle(heartbeat_workflow_id(name)).query(
        ids.HEARTBEAT_STATE, result_type=HeartbeatState
    )
    return state
