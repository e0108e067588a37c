"""Seed 004's Message Creation Loop (CommsWorkflow) on the time-skipping server: the whole loop, and every
shortcut refused. People come from examples/policy.toml: carol is Business Lead, Communications Lead and
distributor; bob the Technical SLT; erin Messaging; dana Legal; gina Customer Liaison; frank ELT; alice IC.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import typer
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer, Worker
from typer.testing import CliRunner, Result

from activities.outbox import Outbox
from settings import Settings
from starter.cli.comms import register
from tests.api import decision_api
from tests.workflows.helpers import alert, make_policy, open_incident
from tests.workflows.helpers import state as incident_state
from worker import build_activities, build_worker
from workflows.comms.model import (
    Approve,
    CommsInput,
    CommsMessage,
    CommsState,
    ConfirmSent,
    Draft,
    GiveEstimate,
    ResolveObjection,
    Review,
    Skip,
    Step,
    Verdict,
)
from workflows.comms.workflow import CommsWorkflow
from workflows.contracts.policy import Policy
from workflows.contracts.vocabulary import Audience, Phase, Role, Severity
from workflows.incident.model import IncidentFacts, PhaseChanged

Handle = WorkflowHandle[CommsWorkflow, Any]

FACTS = IncidentFacts(
    incident_id="INC-TEST0001",
    title="Checkout errors",
    service="checkout",
    severity=Severity.SEV1,
    phase=Phase.INVESTIGATION,
    opened_at=datetime(2025, 3, 4, 14, 5, tzinfo=UTC),
)
VALUES = {
    "impact": "card payments fail for some customers",
    "next_update": "within the hour",
    "cause": "an expired certificate",
    "remediation": "renewed the certificate",
    "prevention": "expiry is monitored",
}


@pytest.fixture
async def comms(
    ts_env: WorkflowEnvironment, settings: Settings, example_policy: Policy
) -> AsyncIterator[Callable[..., Any]]:
    """Start a CommsWorkflow (the way IncidentWorkflow does) under a worker with every activity.

    Workflows still open at the end are closed the way the incident closes them, and awaited: the
    time-skipping server skips no time for later tests while one of them is mid-task.
    """
    started: list[Handle] = []
    async with Worker(
        ts_env.client,
        task_queue=settings.incident_task_queue,
        workflows=[CommsWorkflow],
        activities=build_activities(settings),
    ):

        async def start(policy: Policy = example_policy, phase: Phase = Phase.INVESTIGATION) -> Handle:
            facts = FACTS.model_copy(update={"incident_id": f"INC-{uuid.uuid4().hex[:8].upper()}", "phase": phase})
            handle = await ts_env.client.start_workflow(
                CommsWorkflow.run,
                CommsInput(facts=facts, policy=policy, triggered_by="carol", reason="SEV1"),
                id=f"{facts.incident_id}-comms",
                task_queue=settings.incident_task_queue,
                execution_timeout=timedelta(days=2),
            )
            started.append(handle)
            return handle

        yield start
        for handle in started:
            if (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:
                await handle.signal(
                    CommsWorkflow.incident_phase_changed,
                    PhaseChanged(phase=Phase.CLOSED, facts=FACTS.model_copy(update={"phase": Phase.CLOSED})),
                )
                await handle.result()


async def state(handle: Handle) -> CommsState:
    return await handle.query(CommsWorkflow.get_state)


def message(s: CommsState, message_id: str) -> CommsMessage:
    return next(m for m in s.messages if m.message_id == message_id)


async def until(handle: Handle, done: Callable[[CommsState], bool]) -> CommsState:
    """The main loop acts after a handler records; wait (briefly, in real time) until it has."""
    for _ in range(200):
        s = await state(handle)
        if done(s):
            return s
        await asyncio.sleep(0.02)
    raise AssertionError(f"never happened: {s.status}\n" + "\n".join(f"{e.kind}: {e.text}" for e in s.log))


async def reaches(handle: Handle, message_id: str, step: Step) -> CommsMessage:
    s = await until(handle, lambda s: any(m.message_id == message_id and m.step is step for m in s.messages))
    return message(s, message_id)


async def dmed(settings: Settings, slack_user_id: str, count: int) -> None:
    """Wait (briefly, in real time) until the person has had `count` direct messages; no more."""
    for _ in range(100):
        if len(dms_to(settings, slack_user_id)) >= count:
            break
        await asyncio.sleep(0.02)
    assert len(dms_to(settings, slack_user_id)) == count, dms_to(settings, slack_user_id)


async def refused(handle: Handle, update: Any, arg: Any) -> str:
    with pytest.raises(WorkflowUpdateFailedError) as failed:
        await handle.execute_update(update, arg)
    return str(getattr(failed.value.cause, "message", failed.value.cause))


def outbox(settings: Settings, system: str, kind: str) -> list[dict[str, Any]]:
    return [e for e in Outbox(settings.outbox_path).read() if e["system"] == system and e["kind"] == kind]


def dms_to(settings: Settings, slack_user_id: str) -> list[str]:
    return [e["payload"]["text"] for e in outbox(settings, "slack", "dm") if e["payload"]["user_id"] == slack_user_id]


def distributed(settings: Settings) -> list[dict[str, Any]]:
    return (
        outbox(settings, "slack", "post")
        + outbox(settings, "email", "email")
        + outbox(settings, "statuspage", "incident")
    )


async def draft(handle: Handle, mid: str) -> CommsMessage:
    """The Technical SLT drafts from the template; the update returns once the draft is rendered."""
    drafted = await handle.execute_update(
        "draft", Draft(actor="bob", message_id=mid, values=VALUES), result_type=CommsMessage
    )
    assert drafted.step is Step.IN_REVIEW and drafted.versions[-1].author == "bob"
    return drafted


async def draft_and_review(handle: Handle, mid: str) -> None:
    await reaches(handle, mid, Step.DRAFTING)
    await draft(handle, mid)
    for reviewer in ("erin", "dana"):
        await handle.execute_update("review", Review(actor=reviewer, message_id=mid, verdict=Verdict.APPROVE))
    await reaches(handle, mid, Step.APPROVAL)


async def create_message(handle: Handle, mid: str) -> None:
    """One pass of the Message Creation Loop, every person doing their step in 004's order."""
    await draft_and_review(handle, mid)
    await handle.execute_update("authorize", Approve(actor="frank", message_id=mid))
    if not mid.endswith(Audience.INTERNAL.value):
        await handle.execute_update("approve_external", Approve(actor="carol", message_id=mid))
    await reaches(handle, mid, Step.SEND_APPROVAL)
    await handle.execute_update("approve_send", Approve(actor="alice", message_id=mid))
    await reaches(handle, mid, Step.CONFIRMING)
    await handle.execute_update("confirm_sent", ConfirmSent(actor="carol", message_id=mid))


