"""IncidentWorkflow and its CommsWorkflow child together: seed 004's business incident in the lifecycle."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from settings import Settings
from tests.workflows.helpers import alert, make_policy, open_incident, state, timeline
from worker import build_worker
from workflows.comms.model import CommsState, Skip, Step
from workflows.contracts.vocabulary import Phase, Severity
from workflows.incident.model import IncidentState, Reopen, Resolve, SetPhase, TriggerBusinessIncident


async def comms_state(env: WorkflowEnvironment, incident_id: str) -> CommsState:
    incident = await env.client.get_workflow_handle(incident_id).query("state", result_type=IncidentState)
    return await env.client.get_workflow_handle(incident.comms_workflow_id).query("state", result_type=CommsState)


async def test_seed004_every_sev1_is_a_business_incident_and_phases_reach_the_message_loop(
    ts_env: WorkflowEnvironment, settings: Settings
):
    async with build_worker(ts_env.client, settings):
        handle = await open_incident(
            ts_env, settings, make_policy(business_incidents=True), alert(severity=Severity.SEV1)
        )
        await ts_env.sleep(timedelta(seconds=10))
        comms = await comms_state(ts_env, handle.id)
        assert [m.message_id for m in comms.messages] == [
            "investigation/internal_stakeholders",
            "investigation/strategic_customers",
            "investigation/all_customers",
        ]
        await handle.execute_update("set_phase", SetPhase(actor="bob", phase=Phase.IDENTIFICATION))
        await ts_env.sleep(timedelta(seconds=10))
        comms = await comms_state(ts_env, handle.id)
        steps = {m.message_id: m.step for m in comms.messages}
        assert steps["investigation/internal_stakeholders"] is Step.SUPERSEDED
        assert steps["identification/internal_stakeholders"] is not Step.SUPERSEDED
        assert any("message loop started" in t for t in timeline(await state(handle), "business_incident"))


async def test_seed004_business_incident_by_a_person_only_during_investigation_or_identification(
    ts_env: WorkflowEnvironment, settings: Settings
):
    async with build_worker(ts_env.client, settings):
        handle = await open_incident(ts_env, settings, make_policy(), alert(severity=Severity.SEV1))
        await ts_env.sleep(timedelta(seconds=5))
        await handle.execute_update(
            "trigger_business_incident", TriggerBusinessIncident(actor="carol", reason="customers are calling")
        )
        await ts_env.sleep(timedelta(seconds=5))
        assert (await comms_state(ts_env, handle.id)).triggered_by == "carol"
        await handle.execute_update("resolve", Resolve(actor="alice", overview="o", how_resolved="h", prevention="p"))
        await ts_env.sleep(timedelta(seconds=5))
        comms = await comms_state(ts_env, handle.id)
        assert any(m.message_id.startswith("resolution/") for m in comms.messages)


async def test_seed004_reopened_business_incident_resumes_the_message_loop_for_its_new_phase(
    ts_env: WorkflowEnvironment, settings: Settings
):
    """A reopened SEV1 is back in Investigation: the message loop, idle since its Resolution messages, opens that
    phase's messages again (seed 004: "a message per audience per phase")."""
    async with build_worker(ts_env.client, settings):
        handle = await open_incident(
            ts_env, settings, make_policy(business_incidents=True), alert(severity=Severity.SEV1)
        )
        await ts_env.sleep(timedelta(seconds=5))
        await handle.execute_update("resolve", Resolve(actor="alice", overview="o", how_resolved="h", prevention="p"))
        await ts_env.sleep(timedelta(seconds=5))
        loop = ts_env.client.get_workflow_handle((await state(handle)).comms_workflow_id)
        for audience in ("internal_stakeholders", "strategic_customers", "all_customers"):
            await loop.execute_update(
                "skip", Skip(actor="carol", message_id=f"resolution/{audience}", reason="told on the call")
            )
        await ts_env.sleep(timedelta(seconds=5))
        comms = await comms_state(ts_env, handle.id)
        assert comms.status == "analysis: nothing pending; waiting for the incident's next phase"

        await handle.execute_update("reopen", Reopen(actor="alice", reason="errors are back"))
        await ts_env.sleep(timedelta(seconds=5))
        comms = await comms_state(ts_env, handle.id)
        steps = {m.message_id: m.step for m in comms.messages}
        assert steps["investigation-2/internal_stakeholders"] is Step.DRAFTING
        assert [s for mid, s in steps.items() if mid.startswith("investigation-2/")][1:] == [Step.QUEUED] * 2
        assert (await loop.describe()).status is WorkflowExecutionStatus.RUNNING


async def test_seed004_a_phase_entered_while_the_message_loop_starts_reaches_it(
    ts_env: WorkflowEnvironment, settings: Settings
):
    """The business incident and the next phase in one breath: the loop, started with the facts of the first,
    still hears of the second."""
    async with build_worker(ts_env.client, settings):
        handle = await open_incident(ts_env, settings, make_policy(), alert(severity=Severity.SEV1))
        await ts_env.sleep(timedelta(seconds=5))
        trigger = TriggerBusinessIncident(actor="carol", reason="customers are calling")
        await asyncio.gather(
            handle.execute_update("trigger_business_incident", trigger),
            handle.execute_update("set_phase", SetPhase(actor="bob", phase=Phase.IDENTIFICATION)),
        )
        await ts_env.sleep(timedelta(seconds=10))
        comms = await comms_state(ts_env, handle.id)
        assert any(m.message_id.startswith("identification/") for m in comms.messages), [
            m.message_id for m in comms.messages
        ]
