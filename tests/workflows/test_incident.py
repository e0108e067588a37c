"""IncidentWorkflow on the time-skipping server: each rule of the seeds, hours of incident in seconds.

Tests assert on what the peers received (the outbox) and on the `state` query, never on internals.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from tests.fakes.telegram import FakeTelegram
from tests.workflows.helpers import (
    alert,
    make_policy,
    open_incident,
    outbox,
    state,
    texts,
    timeline,
)
from worker import build_worker
from workflows.contracts.policy import BusinessHours
from workflows.contracts.vocabulary import (
    AlertStatus,
    CriticalCriterion,
    IncidentKind,
    Phase,
    Role,
    Scope,
    Severity,
    Status,
)
from workflows.incident.inputs import IncidentInput
from workflows.incident.model import (
    Acknowledge,
    ApproveStatement,
    AssignTask,
    Classify,
    CloseIncident,
    Estimate,
    ProgressNote,
    PublishPostmortem,
    Reopen,
    ReportDataLoss,
    Resolve,
    ReviewHeld,
    SetPhase,
    StatusUpdate,
)
from workflows.incident.workflow import IncidentWorkflow

RESOLUTION = Resolve(
    actor="alice",
    overview="Checkout returned 500s",
    how_resolved="Rolled back release 42",
    prevention="Canary deploys for checkout",
)


async def refusal(call) -> str:
    with pytest.raises(WorkflowUpdateFailedError) as failed:
        await call
    return failed.value.cause.message if isinstance(failed.value.cause, ApplicationError) else ""


def minutes_after_open(s, text_part: str, kind: str = "page") -> list[float]:
    """When (minutes after opening, to the second) the timeline says it happened."""
    return [
        round((e.at - s.opened_at).total_seconds() / 60, 2)
        for e in s.timeline
        if e.kind == kind and text_part in e.text
    ]


async def test_seed000_confirmed_incident_pages_opens_one_channel_with_bridge_and_roles(ts_env, settings, worker):
    handle = await open_incident(ts_env, settings, make_policy(), alert(severity=Severity.SEV1))
    await ts_env.sleep(timedelta(seconds=10))
    s = await state(handle)
    assert s.confirmed and s.phase is Phase.INVESTIGATION
    assert s.assigned[Role.INCIDENT_COMMANDER] == "alice" and s.assigned[Role.COMMUNICATIONS_LEAD] == "carol"
    [channel] = outbox(settings, "slack", "channel")
    assert set(channel["payload"]["invite_user_ids"]) == {"U0BOB", "U0OLEH", "U0ALEX"}  # seed 002's three
    assert channel["payload"]["bookmarks"]["Conference"] == "https://meet.example.com/incident-bridge"
    welcome = [p for p in outbox(settings, "slack", "post") if "Incident Commander" in p["payload"]["text"]]
    assert welcome and set(welcome[0]["payload"]["mention_user_ids"]) == {"U0BOB", "U0OLEH", "U0ALEX"}
    assert "https://meet.example.com/incident-bridge" in welcome[0]["payload"]["text"]
    assert outbox(settings, "opsgenie", "page"), "tier 1 is paged"
    log = Path(settings.incident_log_dir, "projects", "checkout-incident-log.md").read_text()
    assert s.incident_id in log and "opened" in log


async def test_seed002_no_ack_pages_tier2_at_exactly_the_tier_wait(ts_env, settings, worker):
    handle = await open_incident(ts_env, settings, make_policy(), alert(severity=Severity.SEV1))
    await ts_env.sleep(timedelta(minutes=16))
    s = await state(handle)
    tier1, tier2 = minutes_after_open(s, "tier 1: page"), minutes_after_open(s, "tier 2: page")
    # to the second: activities take real milliseconds between the skipped minutes
    assert len(tier1) == 2 and tier1[0] < 0.02
    assert len(tier2) == 1 and abs(tier2[0] - tier1[0] - 5) < 0.02
    assert abs(tier1[1] - tier2[0] - 10) < 0.02  # the ladder repeats once, after tier 2's 10 min
    paged = [e["payload"]["responders"] for e in outbox(settings, "opsgenie", "page")]
    assert paged[:2] == [["bob@example.com", "alice@example.com"], ["oleh@example.com"]]


async def test_seed002_ack_stops_escalation_and_acknowledges_the_page(ts_env, settings, worker):
    handle = await open_incident(ts_env, settings, make_policy(), alert(severity=Severity.SEV1))
    await ts_env.sleep(timedelta(minutes=1))
    await handle.execute_update("acknowledge", Acknowledge(actor="bob"))
    await ts_env.sleep(timedelta(minutes=20))
    s = await state(handle)
    assert s.acknowledged_by == "bob"
    assert minutes_after_open(s, "tier 2") == []
    assert len(outbox(settings, "opsgenie", "acknowledge")) == 1
    assert "already acknowledged by bob" in await refusal(
        handle.execute_update("acknowledge", Acknowledge(actor="alice"))
    )


async def test_seed002_out_of_hours_leadership_reached_through_telegram(ts_env, settings, worker):
    never_open = BusinessHours(
        timezone="Europe/Kyiv", days=[], out_of_hours_notify=["role:cto", "role:account_manager"]
    )
    await open_incident(ts_env, settings, make_policy(business_hours=never_open), alert(severity=Severity.SEV1))
    await ts_env.sleep(timedelta(seconds=10))
    chats = {e["payload"]["chat_id"] for e in outbox(settings, "telegram")}
    assert chats == {"1002", "1003"}  # Oleh and Alex
    assert all("Out of hours" in t for t in texts(settings, "telegram"))


async def test_seed002_out_of_hours_leadership_reached_even_when_acknowledged_at_once(ts_env, settings, worker):
    never_open = BusinessHours(timezone="Europe/Kyiv", days=[], out_of_hours_notify=["role:cto"])
    handle = await open_incident(
        ts_env, settings, make_policy(business_hours=never_open), alert(severity=Severity.SEV1)
    )
    await handle.execute_update("acknowledge", Acknowledge(actor="bob"))
    await ts_env.sleep(timedelta(seconds=10))
    assert {e["payload"]["chat_id"] for e in outbox(settings, "telegram")} == {"1002"}
    assert timeline(await state(handle), "out_of_hours")


async def test_telegram_that_gives_up_on_one_chat_still_credits_the_chats_it_reached(ts_env, settings):
    """One call sends to each leader's chat in turn: when alex's chat is rate-limited for the call's whole ten
    minutes, the timeline still says oleh was reached, and alex alone was not."""
    never_open = BusinessHours(
        timezone="Europe/Kyiv", days=[], out_of_hours_notify=["role:cto", "role:account_manager"]
    )
    async with FakeTelegram(chats={"1002", "1003"}) as telegram:
        telegram.rate_limited_chats = {"1003"}
        async with build_worker(ts_env.client, telegram.configure(settings)):
            handle = await open_incident(
                ts_env, settings, make_policy(business_hours=never_open), alert(severity=Severity.SEV1)
            )
            await ts_env.sleep(timedelta(minutes=11))
            lines = timeline(await state(handle))

    assert [m["chat"]["id"] for m in telegram.sent] == [1002], "oleh once, however often the call was tried"
    [reached] = [line for line in lines if line.startswith("Out of business hours")]
    assert "Telegram oleh" in reached
    [failed] = [line for line in lines if line.startswith("Telegram")]
    assert failed.startswith("Telegram alex failed: telegram answered 429")


async def test_seed002_in_business_hours_no_telegram(ts_env, settings, worker):
    await open_incident(ts_env, settings, make_policy(), alert(severity=Severity.SEV1))
    await ts_env.sleep(timedelta(seconds=10))
    assert outbox(settings, "telegram") == []


async def test_seed002_no_progress_in_30_min_convenes_call(ts_env, settings, worker):
    handle = await open_incident(ts_env, settings, make_policy(), alert(severity=Severity.SEV1))
    await handle.execute_update("acknowledge", Acknowledge(actor="bob"))
    await ts_env.sleep(timedelta(minutes=29))
    assert not any("join the call" in t for t in texts(settings))
    await ts_env.sleep(timedelta(minutes=2))
    s = await state(handle)
    assert s.calls_convened == 1 and minutes_after_open(s, "Call convened", "call") == [30.0]
    call_pages = [e for e in outbox(settings, "opsgenie", "page") if ":call:" in e["key"]]
    assert call_pages and set(call_pages[0]["payload"]["responders"]) == {"bob@example.com", "oleh@example.com"}
    dms = {e["payload"]["user_id"] for e in outbox(settings, "slack", "dm") if "join the call" in e["payload"]["text"]}
    assert dms == {"U0BOB", "U0OLEH", "U0ALEX"}


async def test_seed002_estimate_and_progress_hold_off_the_call_and_check_back(ts_env, settings, worker):
    handle = await open_incident(ts_env, settings, make_policy(), alert(severity=Severity.SEV1))
    await handle.execute_update("acknowledge", Acknowledge(actor="bob"))
    await ts_env.sleep(timedelta(seconds=5))
    assert any("give an estimate" in t for t in texts(settings, "slack", "dm"))
    await ts_env.sleep(timedelta(minutes=20) - timedelta(seconds=5))
    await handle.execute_update("estimate", Estimate(actor="bob", minutes=25))
    await ts_env.sleep(timedelta(minutes=26))  # 46 min in: the estimate has elapsed, progress window not yet
    assert any("estimate" in t and "elapsed" in t for t in texts(settings, "slack", "dm"))
    await handle.execute_update("progress_note", ProgressNote(actor="bob", text="found the bad deploy"))
    await ts_env.sleep(timedelta(minutes=25))
    assert (await state(handle)).calls_convened == 0


async def test_seed002_status_update_every_30_min_nudged_then_missed_reported(ts_env, settings, worker):
    handle = await open_incident(ts_env, settings, make_policy(), alert(severity=Severity.SEV2))
    await handle.execute_update("classify", Classify(actor="alice", kind=IncidentKind.INCIDENT))
    await ts_env.sleep(timedelta(minutes=26))
    nudges = [
        e
        for e in outbox(settings, "slack", "dm")
        if "status update" in e["payload"]["text"] and "is due" in e["payload"]["text"]
    ]
    assert [e["payload"]["user_id"] for e in nudges] == ["U0ALICE"]  # the PM of seed 002
    await ts_env.sleep(timedelta(minutes=5))
    assert any("was missed" in t for t in texts(settings, "slack", "dm"))
    await handle.execute_update("status_update", StatusUpdate(actor="alice", text="Rollback in progress"))
    await ts_env.sleep(timedelta(seconds=5))  # the update is recorded; the main loop then distributes it
    s = await state(handle)
    assert s.updates_missed == 1
    posted = [e for e in outbox(settings, "slack", "post") if "Rollback in progress" in e["payload"]["text"]]
    assert posted, "the update is centralised in the incident channel (seed 000)"
    updates = [e for e in outbox(settings, "slack", "dm") if e["payload"]["text"].startswith("Status update on")]
    assert {e["payload"]["user_id"] for e in updates} == {"U0OLEH", "U0ALEX"}
    assert s.next_update_due is not None and (s.next_update_due - s.opened_at) >= timedelta(minutes=60)


async def test_seed000_all_external_communications_should_be_approved_by_the_communications_lead(
    ts_env, settings, worker
):
    """The client's copy of a status update waits for the Communications Lead; the leads' copies do not.
    She approves it in her own words, and the client receives exactly those, once."""
    handle = await open_incident(ts_env, settings, make_policy(), alert(severity=Severity.SEV2))
    await handle.execute_update("classify", Classify(actor="alice", kind=IncidentKind.INCIDENT))
    await handle.execute_update("status_update", StatusUpdate(actor="alice", text="Rollback in progress"))
    await ts_env.sleep(timedelta(minutes=2))
    assert [e for e in outbox(settings, "slack", "dm") if e["payload"]["text"].startswith("Status update on")]
    assert not outbox(settings, "email"), "nothing leaves for the client before the Communications Lead approves"
    s = await state(handle)
    assert [st.statement_id for st in s.statements if st.approved is None] == ["S1"]
    assert any("approval of status update S1 for client_contacts by carol" in w for w in s.waiting_on)
    asked = [e for e in outbox(settings, "slack", "dm") if "waits for your approval" in e["payload"]["text"]]
    assert [e["payload"]["user_id"] for e in asked] == ["U0CAROL"]
    by_the_ic = handle.execute_update("approve_statement", ApproveStatement(actor="alice", statement_id="S1"))
    assert (await refusal(by_the_ic)).startswith("only the communications lead can approve statement")
    words = "We are rolling back a faulty release; next update within the hour."
    await handle.execute_update("approve_statement", ApproveStatement(actor="carol", statement_id="s1", text=words))
    await ts_env.sleep(timedelta(seconds=30))
    sent = outbox(settings, "email")
    assert [(e["payload"]["to"], e["payload"]["text"]) for e in sent] == [(["ops@client.example"], words)]
    assert not any("approval of" in w for w in (await state(handle)).waiting_on)


async def test_seed003_rto_warning_at_80_percent_and_breach_escalated_to_senior_management(ts_env, settings, worker):
    handle = await open_incident(ts_env, settings, make_policy(), alert(severity=Severity.SEV1))
    await handle.execute_update("acknowledge", Acknowledge(actor="bob"))
    await ts_env.sleep(timedelta(minutes=61))
    s = await state(handle)
    # to the second: a busy worker takes real time to pick up the timer's workflow task
    assert minutes_after_open(s, "RTO warning", "rto") == [pytest.approx(48.0, abs=0.02)]
    assert minutes_after_open(s, "RTO breached", "breach") == [pytest.approx(60.0, abs=0.02)]
    breach_mail = [e for e in outbox(settings, "email") if "RTO breached" in e["payload"]["text"]]
    assert [e["payload"]["to"] for e in breach_mail] == [["oleh@example.com"]]


async def test_seed003_rpo_data_loss_warning_and_breach(ts_env, settings, worker):
    handle = await open_incident(ts_env, settings, make_policy(), alert(severity=Severity.SEV1))
    await ts_env.sleep(timedelta(seconds=5))  # confirmed: its service (and so its RPO) is known
    await handle.execute_update("report_data_loss", ReportDataLoss(actor="bob", minutes=13))
    await handle.execute_update("report_data_loss", ReportDataLoss(actor="bob", minutes=20))
    await ts_env.sleep(timedelta(seconds=5))
    s = await state(handle)
    assert timeline(s, "rpo") == ["RPO warning: 13 min of data lost, objective 15 min"]
    assert any("RPO breached" in t for t in timeline(s, "breach"))


async def test_seed003_tasks_prioritised_by_business_impact(ts_env, settings, worker):
    handle = await open_incident(ts_env, settings, make_policy(), alert(severity=Severity.SEV1))
    await handle.execute_update(
        "assign_task", AssignTask(actor="alice", title="Restore reports", assignee="bob", business_impact=Severity.SEV3)
    )
    await handle.execute_update(
        "assign_task",
        AssignTask(actor="alice", title="Restore payments DB", assignee="bob", business_impact=Severity.SEV1),
    )
    s = await state(handle)
    assert [t.title for t in s.tasks] == ["Restore payments DB", "Restore reports"]
    await ts_env.sleep(timedelta(seconds=5))
    assert any("high impact" in t and "payments DB" in t for t in texts(settings, "slack", "dm"))


async def test_seed001_disturbance_is_logged_and_closed_without_paging(ts_env, settings, worker):
    handle = await open_incident(ts_env, settings, make_policy(), alert(severity=Severity.SEV3))
    await handle.execute_update("classify", Classify(actor="alice", kind=IncidentKind.DISTURBANCE))
    final = await handle.result()
    assert final.status is Status.CLOSED and final.phase is Phase.CLOSED
    assert outbox(settings, "opsgenie") == [] and outbox(settings, "slack", "channel") == []
    log = Path(settings.incident_log_dir, "projects", "checkout-incident-log.md").read_text()
    assert "disturbance" in log


async def test_seed001_unassessed_in_time_is_escalated(ts_env, settings, worker):
    handle = await open_incident(ts_env, settings, make_policy(), alert(severity=Severity.SEV3))
    await ts_env.sleep(timedelta(minutes=14))
    assert outbox(settings, "opsgenie") == []
    assert any("Assess it" in t for t in texts(settings, "slack", "dm"))
    await ts_env.sleep(timedelta(minutes=2))
    s = await state(handle)
    assert s.confirmed and s.kind is IncidentKind.INCIDENT
    assert any("Not assessed within 15 min" in t for t in timeline(s, "assessed"))
    assert outbox(settings, "opsgenie", "page")


async def test_seed002_critical_criteria_make_it_sev1_and_seed003_priority_high(ts_env, settings, worker):
    handle = await open_incident(
        ts_env, settings, make_policy(), alert(severity=Severity.SEV3, criterion="security_breach")
    )
    await ts_env.sleep(timedelta(seconds=5))
    s = await state(handle)
    assert s.severity is Severity.SEV1 and s.severity.priority == "high"
    assert s.criteria == [CriticalCriterion.SECURITY_BREACH] and s.confirmed


async def test_seed001_global_scope_owned_by_technical_manager(ts_env, settings, worker):
    handle = await open_incident(ts_env, settings, make_policy(), alert(severity=Severity.SEV3))
    answer = await handle.execute_update(
        "classify", Classify(actor="alice", kind=IncidentKind.INCIDENT, scope=Scope.GLOBAL, severity=Severity.SEV2)
    )
    assert "action plan owner oleh" in answer  # the Technical Manager
    local = await open_incident(ts_env, settings, make_policy(), alert(severity=Severity.SEV3, key="g2"))
    answer = await local.execute_update("classify", Classify(actor="alice", kind=IncidentKind.INCIDENT))
    assert "action plan owner alex" in answer  # the Customer Service Manager


async def test_seed000_resolution_message_closes_pages_and_cancels_every_timer(ts_env, settings, worker):
    handle = await open_incident(ts_env, settings, make_policy(), alert(severity=Severity.SEV1))
    await ts_env.sleep(timedelta(minutes=1))
    await handle.execute_update("resolve", RESOLUTION)
    await ts_env.sleep(timedelta(seconds=5))
    sent = len(outbox(settings))
    resolution = [e for e in outbox(settings, "slack", "post") if e["payload"]["text"].startswith("RESOLVED")]
    assert resolution and "Canary deploys" in resolution[0]["payload"]["text"]
    assert "Rolled back release 42" in resolution[0]["payload"]["text"]
    assert outbox(settings, "opsgenie", "resolve"), "the paging alert is closed"
    await ts_env.sleep(timedelta(hours=3))
    later = outbox(settings)[sent:]
    assert not [e for e in later if "tier" in e["payload"].get("text", "") or "due" in e["payload"].get("text", "")]
    s = await state(handle)
    assert s.phase is Phase.ANALYSIS and s.checklist["project_log"] and s.checklist["global_log"]
    assert s.checklist["pmo_notified"] and s.checklist["postmortem_drafted"]


async def test_seed001_closing_refused_while_documentation_incomplete(ts_env, settings, worker):
    handle = await open_incident(ts_env, settings, make_policy(), alert(severity=Severity.SEV1))
    await ts_env.sleep(timedelta(seconds=5))
    await handle.execute_update("resolve", RESOLUTION)
    await ts_env.sleep(timedelta(seconds=5))
    reason = await refusal(handle.execute_update("close", CloseIncident(actor="alice")))
    assert "documentation incomplete" in reason and "review_held" in reason and "postmortem_published" in reason
    assert "hold the review first" in await refusal(
        handle.execute_update("publish_postmortem", PublishPostmortem(actor="alice"))
    )
    await ts_env.sleep(timedelta(hours=49))
    assert any("Reminder: the post-incident review" in t for t in texts(settings, "slack", "dm"))
    await handle.execute_update(
        "review_held",
        ReviewHeld(actor="alice", root_cause="A config flag shipped enabled", notes="Add a pre-deploy flag check"),
    )
    await ts_env.sleep(timedelta(seconds=5))
    await handle.execute_update(
        "publish_postmortem", PublishPostmortem(actor="alice", url="https://wiki.example.com/pm/1")
    )
    held = await refusal(handle.execute_update("close", CloseIncident(actor="alice")))
    assert "statements S1 wait for the Communications Lead" in held  # the client's resolution message
    await handle.execute_update("approve_statement", ApproveStatement(actor="carol", statement_id="S1"))
    await handle.execute_update("close", CloseIncident(actor="alice"))
    final = await handle.result()
    assert final.status is Status.CLOSED
    postmortem = Path(final.postmortem_location).read_text()
    for heading in (
        "What happened",
        "How the issue was identified",
        "Root cause",
        "Steps taken (communication and technical)",
        "Key takeaways and recommendations",
    ):
        assert f"## {heading}" in postmortem  # seed 002's summary
    assert "A config flag shipped enabled" in postmortem and "pre-deploy flag check" in postmortem
    assert outbox(settings, "slack", "archive")


async def test_wrong_role_refused_with_a_clear_reason(ts_env, settings, worker):
    handle = await open_incident(ts_env, settings, make_policy(), alert(severity=Severity.SEV1))
    reason = await refusal(handle.execute_update("resolve", RESOLUTION.model_copy(update={"actor": "bob"})))
    assert reason == (
        f"only the incident commander or communications lead can resolve on {handle.id}; bob holds none of those roles"
    )
    assert "not a person" in await refusal(handle.execute_update("acknowledge", Acknowledge(actor="mallory")))
    assert "cannot move from investigation to closed (use close)" in await refusal(
        handle.execute_update("set_phase", SetPhase(actor="alice", phase=Phase.CLOSED))
    )


async def test_rejected_signal_is_put_on_the_timeline(ts_env, settings, worker):
    handle = await open_incident(ts_env, settings, make_policy(), alert(severity=Severity.SEV1))
    await handle.signal("resolve", RESOLUTION.model_copy(update={"actor": "bob"}))
    await handle.signal("acknowledge", Acknowledge(actor="bob"))
    await ts_env.sleep(timedelta(seconds=5))
    s = await state(handle)
    assert any("signal resolve refused: only the incident commander" in t for t in timeline(s, "rejected"))
    assert s.acknowledged_by == "bob" and s.status is Status.OPEN


async def test_reopen_restarts_escalation(ts_env, settings, worker):
    handle = await open_incident(ts_env, settings, make_policy(), alert(severity=Severity.SEV1))
    await ts_env.sleep(timedelta(minutes=1))
    await handle.execute_update("acknowledge", Acknowledge(actor="bob"))
    await handle.execute_update("resolve", RESOLUTION)
    await ts_env.sleep(timedelta(minutes=1))
    await handle.execute_update("reopen", Reopen(actor="alice", reason="errors are back"))
    await ts_env.sleep(timedelta(minutes=6))
    s = await state(handle)
    assert s.status is Status.OPEN and s.phase is Phase.INVESTIGATION and s.escalation_round == 2
    [reopened_at] = [e.at for e in s.timeline if e.kind == "reopen"]
    assert any("tier 2" in e.text for e in s.timeline if e.kind == "page" and e.at > reopened_at)


async def test_phase_moves_are_validated(ts_env, settings, worker):
    handle = await open_incident(ts_env, settings, make_policy(), alert(severity=Severity.SEV1))
    await ts_env.sleep(timedelta(seconds=5))  # confirmed: a phase moves only once it is
    await handle.execute_update("set_phase", SetPhase(actor="bob", phase=Phase.IDENTIFICATION))
    await handle.execute_update("set_phase", SetPhase(actor="bob", phase=Phase.MONITORING))
    assert "allowed: identification" in await refusal(
        handle.execute_update("set_phase", SetPhase(actor="bob", phase=Phase.INVESTIGATION))
    )
    assert (await state(handle)).phase is Phase.MONITORING


async def test_alert_storm_is_one_incident_and_resolved_alerts_never_close_a_sev1(ts_env, settings, worker):
    handle = await open_incident(ts_env, settings, make_policy(), alert(severity=Severity.SEV1, fingerprint="a0"))
    for n in range(1, 200):
        await handle.signal(IncidentWorkflow.alert, alert(severity=Severity.SEV1, fingerprint=f"a{n}"))
    for n in range(200):
        await handle.signal(
            IncidentWorkflow.alert, alert(severity=Severity.SEV1, fingerprint=f"a{n}", status=AlertStatus.RESOLVED)
        )
    await ts_env.sleep(timedelta(seconds=10))
    s = await state(handle)
    assert s.alert_count == 400 and len(s.alerts) == 200
    assert s.status is Status.OPEN, "a SEV1 never resolves itself"
    assert any("resolve it when you are sure" in t for t in texts(settings, "slack", "dm"))


async def test_low_severity_resolves_itself_when_the_policy_allows(ts_env, settings, worker):
    policy = make_policy()
    policy = policy.model_copy(
        update={"response": policy.response.model_copy(update={"auto_resolve_severities": [Severity.SEV3]})}
    )
    handle = await open_incident(ts_env, settings, policy, alert(severity=Severity.SEV3))
    await handle.execute_update("classify", Classify(actor="alice", kind=IncidentKind.INCIDENT))
    await handle.signal(IncidentWorkflow.alert, alert(severity=Severity.SEV3, status=AlertStatus.RESOLVED))
    await ts_env.sleep(timedelta(seconds=10))
    assert (await state(handle)).status is Status.RESOLVED


async def test_continue_as_new_keeps_the_whole_state(ts_env, settings, worker):
    handle = await open_incident(ts_env, settings, make_policy(), alert(severity=Severity.SEV2), history_limit=60)
    await handle.execute_update("classify", Classify(actor="alice", kind=IncidentKind.INCIDENT))
    await handle.execute_update("acknowledge", Acknowledge(actor="bob"))
    await ts_env.sleep(timedelta(hours=4))  # nudges and missed updates grow the history past the limit
    s = await state(handle)
    assert handle.result_run_id
    latest = await ts_env.client.get_workflow_handle(handle.id).describe()
    assert latest.run_id != handle.result_run_id, "the incident continued as new"
    assert (await latest.memo())["title"] == "Checkout is failing", "the memo travels with it"
    assert s.acknowledged_by == "bob" and s.updates_missed >= 7
    assert timeline(s, "acknowledge") == [f"{handle.id} acknowledged by bob"]


async def test_everything_unconfigured_every_delivery_lands_in_the_outbox(ts_env, settings, worker):
    never_open = BusinessHours(timezone="Europe/Kyiv", days=[], out_of_hours_notify=["role:cto"])
    handle = await open_incident(
        ts_env, settings, make_policy(business_hours=never_open), alert(severity=Severity.SEV1)
    )
    await ts_env.sleep(timedelta(minutes=6))
    await handle.execute_update("acknowledge", Acknowledge(actor="bob"))
    await handle.execute_update("resolve", RESOLUTION)
    await ts_env.sleep(timedelta(seconds=10))
    await handle.execute_update("review_held", ReviewHeld(actor="alice"))
    await handle.execute_update("publish_postmortem", PublishPostmortem(actor="alice"))
    await handle.execute_update("approve_statement", ApproveStatement(actor="carol", statement_id="S1"))
    await handle.execute_update("close", CloseIncident(actor="alice"))
    await handle.result()
    delivered = {(e["system"], e["kind"]) for e in outbox(settings)}
    assert {
        ("slack", "channel"),
        ("slack", "post"),
        ("slack", "dm"),
        ("slack", "archive"),
        ("opsgenie", "page"),
        ("opsgenie", "acknowledge"),
        ("opsgenie", "resolve"),
        ("email", "email"),
        ("telegram", "message"),
    } <= delivered, delivered
    keys = [(e["system"], e["key"]) for e in outbox(settings)]
    assert len(keys) == len(set(keys)), "nothing is delivered twice"


async def test_seed003_incident_cannot_close_with_recovery_tasks_open(ts_env, settings, worker):
    handle = await open_incident(ts_env, settings, make_policy(), alert(severity=Severity.SEV1))
    await handle.execute_update("assign_task", AssignTask(actor="alice", title="Restore DB", assignee="bob"))
    await ts_env.sleep(timedelta(seconds=5))
    await handle.execute_update("resolve", RESOLUTION)
    await ts_env.sleep(timedelta(seconds=5))
    await handle.execute_update("review_held", ReviewHeld(actor="alice"))
    await handle.execute_update("publish_postmortem", PublishPostmortem(actor="alice"))
    assert "tasks T1 are not done" in await refusal(handle.execute_update("close", CloseIncident(actor="alice")))


async def test_seed002_a_phase_move_counts_as_progress(ts_env, settings, worker):
    handle = await open_incident(ts_env, settings, make_policy(), alert(severity=Severity.SEV1))
    await ts_env.sleep(timedelta(minutes=20))
    await handle.execute_update("set_phase", SetPhase(actor="bob", phase=Phase.IDENTIFICATION))
    await ts_env.sleep(timedelta(minutes=25))  # 45 min in: 25 since the move, no call yet
    assert (await state(handle)).calls_convened == 0


async def test_an_alert_group_that_fires_again_after_closing_is_delivered_afresh(ts_env, settings, worker):
    """Same group, same incident id, a new run: its deliveries must not be taken for the old ones'."""
    first = await open_incident(ts_env, settings, make_policy(), alert(severity=Severity.SEV1))
    await ts_env.sleep(timedelta(minutes=1))
    await first.terminate("closed")  # stands for a closed incident: its workflow id is free again
    await ts_env.sleep(timedelta(minutes=1))
    again = await ts_env.client.start_workflow(
        IncidentWorkflow.run,
        IncidentInput(incident_id=first.id, policy=make_policy()),
        id=first.id,
        task_queue=settings.incident_task_queue,
        start_signal="alert",
        start_signal_args=[alert(severity=Severity.SEV1)],
        execution_timeout=timedelta(days=1),
    )
    await ts_env.sleep(timedelta(seconds=10))
    assert (await again.query(IncidentWorkflow.state)).confirmed
    tier1_pages = [e for e in outbox(settings, "opsgenie", "page") if "escalation:r1:l0:t1" in e["key"]]
    assert len(tier1_pages) == 2, "the second occurrence pages too"


