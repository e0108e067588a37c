"""Sending a person's decision to the workflow that owns it, the same way from the HTTP API (incidentctl), Slack
and the drill. The client given signs it (client/signing.py): a workflow takes no decision without that proof.

Decisions are addressed by their names in the registry (workflows/contracts/decisions.py), never through the workflow
classes. A message-loop step goes to the loop the incident's state names (`comms_workflow_id`). Every
decision carries an update id: the same id sent again is applied once, so a caller that lost the answer
can safely send it again. A refusal raises Refused with the one line a person sees.

An Update's answer is made when its handler returns, before the workflow's own reactions in the same
workflow task (the loop moving a message on after the approval it waited for). What a person should see
after a decision is read afterwards, with a query (`query_state`, `loop_state`): the state once the
decision took effect.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any

from temporalio.client import (
    Client,
    WorkflowQueryFailedError,
    WorkflowQueryRejectedError,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.service import RPCError, RPCStatusCode

from workflows.comms.model import CommsMessage, CommsState, MessageStep
from workflows.contracts.decisions import COMMS_DECISIONS, INCIDENT_DECISIONS, incident_decision_name
from workflows.contracts.temporal import ids
from workflows.contracts.vocabulary import Audience
from workflows.incident.model import Decision, IncidentState

# A running worker answers in milliseconds; past this nobody is polling the task queue.
ANSWER_WITHIN = timedelta(seconds=15)
# Pauses between attempts of one decision whose answer was lost on the way (server down, deadline passed).
BACKOFF_SECONDS = (0.5, 1.0, 2.0, 4.0)


class Refused(Exception):
    """A decision or read the system refused; the message is the one line a person sees."""


def no_answer(incident_id: str) -> str:
    return f"{incident_id} did not answer in time; is the worker running? (make run)"


def not_a_business_incident(incident_id: str) -> str:
    return f"{incident_id} is not a business incident; start one with incidentctl business-incident {incident_id}"


def decision_model(name: str, about_a_message: bool) -> tuple[type[Decision], bool] | None:
    """The model of the decision called `name`, and whether it is a step of the message loop; None when
    no workflow knows the name. `estimate` is on both: an estimate about a message is the loop's."""
    if name in COMMS_DECISIONS and (about_a_message or name not in INCIDENT_DECISIONS):
        return COMMS_DECISIONS[name], True
    if name in INCIDENT_DECISIONS:
        return INCIDENT_DECISIONS[name], False
    return None


def incident_decision(model: type[Decision]) -> str:
    """The registry's name for an incident decision's model (each has exactly one)."""
    return next(name for name, known in INCIDENT_DECISIONS.items() if known is model)


def step_result_type(model: type[Decision]) -> Any:
    """What a step of the message loop answers: the message it moved on, or the audiences in order."""
    return CommsMessage if issubclass(model, MessageStep) else list[Audience]


def known_decisions() -> list[str]:
    return sorted({*INCIDENT_DECISIONS, *COMMS_DECISIONS})


def is_transport_error(err: BaseException) -> bool:
    """The request may or may not have reached Temporal: sending the same update id again is safe."""
    if isinstance(err, WorkflowUpdateRPCTimeoutOrCancelledError):
        return True
    return isinstance(err, RPCError) and err.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED)


def is_unreachable(err: BaseException) -> bool:
    """A server that is down or refuses connections, as the SDK reports it (not a refusal by Temporal)."""
    if isinstance(err, RPCError):
        return err.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED)
    return isinstance(err, RuntimeError) and "Failed client connect" in str(err)


def refusal_for(err: BaseException, incident_id: str, *, loop: bool = False) -> str | None:
    """The one line to show for an error Temporal returned, or None when it is not a refusal.
    `loop`: the error came from the incident's message loop, not from the incident."""
    if isinstance(err, WorkflowUpdateFailedError):
        return str(err.cause.message if hasattr(err.cause, "message") else err.cause)
    if isinstance(err, WorkflowQueryFailedError | WorkflowQueryRejectedError):
        return f"{incident_id}: {err}"
    if isinstance(err, RPCError) and err.status == RPCStatusCode.NOT_FOUND:
        if loop:
            if "already completed" in str(err):
                return f"{incident_id}'s message loop has ended; nothing in it can change any more"
            return f"{incident_id}'s message loop is not running yet; try again in a moment"
        if "already completed" in str(err):
            return f"{incident_id} is closed; nothing about it can change any more"
        return f"no incident {incident_id} (incidentctl list shows open ones)"
    return None


