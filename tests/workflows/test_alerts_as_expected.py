"""The alert path as an SRE expects it, on the time-skipping server with the real worker: a later alert raises
the incident, a recurrence reaches the Incident Commander, a flapping alert is told once, a recovered alert
opens nothing, a closed incident's next alert opens the next occurrence, a lookup is overtaken by what landed
meanwhile, the ladder's last notice waits for no delivery, and a retried decision is applied once."""

from __future__ import annotations

import re
import socket
import uuid
from datetime import timedelta

import pytest
from temporalio.service import RPCError
from temporalio.worker import Worker

from client.alerts import send_alert
from tests.workflows.helpers import alert, make_policy, open_incident, outbox, state, texts, timeline
from worker import build_worker
from workflows.contracts.policy import Policy
from workflows.contracts.temporal.ids import incident_id_for, schedule_workflow_id
from workflows.contracts.vocabulary import AlertStatus, IncidentKind, Severity, Status
from workflows.incident.model import (
    Acknowledge,
    ApproveStatement,
    Classify,
    CloseIncident,
    ProgressNote,
    PublishPostmortem,
    Reopen,
    Resolve,
    ReviewHeld,
)
from workflows.incident.workflow import IncidentWorkflow
from workflows.oncall.model import ScheduleInput
from workflows.oncall.overrides import ScheduleWorkflow

STEP = re.compile(r"escalation:r\d+:l\d+:t\d+")
RESOLUTION = Resolve(actor="alice", overview="Checkout 500s", how_resolved="Rolled back", prevention="Canaries")


def pages(settings, round_: int | None = None) -> list[str]:
    """The step keys of every page sent (of one escalation round)."""
    keys = [m.group(0) for e in outbox(settings, "opsgenie", "page") if (m := STEP.search(e["key"]))]
    return [k for k in keys if round_ is None or k.startswith(f"escalation:r{round_}:")]


async def until(env, condition, step: timedelta = timedelta(seconds=1), tries: int = 60) -> None:
    for _ in range(tries):
        if await condition():
            return
        await env.sleep(step)
    raise AssertionError("condition never held")


# --- a later alert raises the incident ---------------------------------------------------------------


async def test_a_later_critical_alert_raises_a_warning_and_pages_within_seconds(ts_env, settings, worker):
    handle = await open_incident(ts_env, settings, make_policy(business_incidents=True), alert(severity=Severity.SEV3))
    await ts_env.sleep(timedelta(minutes=1))
    assert not (await state(handle)).confirmed and pages(settings) == [], "a warning waits for its assessment"
    await handle.signal(IncidentWorkflow.alert, alert(severity=Severity.SEV1, fingerprint="fp2"))
    await ts_env.sleep(timedelta(seconds=5))
    s = await state(handle)
    assert s.confirmed and s.severity is Severity.SEV1 and pages(settings, 1)
    assert s.business_incident, "every SEV1 is a business incident in the example policy"


async def test_a_later_alert_with_a_critical_criterion_pages_a_confirmed_incident_afresh(ts_env, settings, worker):
    handle = await open_incident(ts_env, settings, make_policy(), alert(severity=Severity.SEV3))
    await handle.execute_update("classify", Classify(actor="alice", kind=IncidentKind.INCIDENT))
    await handle.execute_update("acknowledge", Acknowledge(actor="bob"))
    await ts_env.sleep(timedelta(minutes=1))
    assert pages(settings, 2) == []
    await handle.signal(IncidentWorkflow.alert, alert(severity=Severity.SEV3, fingerprint="fp2", criterion="site_down"))
    await ts_env.sleep(timedelta(seconds=5))
    s = await state(handle)
    assert s.severity is Severity.SEV1 and s.criteria == ["site_down"]
    assert s.acknowledged_by is None and pages(settings, 2), "the SEV3's acknowledgement does not cover a SEV1"


async def test_a_later_alert_never_lowers_the_incident(ts_env, settings, worker):
    handle = await open_incident(ts_env, settings, make_policy(), alert(severity=Severity.SEV1))
    await handle.signal(IncidentWorkflow.alert, alert(severity=Severity.SEV3, fingerprint="fp2"))
    await ts_env.sleep(timedelta(seconds=5))
    assert (await state(handle)).severity is Severity.SEV1


# --- recurrence and flapping ---------------------------------------------------------------------


def not_reopening() -> Policy:
    policy = make_policy()
    return policy.model_copy(update={"response": policy.response.model_copy(update={"reopen_on_recurrence": False})})