async def test_a_second_resolution_after_reopening_is_sent_too(ts_env, settings, worker):
    handle = await open_incident(ts_env, settings, make_policy(), alert(severity=Severity.SEV1))
    await ts_env.sleep(timedelta(minutes=1))
    await handle.execute_update("resolve", RESOLUTION)
    await ts_env.sleep(timedelta(minutes=1))
    await handle.execute_update("reopen", Reopen(actor="alice", reason="errors are back"))
    await ts_env.sleep(timedelta(minutes=1))
    await handle.execute_update("resolve", RESOLUTION)
    await ts_env.sleep(timedelta(minutes=1))
    resolutions = [t for t in texts(settings, "slack", "post") if t.startswith("RESOLVED")]
    assert len(resolutions) == 2


async def test_resolving_while_deadlines_fall_due_does_not_break_the_incident(ts_env, settings, worker):
    """At 30 min the no-progress call and the missed update fall due together; a resolve lands between."""
    handle = await open_incident(ts_env, settings, make_policy(), alert(severity=Severity.SEV1))
    await handle.execute_update("acknowledge", Acknowledge(actor="bob"))
    await ts_env.sleep(timedelta(minutes=30))
    await handle.execute_update("resolve", RESOLUTION)
    await ts_env.sleep(timedelta(minutes=5))
    s = await state(handle)
    assert s.status is Status.RESOLVED and s.phase is Phase.ANALYSIS


