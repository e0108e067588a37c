"""Recorded histories must replay on today's workflow code: the workflows are deterministic. Until the first
published release, each workflow change re-records them (tests/histories/record.py); from then on a failing
replay means a change would break running incidents, and it goes behind `workflow.patched`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from own_policy import OwnPolicyInterceptor
from worker import WORKFLOWS

HERE = Path(__file__).parent.parent / "histories"
HISTORIES = sorted(p for p in HERE.glob("*.json") if p.name != "workflow_ids.json")
WORKFLOW_IDS = json.loads((HERE / "workflow_ids.json").read_text())  # a decision's proof names its workflow


def test_histories_are_recorded():
    names = {path.stem for path in HISTORIES}
    assert {
        "incident_sev1_business_closed",
        "incident_disturbance",
        "comms_superseded_by_phases",
        "incident_out_of_hours_resolved",
        "incident_raised_then_recurring",
        "incident_ladder_when_tier2_due",
        "escalation_from_tier2_then_ack",
        "incident_paged_directly",
    } <= names


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_recorded_history_replays_on_current_code(path: Path):
    history = WorkflowHistory.from_json(WORKFLOW_IDS[path.stem], json.loads(path.read_text()))
    replayer = Replayer(
        workflows=WORKFLOWS, data_converter=pydantic_data_converter, interceptors=[OwnPolicyInterceptor()]
    )
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, f"{path.name} no longer replays: {result.replay_failure}"
