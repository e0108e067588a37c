"""Seed 000's order at confirmation: paging first, before the bridge, the channel and the messages."""

from __future__ import annotations

from datetime import timedelta

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError

from tests.workflows.helpers import alert, make_policy, open_incident, outbox, state
from workflows.contracts.vocabulary import Severity
from workflows.incident.model import Acknowledge


async def test_seed000_the_page_is_the_first_thing_a_confirmed_incident_asks_for(ts_env, settings, worker):
    """The first activities a workflow task schedules go to its worker with the task's answer (eager), so
    the page, first among them, waits in no queue however many deliveries the confirmation sets off."""
    handle = await open_incident(ts_env, settings, make_policy(), alert(severity=Severity.SEV1))
    await ts_env.sleep(timedelta(seconds=10))
    s = await state(handle)
    assert s.confirmed
    scheduled = [
        e.activity_task_scheduled_event_attributes.activity_type.name
        async for e in handle.fetch_history_events()
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]
    assert len(scheduled) > 3, "the confirmation sets off more than the page"
    assert scheduled[0] == "page_open", f"the first activity asked for was {scheduled[0]}"
    pages = outbox(settings, "opsgenie", "page")
    assert len({p["payload"]["dedup_key"] for p in pages}) == len(pages) == 1, "tier 1 is paged once"
    assert any("escalation tier 1" in e.text for e in s.timeline if e.kind == "page")


async def test_an_incident_acknowledged_within_tier_1_starts_no_ladder(ts_env, settings, worker):
    """Tier 1 is paged and waited out by the incident itself: most incidents are acknowledged within it, and
    a ladder workflow for each of them would double what a storm costs the server."""
    handle = await open_incident(ts_env, settings, make_policy(), alert(severity=Severity.SEV1))
    await ts_env.sleep(timedelta(minutes=1))
    await handle.execute_update("acknowledge", Acknowledge(actor="bob"))
    await ts_env.sleep(timedelta(minutes=20))
    s = await state(handle)
    assert not s.escalation_active and s.ladder_due is None
    assert [e.text for e in s.timeline if e.kind == "escalation"][-1] == "Escalation stopped: acknowledged by bob"
    with pytest.raises(RPCError, match="not found"):
        await ts_env.client.get_workflow_handle(f"{s.occurrence}-escalation-1").describe()
    assert not [p for p in outbox(settings, "opsgenie", "page") if ":t2" in p["key"]], "tier 2 was paged"


async def test_the_ladder_starts_when_tier_2_is_due_and_pages_it_then(ts_env, settings, worker):
    handle = await open_incident(ts_env, settings, make_policy(), alert(severity=Severity.SEV1))
    await ts_env.sleep(timedelta(minutes=4))
    s = await state(handle)
    assert s.escalation_active and s.ladder_due is not None
    assert timedelta(minutes=5) <= s.ladder_due - s.opened_at < timedelta(minutes=5, seconds=1)
    with pytest.raises(RPCError, match="not found"):
        await ts_env.client.get_workflow_handle(f"{s.occurrence}-escalation-1").describe()
    await ts_env.sleep(timedelta(minutes=2))
    ladder = await ts_env.client.get_workflow_handle(f"{s.occurrence}-escalation-1").describe()
    assert ladder.status == WorkflowExecutionStatus.RUNNING
    s = await state(handle)
    tier2 = [e for e in s.timeline if e.kind == "page" and "tier 2: page" in e.text]
    assert len(tier2) == 1 and tier2[0].at - s.opened_at < timedelta(minutes=5, seconds=1)
    keys = [p["key"] for p in outbox(settings, "opsgenie", "page")]
    assert len(keys) == len(set(keys)) == 2 and sum(":t1" in k for k in keys) == 1, keys
