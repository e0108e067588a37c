"""An incident's history is bounded by its bytes as well as its events: a few large signals would reach the
server's 50 MB limit, which ends the run (and its pages), long before the 5,000 events that continue it."""

from __future__ import annotations

import asyncio

from temporalio.testing import WorkflowEnvironment

from settings import Settings
from tests.workflows.helpers import alert, make_policy, open_incident, state
from workflows.contracts import limits
from workflows.contracts.vocabulary import Severity
from workflows.incident.model import AlertEvent
from workflows.incident.workflow import IncidentWorkflow

SIGNAL = 500 * 1024  # under the SDK's warning on a payload's size


async def test_a_history_past_its_byte_limit_continues_as_new(
    dev_env: WorkflowEnvironment, settings: Settings, worker: None
) -> None:
    handle = await open_incident(dev_env, settings, make_policy(), alert(severity=Severity.SEV1))
    large = alert(severity=Severity.SEV1).model_dump()
    latest = dev_env.client.get_workflow_handle(handle.id)
    sent = 0
    async with asyncio.timeout(60):
        # each 500 KB: what a sender with namespace access can signal, past any door; the run notices its size
        # at its next workflow task, so the signals go on until it has continued as new
        while (await latest.describe()).run_id == handle.result_run_id:
            event = AlertEvent.model_construct(**{**large, "fingerprint": f"big-{sent}", "description": "d" * SIGNAL})
            await latest.signal(IncidentWorkflow.alert, event)
            sent += 1
            await asyncio.sleep(0.1)
    assert sent > limits.HISTORY_BYTES // SIGNAL, f"it continued as new after {sent} signals, before 8 MB"
    first_run = await handle.describe()
    assert first_run.history_length < 200, "it continued as new for its bytes, not its events"
    s = await state(latest)
    assert s.alert_count == sent + 1, "every alert counts across the runs"
