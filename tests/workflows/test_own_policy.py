"""A worker runs only its own policy (own_policy.py): a start from outside under any other policy, or carrying
state, is refused before any side effect and recorded; what a workflow hands on itself keeps running."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from own_policy import REFUSED
from settings import Settings
from tests.conftest import run_under
from tests.workflows.helpers import alert, make_policy, open_incident, outbox, state
from worker import build_worker
from workflows.contracts.vocabulary import IncidentKind, Severity
from workflows.incident.inputs import IncidentInput
from workflows.incident.model import Classify, IncidentState, ProgressNote
from workflows.incident.workflow import IncidentWorkflow


async def start_from_outside(env: WorkflowEnvironment, settings: Settings, start: IncidentInput) -> ApplicationError:
    """Start as anyone with access to the namespace can, and return why the run failed. The refused run
    replays as refused: its state can still be read."""
    handle = await env.client.start_workflow(
        IncidentWorkflow.run,
        start,
        id=start.incident_id,
        task_queue=settings.incident_task_queue,
        start_signal="alert",
        start_signal_args=[alert(severity=Severity.SEV1)],
        execution_timeout=timedelta(days=1),
    )
    with pytest.raises(WorkflowFailureError) as failed:
        await handle.result()
    assert isinstance(failed.value.cause, ApplicationError)
    assert not (await handle.query(IncidentWorkflow.state)).confirmed
    return failed.value.cause


async def test_a_worker_given_a_foreign_policy_refuses_it(ts_env, settings, worker, tmp_path: Path):
    own = make_policy()
    bob = own.people["bob"].model_copy(update={"email": "bob@attacker.example", "pager_id": "attacker"})
    elsewhere = tmp_path / "elsewhere"
    foreign = own.model_copy(
        update={
            "people": {**own.people, "bob": bob},
            "post_incident": own.post_incident.model_copy(update={"log_dir": str(elsewhere)}),
        }
    )
    refused = await start_from_outside(ts_env, settings, IncidentInput(incident_id="INC-FOREIGN1", policy=foreign))
    assert refused.type == REFUSED
    assert foreign.digest() in refused.message and str(settings.incident_policy) in refused.message
    assert outbox(settings) == [], "a SEV1 under the foreign policy paged, posted or mailed nobody"
    assert not elsewhere.exists()


async def test_a_start_from_outside_carrying_state_is_refused(ts_env, settings, worker):
    """State comes only with the workflow's own continue-as-new: it holds queued deliveries and recipients."""
    handle = await open_incident(ts_env, settings, make_policy(), alert(severity=Severity.SEV2))
    carried: IncidentState = await state(handle)
    crafted = IncidentInput(incident_id=f"INC-{uuid.uuid4().hex[:8].upper()}", policy=make_policy(), state=carried)
    refused = await start_from_outside(ts_env, settings, crafted)
    assert refused.type == REFUSED and "carries no state" in refused.message


async def test_a_running_incident_keeps_its_policy_after_the_file_changes(dev_env, settings):
    """Its continue-as-new runs on a restarted worker whose file now holds another policy."""
    async with build_worker(dev_env.client, settings):
        handle = await open_incident(dev_env, settings, make_policy(), alert(severity=Severity.SEV2), history_limit=40)
        await handle.execute_update("classify", Classify(actor="alice", kind=IncidentKind.INCIDENT))
    run_under(settings, make_policy(organisation="after the edit"))
    async with build_worker(dev_env.client, settings):  # it never read the incident's policy
        first_run = (await handle.describe()).run_id
        for number in range(40):  # each note grows the history; past 40 events the incident continues as new
            await handle.execute_update("progress_note", ProgressNote(actor="bob", text=f"note {number}"))
        latest = await handle.describe()
        while latest.run_id == first_run:  # it continues once its deliveries in flight have landed
            await asyncio.sleep(0.1)
            latest = await handle.describe()
        # The new run takes a decision (a refused run would have failed at its first task) and runs on.
        await handle.execute_update("progress_note", ProgressNote(actor="bob", text="after continue-as-new"))
        assert (await handle.describe()).status is WorkflowExecutionStatus.RUNNING