async def test_seed004_triggered_in_investigation_sends_nine_messages_over_three_phases(
    comms: Callable[..., Any], settings: Settings
) -> None:
    handle = await comms()
    for phase in (Phase.INVESTIGATION, Phase.IDENTIFICATION, Phase.RESOLUTION):
        if phase is not Phase.INVESTIGATION:
            await handle.signal(
                CommsWorkflow.incident_phase_changed,
                PhaseChanged(phase=phase, facts=FACTS.model_copy(update={"phase": phase})),
            )
        for audience in Audience:
            await create_message(handle, f"{phase.value}/{audience.value}")
    for phase in (Phase.ANALYSIS, Phase.CLOSED):  # past its last phase the loop waits for a reopen or the end
        await handle.signal(
            CommsWorkflow.incident_phase_changed,
            PhaseChanged(phase=phase, facts=FACTS.model_copy(update={"phase": phase})),
        )
        if phase is Phase.ANALYSIS:
            await until(
                handle, lambda s: s.status == "analysis: nothing pending; waiting for the incident's next phase"
            )
    summary = await handle.result()

    assert len(summary.sent) == 9 and not (summary.skipped or summary.superseded or summary.unconfirmed)
    posts = outbox(settings, "slack", "post")
    assert [p["payload"]["channel"] for p in posts] == ["#incident-stakeholders"] * 3
    emails = [e["payload"] for e in outbox(settings, "email", "email")]
    assert [e["to"] for e in emails if not e["personal"]] == [
        ["staff@example.com"],
        ["customers@lists.example.com"],
    ] * 3
    assert [e["to"] for e in emails if e["personal"]] == [["cto@bigbiller.example", "ops@bigbiller.example"]] * 3
    assert len(outbox(settings, "statuspage", "incident")) == 3
    assert summary.statuspage_incident_id
    keys = [e["key"] for e in distributed(settings)]
    assert len(keys) == len(set(keys)) and all(":v1:" in k for k in keys)
    s = await state(handle)
    resolution = message(s, "resolution/strategic_customers")
    assert {a.kind.value: a.by for a in resolution.approvals} == {"elt": "frank", "external": "carol", "send": "alice"}
    assert resolution.versions[0].author == "bob" and resolution.confirmed_by == "carol"
    assert any("rejoin the business incident call" in t for t in dms_to(settings, "U0GINA"))
    assert s.status.startswith("done: 9 sent")
    # the whole loop replays from its history: the workflow is deterministic
    await Replayer(workflows=[CommsWorkflow], data_converter=pydantic_data_converter).replay_workflow(
        await handle.fetch_history()
    )


