"""Seed 004's Message Creation Loop working on several messages at once, on the time-skipping server: the next
audience drafted while one is in review, the Business Lead told of drafts and approvals, and a distribution
caught by a phase move finished and confirmed. People as in test_comms.py (examples/policy.toml).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import pytest
from temporalio import activity
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.chat.slack import SlackActivities
from activities.outbox import Outbox
from settings import Settings
from tests.workflows.test_comms import (
    FACTS,
    comms,
    create_message,
    distributed,
    dms_to,
    draft,
    draft_and_review,
    message,
    reaches,
    refused,
    state,
    until,
)
from worker import build_activities
from workflows.comms.model import Approve, CommsInput, ConfirmSent, Review, Skip, Step, Verdict
from workflows.comms.workflow import CommsWorkflow
from workflows.contracts.activity_io import ChatPost, ChatResult
from workflows.contracts.policy import Policy
from workflows.contracts.vocabulary import Phase, Role
from workflows.incident.model import PhaseChanged

__all__ = ["comms"]  # the fixture, shared with test_comms.py

INTERNAL, STRATEGIC, ALL = (
    "investigation/internal_stakeholders",
    "investigation/strategic_customers",
    "investigation/all_customers",
)


async def test_seed004_technical_slt_churns_through_the_audiences_while_one_is_in_review(
    comms: Callable[..., Any], settings: Settings
) -> None:
    """Seed 004: "The Technical SLT should use any available time to churn through a list of messages that should
    be created for multiple audiences until all reviewers and approvers have joined the call." """
    handle = await comms()
    await reaches(handle, INTERNAL, Step.DRAFTING)
    assert message(await state(handle), STRATEGIC).step is Step.QUEUED  # one draft at a time
    await draft(handle, INTERNAL)
    await reaches(handle, STRATEGIC, Step.DRAFTING)  # drafted ahead while the first is in review
    await draft(handle, STRATEGIC)
    await reaches(handle, ALL, Step.DRAFTING)
    assert [message(await state(handle), mid).step for mid in (INTERNAL, STRATEGIC)] == [Step.IN_REVIEW] * 2
    s = await until(handle, lambda s: s.status.count("waiting on") == 3)
    assert s.status.startswith(f"{INTERNAL}: waiting on Messaging Officer (erin) to review v1 until")
    assert sum("please draft" in t for t in dms_to(settings, "U0BOB")) == 3

    # the second audience goes through its reviews and approvals while the first is still in review
    for reviewer in ("erin", "dana"):
        await handle.execute_update("review", Review(actor=reviewer, message_id=STRATEGIC, verdict=Verdict.APPROVE))
    await reaches(handle, STRATEGIC, Step.APPROVAL)
    assert message(await state(handle), INTERNAL).step is Step.IN_REVIEW


async def test_seed004_business_lead_is_told_each_draft_ready_and_each_approval(
    comms: Callable[..., Any], settings: Settings
) -> None:
    """Seed 004: the Technical SLT "Inform[s] the Business Lead that the initial draft is ready for review"; the
    Customer Liaison "Inform[s] the Business Lead that the draft has approval for distribution"."""
    handle = await comms()
    await create_message(handle, INTERNAL)
    told = [t for t in dms_to(settings, "U0CAROL") if "please" not in t]  # not her own asks as distributor
    assert [t.split(f"{INTERNAL}: ", 1)[1].split(" at ")[0] for t in told] == [
        "v1 is drafted by bob",
        "frank (ELT Approver) authorized v1 for release",
        "alice (Incident Commander) approved sending v1",
    ]
    assert "ready for review by Messaging Officer (erin), Legal Officer (dana)" in told[0]
    assert "EET (" in told[1] and "UTC)" in told[1]  # on the policy's clock, UTC alongside

    # the external message: carol approves it herself as Communications Lead and is not told of her own step
    await create_message(handle, STRATEGIC)
    about_strategic = [t for t in dms_to(settings, "U0CAROL") if STRATEGIC in t and "please" not in t]
    assert [t.split(f"{STRATEGIC}: ", 1)[1].split(" at ")[0].split(" (")[0] for t in about_strategic] == [
        "v1 is drafted by bob",
        "frank",
        "alice",
    ]
    keys = [e["key"] for e in Outbox(settings.outbox_path).read() if e["kind"] == "dm"]
    assert len(keys) == len(set(keys))


