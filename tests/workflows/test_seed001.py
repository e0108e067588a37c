"""Seed 001 on the time-skipping server, under its example policy: the scope routes the incident, the owner is
asked at evaluation points, and an unassessed report waits for a person.

People: teo is the Technical Manager (U01TEO), sara the Customer Service Manager (U01SARA), ana and ben responders.
"""

from __future__ import annotations

from datetime import timedelta

from policy_file import load_policy
from settings import ROOT, Settings
from tests.workflows.helpers import alert, always_business_hours, open_incident, outbox, state, timeline
from tests.workflows.test_incident_comms import comms_state
from workflows.comms.model import Skip, Step
from workflows.contracts.policy import Policy
from workflows.contracts.vocabulary import IncidentKind, Role, Scope, Severity
from workflows.incident.model import Classify, EvaluateClients, StatusUpdate

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
