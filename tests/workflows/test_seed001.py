"""Seed 001 on the time-skipping server, under its example policy: the scope routes the incident, the owner is
asked at evaluation points, and an unassessed report waits for a person.

People: teo is the Technical Manager (U01TEO), sara the Customer Service Manager (U01SARA), ana and ben responders.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from temporalio.client import WorkflowUpdateFailedError

from policy_file import load_policy
from settings import ROOT, Settings
from tests.workflows.helpers import alert, always_business_hours, open_incident, outbox, state, timeline
from tests.workflows.test_incident_comms import comms_state
from workflows.comms.model import Skip, Step
from workflows.contracts.policy import Policy
from workflows.contracts.vocabulary import IncidentKind, Role, Scope, Severity, Status
from workflows.incident.model import Classify, CloseIncident, EvaluateClients, StatusUpdate

SEED001 = always_business_hours(load_policy(ROOT / "examples" / "policies" / "001-process-flow.toml"))


def dms(settings: Settings, slack_user_id: str, text: str) -> list[str]:
    return [
        e["payload"]["text"]
        for e in outbox(settings, "slack", "dm")
        if e["payload"]["user_id"] == slack_user_id and text in e["payload"]["text"]
    ]


async def confirmed_local(ts_env, settings: Settings, policy: Policy = SEED001, severity=Severity.SEV3):
    handle = await open_incident(ts_env, settings, policy, alert(severity=severity, service="portal"))
    await handle.execute_update(
        "classify", Classify(actor="ana", kind=IncidentKind.INCIDENT, severity=severity, scope=Scope.LOCAL)
    )
    return handle


async def test_seed001_local_incidents_are_handled_by_the_customer_service_manager(ts_env, settings, worker):
    handle = await confirmed_local(ts_env, settings)
    await ts_env.sleep(timedelta(minutes=116))  # SEV3: an update every 120 min, a reminder 5 min before
    s = await state(handle)
    assert s.assigned[Role.INCIDENT_COMMANDER] == "sara"
    assert dms(settings, "U01SARA", "A status update on") and not dms(settings, "U01TEO", "A status update on")
    await handle.execute_update("status_update", StatusUpdate(actor="sara", text="tickets answered"))


async def test_seed001_a_change_of_scope_hands_the_incident_over_and_tells_both(ts_env, settings, worker):
    handle = await confirmed_local(ts_env, settings)
    answer = await handle.execute_update("classify", Classify(actor="sara", scope=Scope.GLOBAL))
    assert "handed over from sara to teo" in answer
    await ts_env.sleep(timedelta(seconds=5))
    for person in ("U01SARA", "U01TEO"):
        assert dms(settings, person, "is now global: teo owns it"), person
    assert (await state(handle)).assigned[Role.INCIDENT_COMMANDER] == "teo"


async def test_seed001_tell_clients_now_drafts_the_client_message(ts_env, settings, worker):
    handle = await confirmed_local(ts_env, settings)  # a SEV3: no message loop of its own
    await ts_env.sleep(timedelta(seconds=5))
    assert dms(settings, "U01SARA", "Evaluation point on") and not dms(settings, "U01TEO", "Evaluation point on")
    await handle.execute_update("evaluate_clients", EvaluateClients(actor="sara", tell=True, reason="it lasts"))
    await ts_env.sleep(timedelta(seconds=10))
    assert "investigation/all_customers" in (await comms_state(ts_env, handle.id)).released
    loop = ts_env.client.get_workflow_handle((await state(handle)).comms_workflow_id)
    internal = Skip(actor="sara", message_id="investigation/internal_stakeholders", reason="told on the call")
    await loop.execute_update("skip", internal)  # the staff's message goes first; without it, the clients' now
    await ts_env.sleep(timedelta(seconds=5))
    comms = await comms_state(ts_env, handle.id)
    clients = next(m for m in comms.messages if m.message_id == "investigation/all_customers")
    assert clients.step is Step.DRAFTING  # the Technical SLT is asked to draft it
    s = await state(handle)
    assert any("tell clients now (all_customers): it lasts" in t for t in timeline(s, "evaluate_clients"))


async def test_seed001_not_now_is_recorded_and_asked_again_at_the_next_point(ts_env, settings, worker):
    handle = await confirmed_local(ts_env, settings, severity=Severity.SEV2)  # a SEV2 starts the message loop
    await handle.execute_update("evaluate_clients", EvaluateClients(actor="sara", tell=False, reason="slow only"))
    await ts_env.sleep(timedelta(seconds=10))
    comms = await comms_state(ts_env, handle.id)
    clients = next(m for m in comms.messages if m.message_id == "investigation/all_customers")
    assert clients.step is Step.SKIPPED and clients.ended_reason == "not now: slow only"
    await handle.execute_update("status_update", StatusUpdate(actor="sara", text="pool enlarged"))
    await ts_env.sleep(timedelta(seconds=5))
    assert len(dms(settings, "U01SARA", "Evaluation point on")) == 2
    assert any("(status update 1)" in t for t in dms(settings, "U01SARA", "Evaluation point on"))


async def test_seed001_an_unassessed_report_waits_for_a_person_and_the_assessors_are_asked_again(
    ts_env, settings, worker
):
    handle = await open_incident(ts_env, settings, SEED001, alert(severity=Severity.SEV2, service="portal"))
    await ts_env.sleep(timedelta(minutes=41))  # two assessment periods of 20 min
    s = await state(handle)
    assert not s.confirmed and s.kind is None and s.assessment_reminders == 2
    assert outbox(settings, "opsgenie") == []
    assert len(dms(settings, "U01ANA", "Still unassessed")) == 2
    await handle.execute_update("classify", Classify(actor="ana", kind=IncidentKind.INCIDENT))
    await ts_env.sleep(timedelta(seconds=5))
    assert (await state(handle)).confirmed and outbox(settings, "opsgenie", "page")


async def test_seed001_a_disturbance_has_an_owner_a_notice_and_a_follow_up_date(ts_env, settings, worker):
    handle = await open_incident(ts_env, settings, SEED001, alert(severity=Severity.SEV3, service="portal"))
    await handle.execute_update("classify", Classify(actor="ana", kind=IncidentKind.DISTURBANCE))
    await ts_env.sleep(timedelta(minutes=1))
    assert dms(settings, "U01SARA", "It is yours to follow up") and outbox(settings, "opsgenie") == []
    s = await state(handle)
    assert s.status is Status.OPEN and any("follow-up of the disturbance by sara" in w for w in s.waiting_on)
    await ts_env.sleep(timedelta(hours=24))
    assert dms(settings, "U01SARA", "Follow up the disturbance")
    with pytest.raises(WorkflowUpdateFailedError):
        await handle.execute_update("close", CloseIncident(actor="sara"))
    done = CloseIncident(actor="sara", stakeholders_satisfied=True, preventive_measures="driver pinned")
    await handle.execute_update("close", done)
    final = await handle.result()
    assert final.status is Status.CLOSED and outbox(settings, "opsgenie") == []


async def test_seed001_a_confirmed_incident_is_downgraded_and_upgraded_again_both_with_a_reason(
    ts_env, settings, worker
):
    handle = await confirmed_local(ts_env, settings, severity=Severity.SEV2)
    await ts_env.sleep(timedelta(minutes=1))
    pages = len(outbox(settings, "opsgenie", "page"))
    assert pages
    down = Classify(actor="sara", kind=IncidentKind.DISTURBANCE, note="one user only")
    assert "downgraded to a disturbance" in await handle.execute_update("classify", down)
    await ts_env.sleep(timedelta(hours=3))  # past the ladder and the update cadence: nothing more is paged
    s = await state(handle)
    assert not s.confirmed and outbox(settings, "opsgenie", "resolve")
    assert len(outbox(settings, "opsgenie", "page")) == pages
    assert dms(settings, "U01SARA", "It is yours to follow up")
    up = Classify(actor="sara", kind=IncidentKind.INCIDENT, note="three regions now")
    assert "upgraded to an incident" in await handle.execute_update("classify", up)
    await ts_env.sleep(timedelta(minutes=1))
    assert (await state(handle)).confirmed and len(outbox(settings, "opsgenie", "page")) > pages