async def test_seed004_nothing_is_distributed_without_reviews_elt_and_ic_approval(
    comms: Callable[..., Any], settings: Settings
) -> None:
    handle = await comms()
    mid = "investigation/internal_stakeholders"
    await reaches(handle, mid, Step.DRAFTING)
    await draft(handle, mid)
    early = await refused(handle, "approve_send", Approve(actor="alice", message_id=mid))
    assert "it is in review, waiting on Messaging Officer (erin)" in early and "after the reviews" in early
    assert "in review" in await refused(handle, "authorize", Approve(actor="frank", message_id=mid))

    for reviewer in ("erin", "dana"):
        await handle.execute_update("review", Review(actor=reviewer, message_id=mid, verdict=Verdict.APPROVE))
    await reaches(handle, mid, Step.APPROVAL)
    before_elt = await refused(handle, "approve_send", Approve(actor="alice", message_id=mid))
    assert "ELT Approver (frank)" in before_elt
    await handle.execute_update("authorize", Approve(actor="frank", message_id=mid))
    await reaches(handle, mid, Step.SEND_APPROVAL)
    assert distributed(settings) == []

    await handle.execute_update("approve_send", Approve(actor="alice", message_id=mid))
    await reaches(handle, mid, Step.CONFIRMING)
    assert len(distributed(settings)) == 2  # the stakeholders' channel and e-mail list


async def test_seed000_external_message_waits_for_the_communications_lead(comms: Callable[..., Any]) -> None:
    handle = await comms()
    await handle.execute_update(
        "skip",
        Skip(
            actor="carol",
            message_id="investigation/internal_stakeholders",
            reason="staff were briefed at the all-hands",
        ),
    )
    mid = "investigation/strategic_customers"
    await draft_and_review(handle, mid)
    await handle.execute_update("authorize", Approve(actor="frank", message_id=mid))
    await asyncio.sleep(0.2)
    m = message(await state(handle), mid)
    assert m.step is Step.APPROVAL and [o.role for o in m.waiting_on] == [Role.COMMUNICATIONS_LEAD]
    await handle.execute_update("approve_external", Approve(actor="carol", message_id=mid))
    await reaches(handle, mid, Step.SEND_APPROVAL)


async def test_wrong_role_is_refused_naming_the_role(comms: Callable[..., Any]) -> None:
    handle = await comms()
    mid = "investigation/internal_stakeholders"
    await reaches(handle, mid, Step.DRAFTING)
    assert await refused(handle, "draft", Draft(actor="erin", message_id=mid, values=VALUES)) == (
        "only the Technical SLT (bob) can draft; you are erin"
    )
    await draft_and_review(handle, mid)
    assert await refused(handle, "authorize", Approve(actor="bob", message_id=mid)) == (
        "only the ELT Approver (frank) can authorize; you are bob"
    )
    assert "no message 'investigation/everyone'" in await refused(
        handle, "authorize", Approve(actor="frank", message_id="investigation/everyone")
    )
    # the same step as a signal is refused too, and the refusal is on record
    await handle.signal("authorize", Approve(actor="bob", message_id=mid))
    await asyncio.sleep(0.2)
    s = await state(handle)
    assert message(s, mid).step is Step.APPROVAL
    assert any(e.kind == "refused" and "only the ELT Approver" in e.text for e in s.log)