async def test_a_recurrence_the_policy_does_not_reopen_is_told_to_the_incident_commander(ts_env, settings, worker):
    handle = await open_incident(ts_env, settings, not_reopening(), alert(severity=Severity.SEV1))
    await ts_env.sleep(timedelta(seconds=5))
    await handle.execute_update("resolve", RESOLUTION)
    for status in (AlertStatus.FIRING, AlertStatus.RESOLVED, AlertStatus.FIRING):
        await handle.signal(IncidentWorkflow.alert, alert(severity=Severity.SEV1, status=status))
    await ts_env.sleep(timedelta(seconds=5))
    told = [e for e in outbox(settings, "slack", "dm") if "fires again" in e["payload"]["text"]]
    assert len(told) == 1 and told[0]["payload"]["user_id"] == "U0ALICE", "once per resolution, to the IC"
    assert "incidentctl reopen" in told[0]["payload"]["text"]
    assert (await state(handle)).status is Status.RESOLVED, "the IC decides"


async def test_a_flapping_alert_is_told_once_per_quiet_period_and_its_timeline_stays_short(ts_env, settings, worker):
    handle = await open_incident(ts_env, settings, make_policy(), alert(severity=Severity.SEV2))
    await handle.execute_update("classify", Classify(actor="alice", kind=IncidentKind.INCIDENT))
    for _ in range(10):
        await handle.signal(IncidentWorkflow.alert, alert(status=AlertStatus.RESOLVED))
        await ts_env.sleep(timedelta(minutes=1))
        await handle.signal(IncidentWorkflow.alert, alert())
        await ts_env.sleep(timedelta(minutes=1))
    await ts_env.sleep(timedelta(seconds=5))
    dms = texts(settings, "slack", "dm")
    assert len([t for t in dms if "resolve it when you are sure" in t]) == 1, "the first resolve, before it flapped"
    assert len([t for t in dms if "is flapping" in t]) == 1
    s = await state(handle)
    assert len(timeline(s, "alert")) <= 5, "20 flaps, a handful of lines"
    assert s.alerts["fp1"].count == 21, "every flap is counted"
    await ts_env.sleep(timedelta(minutes=20))  # quiet: the next change is told again
    await handle.signal(IncidentWorkflow.alert, alert(status=AlertStatus.RESOLVED))
    await ts_env.sleep(timedelta(seconds=5))
    assert len([t for t in texts(settings, "slack", "dm") if "resolve it when you are sure" in t]) == 2


# --- what opens an incident ----------------------------------------------------------------------


async def test_a_resolved_notification_for_a_group_without_an_incident_opens_none(ts_env, settings, worker):
    recovered = alert(severity=Severity.SEV1, status=AlertStatus.RESOLVED, key=f"g-{uuid.uuid4().hex[:6]}")
    assert await send_alert(ts_env.client, settings, make_policy(), recovered) is False
    incident_id = incident_id_for(recovered.source, recovered.dedup_key)
    with pytest.raises(RPCError, match="not found"):
        await ts_env.client.get_workflow_handle(incident_id).describe()
    assert pages(settings) == []


async def test_an_alert_firing_while_the_closed_incident_finishes_its_close_out_opens_the_next_occurrence(
    ts_env, settings, worker
):
    handle = await open_incident(ts_env, settings, make_policy(), alert(severity=Severity.SEV1))
    await ts_env.sleep(timedelta(seconds=5))
    await handle.execute_update("acknowledge", Acknowledge(actor="bob"))
    await handle.execute_update("resolve", RESOLUTION)
    await handle.execute_update("review_held", ReviewHeld(actor="alice"))
    await ts_env.sleep(timedelta(seconds=5))
    await handle.execute_update("publish_postmortem", PublishPostmortem(actor="alice", url="https://wiki/pm"))
    await handle.execute_update("approve_statement", ApproveStatement(actor="carol", statement_id="S1"))
    await handle.execute_update("close", CloseIncident(actor="alice"))
    await handle.signal(IncidentWorkflow.alert, alert(severity=Severity.SEV1))  # during the close-out
    await until(ts_env, lambda: _confirmed_anew(ts_env, handle))
    assert len([k for k in pages(settings) if k == "escalation:r1:l0:t1"]) == 2, "the next occurrence pages too"


async def _confirmed_anew(env, handle) -> bool:
    latest = env.client.get_workflow_handle(handle.id)
    if (await latest.describe()).run_id == handle.result_run_id:
        return False
    s = await latest.query(IncidentWorkflow.state)
    return s.confirmed and s.status is Status.OPEN


# --- what lands while the on-call lookup runs ------------------------------------------------------


def on_a_schedule(policy: Policy) -> Policy:
    raw = policy.model_dump(mode="json")
    raw["schedules"] = {"primary": {"layers": [{"members": ["bob", "alice"], "rotation": "weekly"}]}}
    raw["escalation"]["tiers"] = [{"notify": ["schedule:primary"], "channels": ["page"], "wait_minutes": 5}]
    return Policy.model_validate(raw)


async def slow_lookup(env, settings) -> None:
    """The schedule's overrides are held by a workflow whose worker has gone: each lookup waits out its
    timeouts (seconds), while the test server's clock still moves."""
    gone = f"gone-{settings.incident_task_queue}"
    async with Worker(env.client, task_queue=gone, workflows=[ScheduleWorkflow]):
        schedule = await env.client.start_workflow(
            ScheduleWorkflow.run, ScheduleInput(schedule="primary"), id=schedule_workflow_id("primary"), task_queue=gone
        )
        await schedule.query(ScheduleWorkflow.overrides)


