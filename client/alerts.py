"""Recording an alert on its incident: `send_alert`, the start (or signal-with-start) every way in (the HTTP
service, Slack, incidentctl, a missed heartbeat) uses, and `manual_alert` for a person declaring one."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.api.common.v1 import Memo, Payloads, WorkflowType
from temporalio.api.common.v1 import Priority as PriorityProto
from temporalio.api.enums.v1 import WorkflowIdConflictPolicy
from temporalio.api.sdk.v1 import UserMetadata
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import SignalWithStartWorkflowExecutionRequest, StartWorkflowExecutionRequest
from temporalio.client import Client
from temporalio.converter import WorkflowSerializationContext
from temporalio.service import RPCError, RPCStatusCode

from settings import Settings
from workflows.contracts import limits
from workflows.contracts.policy import Policy
from workflows.contracts.temporal.ids import ALERT, INCIDENT_WORKFLOW, incident_id_for
from workflows.contracts.temporal.priority import INCIDENT_KEY
from workflows.contracts.vocabulary import AlertStatus, Severity
from workflows.incident.inputs import IncidentInput
from workflows.incident.model import AlertEvent

# One attempt's budget; the HTTP service bounds the whole request separately.
SEND_TIMEOUT = timedelta(seconds=5)
# How often an alert tries again when its incident closed between the start and the signal that follow each other.
CLOSING_RACES = 3


def manual_alert(
    title: str,
    reporter: str,
    *,
    severity: Severity | None = None,
    service: str = "",
    description: str = "",
    now: datetime | None = None,
    dedup_key: str = "",
) -> AlertEvent:
    """A person declaring an incident: an alert of its own group, so it opens a new incident.

    `dedup_key` names the request (Slack's trigger_id) so that the same request twice is one incident.
    """
    return AlertEvent(
        source="manual",
        dedup_key=dedup_key or uuid.uuid4().hex,
        title=title,
        description=description,
        severity=severity,
        service=service,
        labels={"reported_by": reporter},
        received_at=now or datetime.now(UTC),
    )


def summary_line(event: AlertEvent) -> str:
    """The static summary the Temporal UI shows: title · service · source, on one line, cut by bytes (as
    servers measure it), never by characters."""
    line = " · ".join(part for part in (" ".join(event.title.split()), event.service, event.source) if part)
    return limits.cut(line, limits.SUMMARY_BYTES)


async def send_alert(client: Client, settings: Settings, policy: Policy, event: AlertEvent) -> bool:
    """Record one alert on its incident; True when this alert opened the incident. A resolved alert opens none.

    A new group is started with the alert in its input, asking for eager start: where this process runs a
    worker on the task queue (the HTTP service does), the server hands the first workflow task straight to
    it, and that task's first command is the page, dispatched the same way (workflows/incident/response.py). So the
    first page of a new incident waits in no queue on the server, however busy it is. Where the group's
    incident already runs, the start is refused and the alert goes by signal-with-start, which is atomic on
    the server: however many replicas race on one group, one workflow runs and every alert lands on it. An
    incident that closes between the two calls refuses the signal; the alert then tries again, and opens the
    group's next incident.
    """
    incident_id = incident_id_for(event.source, event.dedup_key)
    if event.status is AlertStatus.RESOLVED:
        await _tell_running_incident(client, incident_id, event)
        return False
    converter = client.data_converter.with_context(
        WorkflowSerializationContext(namespace=client.namespace, workflow_id=incident_id)
    )
    start = IncidentInput(incident_id=incident_id, policy=policy, ui_url=incident_url(settings, incident_id))
    opening = start.model_copy(update={"first_alert": event})
    opening_input, summary, title = await converter.encode([opening, summary_line(event), event.title])
    common: dict[str, Any] = dict(
        namespace=client.namespace,
        workflow_id=incident_id,
        workflow_type=WorkflowType(name=INCIDENT_WORKFLOW),
        task_queue=TaskQueue(name=settings.incident_task_queue),
        identity=client.identity,
        memo=Memo(fields={"title": title}),  # `incidentctl list` shows it: list results carry memo, not summary
        user_metadata=UserMetadata(summary=summary),  # the static summary of the Temporal UI
        priority=PriorityProto(priority_key=INCIDENT_KEY),  # workflows/contracts/temporal/priority.py
    )
    for tries_left in reversed(range(CLOSING_RACES)):
        try:
            await client.workflow_service.start_workflow_execution(
                StartWorkflowExecutionRequest(
                    **common,
                    input=Payloads(payloads=[opening_input]),
                    request_id=str(uuid.uuid4()),  # the server's deduplication of this call's own retries
                    request_eager_execution=True,
                    workflow_id_conflict_policy=WorkflowIdConflictPolicy.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
                ),
                retry=True,
                timeout=SEND_TIMEOUT,
            )
            return True
        except RPCError as err:
            if err.status != RPCStatusCode.ALREADY_EXISTS:
                raise
        start_input, alert = await converter.encode([start, event])  # only now: most alerts open their incident
        try:
            answer = await client.workflow_service.signal_with_start_workflow_execution(
                SignalWithStartWorkflowExecutionRequest(
                    **common,
                    input=Payloads(payloads=[start_input]),
                    signal_name=ALERT,
                    signal_input=Payloads(payloads=[alert]),
                    request_id=str(uuid.uuid4()),
                ),
                retry=True,
                timeout=SEND_TIMEOUT,
            )
        except RPCError as err:
            # The incident closed between the two calls (the server answers "Completed workflow"): the next
            # start opens the group's new incident.
            if err.status != RPCStatusCode.NOT_FOUND or not tries_left:
                raise
            continue
        return answer.started
    raise AssertionError("unreachable: the last try returns or raises")


async def _tell_running_incident(client: Client, incident_id: str, event: AlertEvent) -> None:
    """A resolved notification belongs to an incident that runs: for a group with none (it never fired here,
    or its incident closed) it opens nothing and asks nobody to assess an alert that has recovered."""
    try:
        await client.get_workflow_handle(incident_id).signal(ALERT, event, rpc_timeout=SEND_TIMEOUT)
    except RPCError as err:
        if err.status != RPCStatusCode.NOT_FOUND:
            raise


def incident_url(settings: Settings, incident_id: str) -> str:
    base = settings.temporal_ui_url.rstrip("/")
    return f"{base}/namespaces/{settings.temporal_namespace}/workflows/{incident_id}"