async def test_an_alert_storm_alone_continues_as_new(ts_env, settings, worker):
    handle = await open_incident(
        ts_env, settings, make_policy(), alert(severity=Severity.SEV1, fingerprint="a0"), history_limit=150
    )
    await handle.execute_update("acknowledge", Acknowledge(actor="bob"))
    for n in range(1, 200):
        await handle.signal(IncidentWorkflow.alert, alert(severity=Severity.SEV1, fingerprint=f"a{n}"))
    await ts_env.sleep(timedelta(seconds=5))
    latest = await ts_env.client.get_workflow_handle(handle.id).describe()
    assert latest.run_id != handle.result_run_id
    assert (await state(handle)).alert_count == 200


async def test_a_page_that_only_reached_the_outbox_says_on_the_timeline_it_was_not_delivered(ts_env, settings, worker):
    """No paging account configured (the outbox chosen): nobody may read "page bob (opsgenie)" as a page sent."""
    handle = await open_incident(ts_env, settings, make_policy(), alert(severity=Severity.SEV1))
    await ts_env.sleep(timedelta(seconds=10))
    tier1 = " ".join(t for t in timeline(await state(handle), "page") if "tier 1" in t)
    assert "(opsgenie): not delivered (outbox only)" in tier1
    assert "Slack DM bob: not delivered (outbox only)" in tier1