async def query_state(client: Client, incident_id: str) -> IncidentState:
    handle = client.get_workflow_handle(incident_id)
    try:
        state: IncidentState = await handle.query(
            ids.INCIDENT_STATE, result_type=IncidentState, rpc_timeout=ANSWER_WITHIN
        )
        return state
    except RPCError as err:
        if err.status in (RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED):
            raise Refused(no_answer(incident_id)) from err
        message = refusal_for(err, incident_id)
        if message is None:
            raise
        raise Refused(message) from err
    except (WorkflowQueryFailedError, WorkflowQueryRejectedError) as err:
        raise Refused(f"{incident_id}: {err}") from err


async def loop_state(client: Client, incident_id: str, *, loop: str = "") -> CommsState:
    """The state of the incident's message loop (its messages, who owes what on each); `loop`: its workflow
    id when the caller already has it (message_loop_id), else it is read from the incident's state."""
    loop = loop or await message_loop_id(client, incident_id)
    try:
        state: CommsState = await client.get_workflow_handle(loop).query(
            ids.COMMS_STATE, result_type=CommsState, rpc_timeout=ANSWER_WITHIN
        )
    except Exception as err:
        message = refusal_for(err, incident_id, loop=True)
        if message is None:
            raise
        raise Refused(message) from err
    return state


async def message_loop_id(client: Client, incident_id: str) -> str:
    """The workflow id of the incident's message loop, from its state; refused when there is none."""
    loop = (await query_state(client, incident_id)).comms_workflow_id
    if not loop:
        raise Refused(not_a_business_incident(incident_id))
    return loop


async def send_decision(
    client: Client,
    incident_id: str,
    decision: Decision,
    *,
    update_id: str | None = None,
    retry_within: timedelta | None = None,
) -> str:
    """One decision on the incident, as the Update the registry names for its model; what the incident said."""
    result: str = await _send(
        client, incident_id, incident_id, incident_decision_name(decision), decision, str, update_id, retry_within
    )
    return result


async def send_step(
    client: Client,
    incident_id: str,
    name: str,
    step: Decision,
    result_type: Any,
    *,
    update_id: str | None = None,
    retry_within: timedelta | None = None,
    loop: str = "",
) -> Any:
    """One step (COMMS_DECISIONS[name]) on the message loop of the incident, found through its state unless
    the caller passes its workflow id as `loop`."""
    loop = loop or await message_loop_id(client, incident_id)
    return await _send(client, loop, incident_id, name, step, result_type, update_id, retry_within)


async def _send(
    client: Client,
    workflow_id: str,
    incident_id: str,
    name: str,
    payload: Decision,
    result_type: Any,
    update_id: str | None,
    retry_within: timedelta | None,
) -> Any:
    """The Update, once; or, with `retry_within`, again under the same id while the answer is lost on the way,
    with backoff, until that much time has passed (then: Refused, the decision may be queued)."""
    handle = client.get_workflow_handle(workflow_id)
    deadline = time.monotonic() + (retry_within.total_seconds() if retry_within else 0)
    pauses = iter(BACKOFF_SECONDS)
    while True:
        left = deadline - time.monotonic()
        try:
            return await handle.execute_update(
                name,
                payload,
                id=update_id,
                result_type=result_type,
                rpc_timeout=min(ANSWER_WITHIN, timedelta(seconds=left)) if retry_within else ANSWER_WITHIN,
            )
        except Exception as err:
            if not is_transport_error(err):
                message = refusal_for(err, incident_id, loop=workflow_id != incident_id)
                if message is None:
                    raise
                raise Refused(message) from err
            if retry_within is None:
                raise
            pause = next(pauses, BACKOFF_SECONDS[-1])
            if time.monotonic() + pause + 1 > deadline:  # no time left for another attempt that could answer
                raise Refused(may_be_queued(incident_id, retry_within, loop=workflow_id != incident_id)) from err
            await asyncio.sleep(pause)


def may_be_queued(incident_id: str, waited: timedelta, *, loop: bool = False) -> str:
    check = "messages" if loop else "show"
    return (
        f"{incident_id} did not confirm the decision within {waited.total_seconds():g} s; it may be queued and "
        f"apply once a worker runs (make run): check incidentctl {check} {incident_id} before sending it again"
    )
