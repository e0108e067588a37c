"""The incident's duties side by side, on the time-skipping server: holes found in review, each closed.

Where a rule is about a delivery still in flight, the test's worker holds that activity (an activity of
the same name that waits for the test to let it go), so the decision lands exactly while it is held.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio import activity
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from settings import Settings
from tests.workflows.helpers import alert, make_policy, open_incident, outbox, state, texts, timeline
from worker import WORKFLOWS, build_activities
from workflows.contracts.activity_io import (
    ChatDelivered,
    ChatDirectMessage,
    ConferenceRequest,
    ConferenceResult,
    PostmortemRequest,
    RecordResult,
)
from workflows.contracts.vocabulary import IncidentKind, Severity, Status
from workflows.incident.inputs import IncidentInput
from workflows.incident.model import Acknowledge, Classify, IncidentState, Reopen, Resolve, StatusUpdate
from workflows.incident.workflow import IncidentWorkflow

RESOLUTION = Resolve(
    actor="alice", overview="Checkout returned 500s", how_resolved="Rolled back", prevention="Canary deploys"
)


class Held:
    """An activity that waits, when told to, until the test lets it go."""

    def __init__(self) -> None:
        self.entered, self.release = asyncio.Event(), asyncio.Event()
        self.hold: Callable[[Any], bool] = lambda request: False

    async def wait(self, request: Any) -> None:
        if self.hold(request):
            self.entered.set()
            await self.release.wait()


def worker_holding(env: WorkflowEnvironment, settings: Settings, held: Held, name: str) -> Worker:
    """The real worker, but the activity `name` is held first (then does what the real one does)."""
    real = {a.__name__: a for a in build_activities(settings)}

    async def holding(request: Any) -> Any:
        await held.wait(request)
        return await real[name](request)

    types = {
        "write_postmortem": (PostmortemRequest, RecordResult),
        "slack_direct_message": (ChatDirectMessage, ChatDelivered),
        "conference_create": (ConferenceRequest, ConferenceResult),
    }[name]
    holding.__annotations__ = {"request": types[0], "return": types[1]}
    replaced = [a for n, a in real.items() if n != name] + [activity.defn(name=name)(holding)]
    return Worker(env.client, task_queue=settings.incident_task_queue, workflows=WORKFLOWS, activities=replaced)


async def test_seed002_a_ladder_that_runs_out_tells_the_incident_commander(ts_env, settings, worker):
    handle = await open_incident(ts_env, settings, make_policy(), alert(severity=Severity.SEV1))
    await ts_env.sleep(timedelta(minutes=31))  # 5 + 10 minutes, twice (repeat = 1)
    s = await state(handle)
    assert s.escalation_exhausted_at and not s.escalation_active
    assert any("ladder exhausted" in w for w in s.waiting_on)
    told = [t for t in texts(settings, "slack", "dm") if "through every escalation tier" in t]
    assert told, "the Incident Commander hears that nobody acknowledged"


async def test_seed001_review_invitation_never_goes_out_for_a_reopened_incident(ts_env, settings):
    held = Held()
    held.hold = lambda request: True
    async with worker_holding(ts_env, settings, held, "write_postmortem"):
        handle = await open_incident(ts_env, settings, make_policy(), alert(severity=Severity.SEV1))
        await ts_env.sleep(timedelta(seconds=5))
        await handle.execute_update("resolve", RESOLUTION)
        await held.entered.wait()  # the postmortem is being drafted: the review invitation follows it
        await handle.execute_update("reopen", Reopen(actor="alice", reason="errors are back"))
        held.release.set()
        await ts_env.sleep(timedelta(seconds=10))
        s = await state(handle)
    assert s.status is Status.OPEN
    assert not [t for t in texts(settings, "slack", "dm") if "Post-incident review" in t]
    assert not s.checklist["postmortem_drafted"], "a draft finished after the reopen ticks no cleared checklist"


async def test_seed002_an_update_given_while_the_missed_notice_is_sent_moves_the_cadence_from_then(ts_env, settings):
    held = Held()
    held.hold = lambda request: "was missed" in request.text
    async with worker_holding(ts_env, settings, held, "slack_direct_message"):
        handle = await open_incident(ts_env, settings, make_policy(), alert(severity=Severity.SEV1))
        await handle.execute_update("acknowledge", Acknowledge(actor="bob"))
        await ts_env.sleep(timedelta(minutes=30, seconds=5))
        await held.entered.wait()
        given = await handle.execute_update("status_update", StatusUpdate(actor="alice", text="rolling back"))
        held.release.set()
        await ts_env.sleep(timedelta(seconds=10))
        s = await state(handle)
    assert s.updates_missed == 1
    assert s.next_update_due is not None
    assert abs((s.next_update_due - s.opened_at) - timedelta(minutes=60)) < timedelta(seconds=10), given


async def test_seed001_without_escalation_tiers_each_resolution_is_logged(ts_env, settings, worker):
    policy = make_policy()
    policy = policy.model_copy(update={"escalation": policy.escalation.model_copy(update={"tiers": []})})
    handle = await open_incident(ts_env, settings, policy, alert(severity=Severity.SEV1))
    await ts_env.sleep(timedelta(seconds=5))
    await handle.execute_update("resolve", RESOLUTION)
    await ts_env.sleep(timedelta(seconds=5))
    await handle.execute_update("reopen", Reopen(actor="alice", reason="errors are back"))
    await handle.execute_update("resolve", RESOLUTION)
    await ts_env.sleep(timedelta(seconds=5))
    log = Path(settings.incident_log_dir, "projects", "checkout-incident-log.md").read_text()
    assert log.count("resolved") >= 2, log


async def test_a_later_occurrence_never_collides_with_the_message_loop_of_an_earlier_one(ts_env, settings, worker):
    policy = make_policy(business_incidents=True)
    first = await open_incident(ts_env, settings, policy, alert(severity=Severity.SEV1))
    await ts_env.sleep(timedelta(seconds=5))
    old_loop = (await state(first)).comms_workflow_id
    await first.terminate("an operator ended it; its message loop goes on")
    await ts_env.sleep(timedelta(minutes=1))
    again = await ts_env.client.start_workflow(
        IncidentWorkflow.run,
        IncidentInput(incident_id=first.id, policy=policy),
        id=first.id,
        task_queue=settings.incident_task_queue,
        start_signal="alert",
        start_signal_args=[alert(severity=Severity.SEV1)],
        execution_timeout=timedelta(days=1),
    )
    await ts_env.sleep(timedelta(seconds=5))
    s = await again.query("state", result_type=IncidentState)
    assert s.confirmed and s.comms_workflow_id and s.comms_workflow_id != old_loop
    assert (await ts_env.client.get_workflow_handle(old_loop).describe()).status is not None


async def test_nothing_from_outside_fails_a_workflow_task(ts_env, settings, worker):
    handle = await open_incident(ts_env, settings, make_policy(), alert(severity=Severity.SEV1))
    await handle.signal("acknowledge", {"actor": 42, "note": ["not", "text"]})
    await handle.signal("no_such_decision", {"actor": "bob"})
    await handle.signal("alert", "not an alert")
    await handle.signal("acknowledge", Acknowledge(actor="bob"))
    await ts_env.sleep(timedelta(seconds=5))
    s = await state(handle)
    assert len(timeline(s, "rejected")) == 2
    assert s.acknowledged_by == "bob", "the incident goes on"
    assert outbox(settings, "opsgenie", "acknowledge")


async def test_raised_to_sev1_the_incident_is_paged_afresh_and_becomes_a_business_incident(ts_env, settings, worker):
    handle = await open_incident(ts_env, settings, make_policy(business_incidents=True), alert(severity=Severity.SEV2))
    await handle.execute_update("classify", Classify(actor="alice", kind=IncidentKind.INCIDENT))
    await ts_env.sleep(timedelta(seconds=5))
    await handle.execute_update("acknowledge", Acknowledge(actor="bob"))
    await handle.execute_update("classify", Classify(actor="alice", severity=Severity.SEV1))
    await ts_env.sleep(timedelta(seconds=5))
    s = await state(handle)
    pages = [e["key"] for e in outbox(settings, "opsgenie", "page")]
    assert any(":escalation:r2:" in key for key in pages), pages
    assert s.business_incident and s.comms_workflow_id
    assert s.acknowledged_by is None, "the people on call acknowledged a smaller incident than this one"


async def test_the_outage_returns_while_resolved_the_incident_reopens_and_pages(ts_env, settings, worker):
    handle = await open_incident(ts_env, settings, make_policy(), alert(severity=Severity.SEV1))
    await ts_env.sleep(timedelta(seconds=5))
    await handle.execute_update("acknowledge", Acknowledge(actor="bob"))
    await handle.execute_update("resolve", RESOLUTION)
    await ts_env.sleep(timedelta(minutes=10))  # in Analysis: logs written, review scheduled
    await handle.signal("alert", alert(severity=Severity.SEV1))
    await ts_env.sleep(timedelta(seconds=5))
    s = await state(handle)
    assert s.status is Status.OPEN and s.reopens == 1
    assert any(":escalation:r2:" in e["key"] for e in outbox(settings, "opsgenie", "page"))


@pytest.mark.parametrize("notify_client_contacts", [True, False])
async def test_the_resolution_is_offered_to_client_contacts_only_where_the_policy_says(
    ts_env, settings, worker, notify_client_contacts
):
    """Seed 002's client hears about its incident, unless the policy's cadence.notify_client_contacts says not:
    behind seed 000's gate the resolution is then held for nobody outside (no external parties here)."""
    policy = make_policy()
    cadence = policy.cadence.model_copy(update={"notify_client_contacts": notify_client_contacts})
    policy = policy.model_copy(
        update={"cadence": cadence, "comms": policy.comms.model_copy(update={"external_parties": {}})}
    )
    handle = await open_incident(ts_env, settings, policy, alert(severity=Severity.SEV2))
    await handle.execute_update("classify", Classify(actor="alice", kind=IncidentKind.INCIDENT))
    await handle.execute_update("resolve", RESOLUTION)
    await ts_env.sleep(timedelta(minutes=1))
    s = await state(handle)
    assert any(e["payload"]["text"].startswith("RESOLVED") for e in outbox(settings, "slack", "post"))
    held = [st.parties for st in s.statements if st.about == "resolution"]
    assert held == ([["client_contacts"]] if notify_client_contacts else [])