async def test_unknown_step_or_unreadable_input_is_refused_and_the_loop_goes_on(comms: Callable[..., Any]) -> None:
    handle = await comms()
    mid = "investigation/internal_stakeholders"
    await reaches(handle, mid, Step.DRAFTING)
    assert (await refused(handle, "publish", Skip(actor="carol", message_id=mid, reason="r"))).startswith(
        "the message loop has no step 'publish'; steps: draft, edit"
    )
    assert (await refused(handle, "review", {"actor": "erin"})).startswith(
        "review needs a valid Review: message_id: Field required; verdict: Field required"
    )
    assert "skip needs a valid Skip" in await refused(handle, "skip", "skip it")
    assert await refused(handle, "skip", None) == "skip needs a Skip"
    # as signals, the same are refused on the record; a valid one is taken
    await handle.signal("publish", {"actor": "carol"})
    await handle.signal("skip", {"actor": "carol", "message_id": mid})
    await handle.signal("skip", Skip(actor="carol", message_id=mid, reason="staff were briefed"))
    s = await until(handle, lambda s: message(s, mid).step is Step.SKIPPED)
    refusals = [e.text for e in s.log if e.kind == "refused"]
    assert refusals[0].startswith("publish: the message loop has no step 'publish'")
    assert refusals[1] == "skip: skip needs a valid Skip: reason: Field required"
    await reaches(handle, "investigation/strategic_customers", Step.DRAFTING)


async def test_seed004_reviewer_cannot_approve_their_own_draft(
    comms: Callable[..., Any], example_policy: Policy
) -> None:
    roles = example_policy.roles | {Role.MESSAGING_OFFICER: ["bob", "erin"]}
    handle = await comms(example_policy.model_copy(update={"roles": roles}))
    mid = "investigation/internal_stakeholders"
    await reaches(handle, mid, Step.DRAFTING)
    await draft(handle, mid)
    own = await refused(handle, "review", Review(actor="bob", message_id=mid, verdict=Verdict.APPROVE))
    assert own == f"bob drafted {mid} and cannot review it; another Messaging Officer must"
    await handle.execute_update("review", Review(actor="erin", message_id=mid, verdict=Verdict.APPROVE))
    await handle.execute_update("review", Review(actor="dana", message_id=mid, verdict=Verdict.APPROVE))
    await reaches(handle, mid, Step.APPROVAL)


async def test_seed004_strong_objection_blocks_until_the_drafter_resolves_it(comms: Callable[..., Any]) -> None:
    handle = await comms()
    mid = "investigation/internal_stakeholders"
    await reaches(handle, mid, Step.DRAFTING)
    await draft(handle, mid)
    assert "needs a reason" in await refused(
        handle, "review", Review(actor="dana", message_id=mid, verdict=Verdict.OBJECT)
    )
    await handle.execute_update(
        "review", Review(actor="dana", message_id=mid, verdict=Verdict.OBJECT, reason="do not name the payment gateway")
    )
    await handle.execute_update("review", Review(actor="erin", message_id=mid, verdict=Verdict.APPROVE))
    await asyncio.sleep(0.2)
    m = message(await state(handle), mid)
    assert m.step is Step.IN_REVIEW and m.waiting_on[0].what == "resolve objection 1 (dana)"
    assert "objection 1 on" in await refused(
        handle, "review", Review(actor="dana", message_id=mid, verdict=Verdict.APPROVE)
    )
    assert "only the Technical SLT (bob)" in await refused(
        handle, "resolve_objection", ResolveObjection(actor="erin", message_id=mid, objection=1, resolution="ok")
    )

    await handle.execute_update(
        "resolve_objection",
        ResolveObjection(
            actor="bob",
            message_id=mid,
            objection=1,
            resolution="gateway no longer named",
            text="We are investigating errors at checkout. Next update within the hour.",
        ),
    )
    m = message(await state(handle), mid)
    assert [(v.number, v.author) for v in m.versions] == [(1, "bob"), (2, "bob")]
    assert sorted(o.what for o in m.waiting_on) == ["review v2", "review v2"]  # erin approved v1 only
    for reviewer in ("erin", "dana"):
        await handle.execute_update("review", Review(actor=reviewer, message_id=mid, verdict=Verdict.APPROVE))
    await reaches(handle, mid, Step.APPROVAL)


