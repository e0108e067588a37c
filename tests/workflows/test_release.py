"""A new incident asks for its release once: one patch marker in its history, not one per change it has."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.exceptions import TemporalError

from tests.workflows.helpers import alert, make_policy, open_incident, state
from workflows.contracts.vocabulary import Severity
from workflows.incident.model import Acknowledge, Resolve, StatusUpdate
from workflows.release import INCIDENT_RELEASE, RELEASE, RELEASE_1, has_change


async def test_a_new_incident_records_one_patch_marker_for_every_change_of_its_release(ts_env, settings, worker):
    """Each marker comes with an upsert of TemporalChangeVersion: two events and a visibility write on the
    server per change, in every incident. Here the incident passes every place that asks for a change of
    release 1: its opening, the page, the ladder at tier 2, a status update and the resolution (seed 000's
    gate), with the changes on."""
    policy = make_policy(business_incidents=True)
    handle = await open_incident(ts_env, settings, policy, alert(severity=Severity.SEV1))
    await ts_env.sleep(timedelta(minutes=6))  # tier 2 due: the ladder's child starts
    await handle.execute_update("acknowledge", Acknowledge(actor="bob"))
    await handle.execute_update("status_update", StatusUpdate(actor="alice", text="Rolling back"))
    await handle.execute_update(
        "resolve", Resolve(actor="alice", overview="Checkout failed", how_resolved="Rollback", prevention="Canary")
    )
    await ts_env.sleep(timedelta(minutes=5))
    events = [e async for e in handle.fetch_history_events()]
    markers = [
        json.loads(e.marker_recorded_event_attributes.details["patch-data"].payloads[0].data)["id"]
        for e in events
        if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
    ]
    upserted = [
        e.upsert_workflow_search_attributes_event_attributes.search_attributes.indexed_fields
        for e in events
        if e.event_type == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES
    ]
    change_versions = [fields for fields in upserted if "TemporalChangeVersion" in fields]
    assert markers == [INCIDENT_RELEASE]
    assert len(change_versions) == 1
    s = await state(handle)
    assert s.release == RELEASE and s.on_call_holders_decide
    scheduled = [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]
    assert scheduled[0] == "page_open"  # page-first-command-at-confirmation
    await ts_env.client.get_workflow_handle(f"{s.occurrence}-escalation-1").describe()  # started at tier 2
    assert any(e.kind == "statement" for e in s.timeline)  # the resolution waits at seed 000's gate


def test_a_release_holds_the_changes_it_names_and_asks_for_any_other():
    assert all(has_change(RELEASE, change) for change in RELEASE_1)  # outside a workflow: nothing was asked
    with pytest.raises(TemporalError, match="Not in workflow"):  # a later change is asked of workflow.patched
        has_change(RELEASE, "a-change-after-release-1")
    with pytest.raises(TemporalError, match="Not in workflow"):  # so is every change, for a run before it
        has_change(0, next(iter(RELEASE_1)))
