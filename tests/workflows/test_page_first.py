"""Seed 000's order at confirmation: paging first, before the bridge, the channel and the messages."""

from __future__ import annotations

from datetime import timedelta

from temporalio.api.enums.v1 import EventType

from tests.workflows.helpers import alert, make_policy, open_incident, outbox, state
from workflows.vocabulary import Severity


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