async def test_seed004_phase_change_supersedes_unsent_messages(comms: Callable[..., Any]) -> None:
    handle = await comms()
    mid = "investigation/internal_stakeholders"
    await reaches(handle, mid, Step.DRAFTING)
    await draft(handle, mid)
    await handle.signal(
        CommsWorkflow.incident_phase_changed,
        PhaseChanged(phase=Phase.IDENTIFICATION, facts=FACTS.model_copy(update={"phase": Phase.IDENTIFICATION})),
    )
    await reaches(handle, "identification/internal_stakeholders", Step.DRAFTING)
    s = await state(handle)
    old = [m for m in s.messages if m.phase is Phase.INVESTIGATION]
    assert {m.step for m in old} == {Step.SUPERSEDED}
    assert old[0].ended_reason == "the incident moved to identification" and old[0].versions
    assert "superseded" in await refused(
        handle, "review", Review(actor="erin", message_id=mid, verdict=Verdict.APPROVE)
    )

    await handle.signal(
        CommsWorkflow.incident_phase_changed,
        PhaseChanged(phase=Phase.CLOSED, facts=FACTS.model_copy(update={"phase": Phase.CLOSED})),
    )
    summary = await handle.result()
    assert len(summary.superseded) == 6 and not summary.sent


async def test_seed004_business_lead_skips_an_audience_with_a_reason(comms: Callable[..., Any]) -> None:
    handle = await comms()
    mid = "investigation/internal_stakeholders"
    await reaches(handle, mid, Step.DRAFTING)
    assert "only the Business Lead (carol)" in await refused(
        handle, "skip", Skip(actor="bob", message_id=mid, reason="no")
    )
    assert "say why" in await refused(handle, "skip", Skip(actor="carol", message_id=mid, reason=" "))
    await handle.execute_update("skip", Skip(actor="carol", message_id=mid, reason="no staff impact at this phase"))
    nxt = await reaches(handle, "investigation/strategic_customers", Step.DRAFTING)
    assert nxt.owner == "bob"
    m = message(await state(handle), mid)
    assert (m.step, m.ended_by, m.ended_reason) == (Step.SKIPPED, "carol", "no staff impact at this phase")


async def test_seed004_missing_placeholder_refuses_the_draft_and_sends_nothing(
    comms: Callable[..., Any], settings: Settings
) -> None:
    handle = await comms()
    mid = "investigation/all_customers"
    await reaches(handle, "investigation/internal_stakeholders", Step.DRAFTING)
    for first in ("investigation/internal_stakeholders", "investigation/strategic_customers"):
        await handle.execute_update("skip", Skip(actor="carol", message_id=first, reason="test"))
    await reaches(handle, mid, Step.DRAFTING)
    why = await refused(handle, "draft", Draft(actor="bob", message_id=mid, values={"next_update": "soon"}))
    assert "needs placeholder 'impact'" in why and "--set impact=" in why
    m = message(await state(handle), mid)
    assert m.step is Step.DRAFTING and not m.versions and "impact" in m.draft_error
    assert distributed(settings) == []