async def test_seed000_a_bridge_slower_than_the_channel_still_ends_in_its_bookmarks_and_welcome(ts_env, settings):
    """Whatever order the bridge and the channel come in, the channel ends up the same: the bridge bookmarked,
    and one welcome that names it."""
    held, attempts = Held(), []

    def first_attempt_hangs(request: Any) -> bool:
        attempts.append(request)
        return len(attempts) == 1

    held.hold = first_attempt_hangs
    zoom_per_incident = make_policy(response=make_policy().response.model_copy(update={"conference": "zoom"}))
    async with worker_holding(ts_env, settings, held, "conference_create"):
        handle = await open_incident(ts_env, settings, zoom_per_incident, alert(severity=Severity.SEV1))
        await held.entered.wait()
        await ts_env.sleep(timedelta(minutes=1))  # the channel opens after 20 s, the retried bridge later
        occurrence = (await state(handle)).occurrence
    bridge = "https://meet.example.com/incident-bridge"
    first, again = outbox(settings, "slack", "channel")
    assert "Conference" not in first["payload"]["bookmarks"] and again["payload"]["bookmarks"]["Conference"] == bridge
    welcomes = [p for p in outbox(settings, "slack", "post") if p["key"].startswith(f"{occurrence}:channel:welcome")]
    assert [w["payload"]["revises"] for w in welcomes] == [False, True]
    assert bridge not in welcomes[0]["payload"]["text"] and bridge in welcomes[1]["payload"]["text"]
