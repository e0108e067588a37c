"""How an alert reaches its incident: a new group is started eagerly with the alert in its input, a
running one gets the alert by signal-with-start (client/alerts.py)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

from temporalio.api.enums.v1 import EventType
from temporalio.testing import WorkflowEnvironment

from client.alerts import send_alert
from settings import Settings
from tests.workflows.helpers import alert
from workflows.contracts.policy import Policy
from workflows.contracts.temporal.ids import incident_id_for
from workflows.contracts.vocabulary import AlertStatus
from workflows.incident.model import IncidentState
from workflows.incident.workflow import IncidentWorkflow


async def alerts_counted(env: WorkflowEnvironment, incident_id: str, count: int) -> IncidentState:
    handle = env.client.get_workflow_handle(incident_id)
    for _ in range(300):
        s = await handle.query(IncidentWorkflow.state)
        if s.alert_count >= count:
            return s
        await asyncio.sleep(0.1)
    raise AssertionError(f"{incident_id} counted {s.alert_count} alerts, not {count}")


async def test_a_new_group_starts_in_this_process_at_once_and_its_alert_counts_first_and_once(
    dev_env: WorkflowEnvironment, settings: Settings, example_policy: Policy, worker: None
) -> None:
    key = uuid.uuid4().hex
    incident_id = incident_id_for("test", key)
    assert await send_alert(dev_env.client, settings, example_policy, alert("Checkout is failing", key=key))
    assert not await send_alert(
        dev_env.client, settings, example_policy, alert("Checkout is failing", key=key, status=AlertStatus.RESOLVED)
    )
    s = await alerts_counted(dev_env, incident_id, 2)
    assert s.alert_count == 2 and s.title == "Checkout is failing"
    assert s.alerts["fp1"].status is AlertStatus.RESOLVED, "the alert in the start input counted first"

    history = [e async for e in dev_env.client.get_workflow_handle(incident_id).fetch_history_events()]
    scheduled, started = history[1], history[2]
    assert (scheduled.event_type, started.event_type) == (
        EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED,
        EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED,
    )
    waited = started.event_time.ToDatetime() - scheduled.event_time.ToDatetime()
    # Eager start writes both in the start's own transaction; through the queue takes a poll's round trip.
    assert waited < timedelta(milliseconds=2), f"the first task waited {waited} for a worker"
    signals = [e for e in history if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED]
    assert len(signals) == 1, "the first alert travels in the input, the second by signal"