async def test_a_disturbance_classified_during_the_on_call_lookup_is_closed_not_paged(ts_env, settings, worker):
    await slow_lookup(ts_env, settings)
    handle = await open_incident(ts_env, settings, on_a_schedule(make_policy()), alert(severity=Severity.SEV2))
    await handle.execute_update("classify", Classify(actor="alice", kind=IncidentKind.INCIDENT))  # lookup starts
    await handle.execute_update("classify", Classify(actor="alice", kind=IncidentKind.DISTURBANCE))
    await until(ts_env, lambda: _settled(handle), tries=40)
    s = await state(handle)
    assert s.status is Status.CLOSED and s.kind is IncidentKind.DISTURBANCE and not s.confirmed
    assert pages(settings) == []


async def _settled(handle) -> bool:
    s = await state(handle)
    return s.status is Status.CLOSED or s.confirmed


async def test_an_acknowledgement_during_the_on_call_lookup_stops_the_round_before_it_pages(ts_env, settings, worker):
    handle = await open_incident(ts_env, settings, on_a_schedule(make_policy()), alert(severity=Severity.SEV2))
    await handle.execute_update("classify", Classify(actor="alice", kind=IncidentKind.INCIDENT))
    await ts_env.sleep(timedelta(seconds=5))
    assert pages(settings, 1)
    await slow_lookup(ts_env, settings)
    await handle.execute_update("acknowledge", Acknowledge(actor="bob"))
    await handle.execute_update("resolve", RESOLUTION)
    await handle.execute_update("reopen", Reopen(actor="alice", reason="back"))  # round 2 looks up on call
    await handle.execute_update("acknowledge", Acknowledge(actor="alice"))  # during the lookup
    await until(ts_env, lambda: _noted(handle, "round 2 not paged"), tries=40)
    s = await state(handle)
    assert pages(settings, 2) == [] and not s.escalation_active and s.ladder_due is None, "no tier is due either"


async def _noted(handle, words: str) -> bool:
    return any(words in e.text for e in (await state(handle)).timeline)


# --- the ladder's last word --------------------------------------------------------------------------


async def test_nobody_acknowledged_is_told_at_once_while_e_mail_still_retries(ts_env, settings):
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        dead_port = unused.getsockname()[1]
    smtp_down = settings.model_copy(update={"smtp_host": "127.0.0.1", "smtp_port": dead_port})
    async with build_worker(ts_env.client, smtp_down):
        handle = await open_incident(ts_env, smtp_down, make_policy(), alert(severity=Severity.SEV1))
        await ts_env.sleep(timedelta(minutes=31))  # 5 + 10 min, twice; e-mail to the CTO retries for an hour
        await until(ts_env, lambda: _noted(handle, "Ladder exhausted"), tries=30)
        s = await state(handle)
        [exhausted] = [e.at for e in s.timeline if "Ladder exhausted" in e.text]
        assert exhausted - s.opened_at < timedelta(minutes=31)
        assert any("through every escalation tier" in t for t in texts(smtp_down, "slack", "dm"))


# --- decisions once ----------------------------------------------------------------------------------


async def test_a_decision_retried_after_a_continue_as_new_is_applied_once(ts_env, settings, worker):
    handle = await open_incident(ts_env, settings, make_policy(), alert(severity=Severity.SEV1), history_limit=60)
    note = ProgressNote(actor="bob", text="looking at the load balancer")
    first = await handle.execute_update("progress_note", note, id="cli-retry-1", result_type=str)
    first_run = (await handle.describe()).run_id
    for _ in range(40):
        if (await handle.describe()).run_id != first_run:
            break
        await ts_env.sleep(timedelta(minutes=10))
    latest = ts_env.client.get_workflow_handle(handle.id)
    assert (await latest.describe()).run_id != first_run, "the incident continued as new"
    again = await latest.execute_update("progress_note", note, id="cli-retry-1", result_type=str)
    assert again == first
    assert len(timeline(await state(latest), "progress_note")) == 1


async def test_an_incident_acknowledged_while_it_was_assessed_is_not_paged_at_its_confirmation(
    ts_env, settings, worker
):
    handle = await open_incident(ts_env, settings, make_policy(), alert(severity=Severity.SEV3))
    await handle.execute_update("acknowledge", Acknowledge(actor="bob"))
    await handle.signal(IncidentWorkflow.alert, alert(severity=Severity.SEV1, fingerprint="fp2"))
    await ts_env.sleep(timedelta(minutes=6))  # past tier 1's wait as well
    s = await state(handle)
    assert s.confirmed and s.acknowledged_by == "bob"
    assert pages(settings) == [], "bob has it: nobody is woken"