async def test_seed000_external_message_is_distributed_only_after_the_communications_lead_approves(
    comms: Callable[..., Any], settings: Settings
) -> None:
    """Seed 000: "All external communications should be approved by the Communications Lead"; until she has, the
    loop's waiting list names her."""
    handle = await comms()
    await handle.execute_update("skip", Skip(actor="carol", message_id=INTERNAL, reason="briefed at the all-hands"))
    await draft_and_review(handle, STRATEGIC)
    await handle.execute_update("authorize", Approve(actor="frank", message_id=STRATEGIC))
    s = await until(handle, lambda s: "Communications Lead (carol) to approve the external message" in s.status)
    m = message(s, STRATEGIC)
    assert m.step is Step.APPROVAL and [o.role for o in m.waiting_on] == [Role.COMMUNICATIONS_LEAD]
    assert "Communications Lead (carol)" in await refused(
        handle, "approve_send", Approve(actor="alice", message_id=STRATEGIC)
    )
    assert distributed(settings) == []
    await handle.execute_update("approve_external", Approve(actor="carol", message_id=STRATEGIC))
    await reaches(handle, STRATEGIC, Step.SEND_APPROVAL)
    await handle.execute_update("approve_send", Approve(actor="alice", message_id=STRATEGIC))
    await reaches(handle, STRATEGIC, Step.CONFIRMING)
    assert len(distributed(settings)) == 1  # the strategic customer's contacts, personally


@pytest.fixture
async def held_slack(ts_env: WorkflowEnvironment, settings: Settings, example_policy: Policy) -> AsyncIterator[Any]:
    """A worker whose Slack accepts a post only when the test releases it: a distribution held mid-way."""
    release = asyncio.Event()
    slack = SlackActivities(settings, Outbox(settings.outbox_path))

    @activity.defn(name="slack_post")
    async def slack_post(post: ChatPost) -> ChatResult:
        await release.wait()
        return await slack.slack_post(post)

    activities = [a for a in build_activities(settings) if getattr(a, "__name__", "") != "slack_post"]
    async with Worker(
        ts_env.client,
        task_queue=settings.incident_task_queue,
        workflows=[CommsWorkflow],
        activities=[*activities, slack_post],
    ):
        yield release
        release.set()


async def test_seed004_message_caught_mid_distribution_by_a_phase_move_is_finished_and_confirmed(
    ts_env: WorkflowEnvironment, held_slack: asyncio.Event, settings: Settings, example_policy: Policy
) -> None:
    """Seed 004: "stop working on the Investigation messages" when the phase moves: the unsent ones. One already
    approved and going out is finished, and the distributor still confirms it."""
    facts = FACTS.model_copy(update={"incident_id": "INC-HELD0001"})

    def carol() -> list[str]:
        return dms_to(settings, "U0CAROL")

    handle = await ts_env.client.start_workflow(
        CommsWorkflow.run,
        CommsInput(facts=facts, policy=example_policy, triggered_by="carol", reason="SEV1"),
        id="INC-HELD0001-comms",
        task_queue=settings.incident_task_queue,
    )
    await draft_and_review(handle, INTERNAL)
    await handle.execute_update("authorize", Approve(actor="frank", message_id=INTERNAL))
    await reaches(handle, INTERNAL, Step.SEND_APPROVAL)
    await handle.execute_update("approve_send", Approve(actor="alice", message_id=INTERNAL))
    await reaches(handle, INTERNAL, Step.DISTRIBUTING)  # Slack holds the post

    identification = PhaseChanged(
        phase=Phase.IDENTIFICATION, facts=facts.model_copy(update={"phase": Phase.IDENTIFICATION})
    )
    await handle.signal(CommsWorkflow.incident_phase_changed, identification)
    await reaches(handle, "identification/internal_stakeholders", Step.DRAFTING)
    s = await state(handle)
    assert message(s, INTERNAL).step is Step.DISTRIBUTING and message(s, STRATEGIC).step is Step.SUPERSEDED
    held_slack.set()
    m = await reaches(handle, INTERNAL, Step.CONFIRMING)
    assert [d.channel for d in m.deliveries] == ["slack", "email"] and not any(d.error for d in m.deliveries)
    assert [o.role for o in m.waiting_on] == [Role.DISTRIBUTOR]
    # the distributor is asked to confirm, and checked back on, though the loop has moved on
    await until(handle, lambda s: any(f"please confirm it reached its audience {INTERNAL}" in t for t in carol()))
    await ts_env.sleep(timedelta(minutes=16))
    await until(handle, lambda s: any("check back with distributor (carol): confirm" in t for t in carol()))
    await handle.execute_update("confirm_sent", ConfirmSent(actor="carol", message_id=INTERNAL))
    await reaches(handle, INTERNAL, Step.SENT)

    closed = PhaseChanged(phase=Phase.CLOSED, facts=facts.model_copy(update={"phase": Phase.CLOSED}))
    await handle.signal(CommsWorkflow.incident_phase_changed, closed)
    summary = await handle.result()
    assert summary.sent == [INTERNAL] and not summary.unconfirmed