async def test_seed004_check_back_repeats_at_each_elapsed_estimate_and_reaches_the_business_lead(
    ts_env: WorkflowEnvironment, comms: Callable[..., Any], settings: Settings
) -> None:
    """Seed 004: "Ask the Technical SLT to provide a time estimate for completion and check back in once that
    time has elapsed": again each time it elapses while he stays silent, and the Business Lead hears of it."""
    handle = await comms()
    mid = "investigation/internal_stakeholders"
    await dmed(settings, "U0BOB", 1)  # asked to draft, with the policy's 15 minutes to do it

    await ts_env.sleep(timedelta(minutes=16))
    await dmed(settings, "U0BOB", 2)  # the reminder
    await dmed(settings, "U0CAROL", 1)
    first = dms_to(settings, "U0CAROL")[0]
    assert "check back with Technical SLT (bob)" in first and "(check-back 1)" in first
    await ts_env.sleep(timedelta(minutes=15))
    await dmed(settings, "U0CAROL", 2)  # still silent: checked back again at the next 15 minutes
    assert "No word for 30 min (check-back 2)" in dms_to(settings, "U0CAROL")[1]
    await dmed(settings, "U0BOB", 3)

    await handle.execute_update("estimate", GiveEstimate(actor="bob", message_id=mid, minutes=10))
    assert "owes nothing" in await refused(handle, "estimate", GiveEstimate(actor="dana", message_id=mid, minutes=5))
    m = message(await state(handle), mid)
    assert m.waiting_on[0].estimated_by == "bob" and not m.waiting_on[0].check_backs
    assert "waiting on Technical SLT (bob) to draft until" in (await state(handle)).status
    await ts_env.sleep(timedelta(minutes=11))
    await dmed(settings, "U0CAROL", 3)  # the new estimate elapsed: its first check-back
    assert "(check-back 1)" in dms_to(settings, "U0CAROL")[2]


async def test_cli_walks_a_step_and_refuses_in_one_line(ts_env: WorkflowEnvironment, settings: Settings) -> None:
    """incidentctl finds the message loop through the incident, as a person would address it."""
    policy = make_policy(business_incidents=True)
    async with build_worker(ts_env.client, settings), decision_api(ts_env.client, settings, policy) as api_env:
        opened = await open_incident(ts_env, settings, policy, alert(title="Checkout errors", severity=Severity.SEV1))
        await ts_env.sleep(timedelta(seconds=5))
        loop = ts_env.client.get_workflow_handle((await incident_state(opened)).comms_workflow_id)
        await walk_a_step_from_the_command_line(ts_env, opened.id, loop, api_env)


async def walk_a_step_from_the_command_line(
    ts_env: WorkflowEnvironment, incident: str, handle: Handle, api_env: dict[str, str]
) -> None:
    mid = "investigation/internal_stakeholders"
    await reaches(handle, mid, Step.DRAFTING)
    app = typer.Typer()
    register(app)
    env = {
        "TEMPORAL_ADDRESS": ts_env.client.service_client.config.target_host,
        "TEMPORAL_NAMESPACE": ts_env.client.namespace,
        "INCIDENTCTL_USER": "bob",
        **api_env,
    }

    async def incidentctl(*args: str) -> Result:
        return await asyncio.to_thread(CliRunner().invoke, app, list(args), env=env)

    sets = [arg for name, value in VALUES.items() for arg in ("--set", f"{name}={value}")]
    drafted = await incidentctl("draft", incident, mid, *sets)
    assert drafted.exit_code == 0, drafted.output
    assert drafted.output.startswith(f"{incident} {mid}: in_review, waiting on review v1: erin until")
    assert "Subject: [SEV1] We are investigating: Checkout errors" in drafted.output

    wrong = await incidentctl("review", incident, mid, "--approve")
    assert wrong.exit_code == 1
    assert wrong.output.strip() == (
        "incidentctl: only the Messaging Officer (erin) or Legal Officer (dana) can review; you are bob"
    )
    objected = await incidentctl("review", incident, mid, "--object", "no gateway names", "--as", "dana")
    assert objected.exit_code == 0 and "resolve objection 1 (dana): bob" in objected.output

    listed = await incidentctl("messages", incident, "--json")
    rows = json.loads(listed.output)
    assert [r["step"] for r in rows] == ["in_review", "drafting", "queued"]  # the next audience drafted ahead
    assert rows[0]["objections"][0]["reason"] == "no gateway names"
    missing = await incidentctl("messages", "INC-NOPE")
    assert missing.exit_code == 1
    assert missing.output.strip() == "incidentctl: no incident INC-NOPE (incidentctl list shows open ones)"
