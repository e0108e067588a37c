"""Record workflow histories for the replay test: `python -m tests.histories.record all` (or SCENARIO ...).

Until the first published release there is one code path: every workflow change re-records all of them, and
the replay test guards determinism (the same code replays its own histories), not runs nobody has. From the
first published release on, a change to a workflow goes behind `workflow.patched` (later
`workflow.deprecate_patch`), a scenario showing the new shape is recorded beside the old ones, and a failing
replay is never fixed by re-recording: it means running incidents would break on deploy (README, "Changing a
workflow"). Without arguments it lists the scenarios.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from settings import Settings
from tests.conftest import scratch_settings
from tests.signing import SIGNING
from tests.workflows.helpers import alert, make_policy, open_incident
from tests.workflows.test_direct_paging import direct_policy
from worker import build_worker
from workflows.contracts.activity_io import DeliveryReport
from workflows.contracts.policy import FollowUps, Records
from workflows.contracts.temporal import search_attributes
from workflows.contracts.temporal.ids import record_workflow_id
from workflows.contracts.vocabulary import IncidentKind, Phase, RecordHome, Severity
from workflows.incident.model import (
    Acknowledge,
    AddActionItem,
    ApproveStatement,
    Classify,
    CloseIncident,
    Estimate,
    IncidentState,
    PublishPostmortem,
    Resolve,
    ReviewHeld,
    SetPhase,
    StatusUpdate,
)

HERE = Path(__file__).parent
WORKFLOW_IDS = HERE / "workflow_ids.json"


async def save(client: Client, workflow_id: str, name: str) -> None:
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    (HERE / f"{name}.json").write_text(history.to_json())
    # Decisions' proofs name their workflow (workflows/contracts/trust/proof.py): the replay runs under the same id.
    ids = json.loads(WORKFLOW_IDS.read_text()) if WORKFLOW_IDS.exists() else {}
    WORKFLOW_IDS.write_text(json.dumps({**ids, name: workflow_id}, indent=1, sort_keys=True) + "\n")
    print(f"recorded {name}.json ({len(history.events)} events)")


async def sev1_business_incident_to_closed(env: WorkflowEnvironment, settings: Settings) -> None:
    handle = await close_a_sev1_business_incident(env, settings)
    await save(env.client, handle.id, "incident_sev1_business_closed")
    final = await handle.query("state", result_type=IncidentState)
    await save(env.client, final.comms_workflow_id, "comms_superseded_by_phases")


async def close_a_sev1_business_incident(env: WorkflowEnvironment, settings: Settings) -> WorkflowHandle[Any, Any]:
    handle = await open_incident(env, settings, make_policy(business_incidents=True), alert(severity=Severity.SEV1))
    await env.sleep(timedelta(minutes=6))  # tier 2 paged
    await handle.execute_update("acknowledge", Acknowledge(actor="bob"))
    await handle.execute_update("estimate", Estimate(actor="bob", minutes=20))
    await env.sleep(timedelta(minutes=35))  # estimate elapsed, nudge, missed update, no-progress call
    await handle.execute_update("status_update", StatusUpdate(actor="alice", text="Rolling back"))
    await handle.execute_update("set_phase", SetPhase(actor="bob", phase=Phase.IDENTIFICATION))
    await env.sleep(timedelta(minutes=5))
    await handle.execute_update(
        "resolve", Resolve(actor="alice", overview="Checkout failed", how_resolved="Rollback", prevention="Canary")
    )
    await env.sleep(timedelta(hours=49))  # review reminder
    await handle.execute_update("review_held", ReviewHeld(actor="alice"))
    await handle.execute_update("publish_postmortem", PublishPostmortem(actor="alice"))
    held = (await handle.query("state", result_type=IncidentState)).statements  # seed 000's gate
    for statement in held:
        await handle.execute_update(
            "approve_statement", ApproveStatement(actor="carol", statement_id=statement.statement_id)
        )
    await handle.execute_update("close", CloseIncident(actor="alice"))
    await handle.result()
    return handle


async def out_of_hours_acknowledged_and_resolved(env: WorkflowEnvironment, settings: Settings) -> None:
    policy = make_policy()
    policy = policy.model_copy(update={"business_hours": policy.business_hours.model_copy(update={"days": []})})
    handle = await open_incident(env, settings, policy, alert(severity=Severity.SEV1))
    await env.sleep(timedelta(minutes=6))
    await handle.execute_update("acknowledge", Acknowledge(actor="bob"))
    await handle.execute_update(
        "resolve", Resolve(actor="alice", overview="Checkout failed", how_resolved="Rollback", prevention="Canary")
    )
    await env.sleep(timedelta(minutes=5))
    await save(env.client, handle.id, "incident_out_of_hours_resolved")


async def raised_then_recurring_after_resolution(env: WorkflowEnvironment, settings: Settings) -> None:
    """A SEV2 raised to SEV1 (paged afresh), resolved, then its alert fires again (reopened, paged)."""
    handle = await open_incident(env, settings, make_policy(), alert(severity=Severity.SEV2))
    await handle.execute_update("classify", Classify(actor="alice", kind=IncidentKind.INCIDENT))
    await env.sleep(timedelta(minutes=2))
    await handle.execute_update("acknowledge", Acknowledge(actor="bob"))
    await handle.execute_update("classify", Classify(actor="alice", severity=Severity.SEV1))
    await env.sleep(timedelta(minutes=2))
    await handle.execute_update(
        "resolve", Resolve(actor="alice", overview="Checkout failed", how_resolved="Rollback", prevention="Canary")
    )
    await env.sleep(timedelta(minutes=10))
    await handle.signal("alert", alert(severity=Severity.SEV1))
    await env.sleep(timedelta(minutes=10))
    await save(env.client, handle.id, "incident_raised_then_recurring")


async def ladder_when_tier2_due(env: WorkflowEnvironment, settings: Settings) -> None:
    """The page is the confirming task's first command, and the ladder's child starts only when tier 2 is due."""
    handle = await open_incident(env, settings, make_policy(), alert(severity=Severity.SEV1))
    await env.sleep(timedelta(minutes=6))  # tier 2 paged by the ladder, started at 5 min
    await handle.execute_update("acknowledge", Acknowledge(actor="bob"))
    await handle.execute_update(
        "resolve", Resolve(actor="alice", overview="Checkout failed", how_resolved="Rollback", prevention="Canary")
    )
    await env.sleep(timedelta(minutes=5))
    await save(env.client, handle.id, "incident_ladder_when_tier2_due")
    final = await handle.query("state", result_type=IncidentState)
    await save(env.client, f"{final.occurrence}-escalation-1", "escalation_from_tier2_then_ack")


async def paged_directly_acknowledged_by_sms(env: WorkflowEnvironment, settings: Settings) -> None:
    """Bob's notification rules on durable timers: a push at once, a provider's report about some other
    delivery (it changes nothing), the SMS at +2, acknowledged by SMS before the call at +5."""
    handle = await open_incident(env, settings, direct_policy(), alert(severity=Severity.SEV1))
    await env.sleep(timedelta(minutes=1))
    await handle.signal(
        "delivery_report", DeliveryReport(idempotency_key="unknown-delivery", reason="Twilio reports undelivered")
    )
    await env.sleep(timedelta(minutes=2))
    await handle.execute_update("acknowledge", Acknowledge(actor="bob", via="SMS"))
    await env.sleep(timedelta(minutes=5))
    await save(env.client, handle.id, "incident_paged_directly")


async def jira_record_and_follow_up_to_closed(env: WorkflowEnvironment, settings: Settings) -> None:
    """A SEV1 whose record lives in Jira and whose action item becomes a Jira issue (the outbox stands in)."""
    policy = make_policy(
        records=Records(home=RecordHome.JIRA, project="OPS"), follow_ups=FollowUps(home="jira", project="OPS")
    )
    handle = await open_incident(env, settings, policy, alert(severity=Severity.SEV1))
    await env.sleep(timedelta(minutes=2))
    await handle.execute_update("acknowledge", Acknowledge(actor="bob"))
    await handle.execute_update("status_update", StatusUpdate(actor="alice", text="Rolling back"))
    await handle.execute_update(
        "resolve", Resolve(actor="alice", overview="Checkout failed", how_resolved="Rollback", prevention="Canary")
    )
    await handle.execute_update("add_action_item", AddActionItem(actor="alice", title="Canary", owner="bob"))
    await env.sleep(timedelta(minutes=5))
    await handle.execute_update("review_held", ReviewHeld(actor="alice"))
    await handle.execute_update("publish_postmortem", PublishPostmortem(actor="alice"))
    for statement in (await handle.query("state", result_type=IncidentState)).statements:
        await handle.execute_update(
            "approve_statement", ApproveStatement(actor="carol", statement_id=statement.statement_id)
        )
    await handle.execute_update("close", CloseIncident(actor="alice"))
    final = await handle.result()
    await save(env.client, handle.id, "incident_jira_record_and_follow_up_closed")
    writer = env.client.get_workflow_handle(record_workflow_id(final.occurrence))
    await writer.result()
    await save(env.client, writer.id, "record_writer_jira_closed")


async def disturbance(env: WorkflowEnvironment, settings: Settings) -> None:
    handle = await open_incident(env, settings, make_policy(), alert(severity=Severity.SEV3))
    await handle.execute_update("classify", Classify(actor="alice", kind=IncidentKind.DISTURBANCE))
    await handle.result()
    await save(env.client, handle.id, "incident_disturbance")


SCENARIOS = {
    scenario.__name__: scenario
    for scenario in (
        sev1_business_incident_to_closed,
        out_of_hours_acknowledged_and_resolved,
        raised_then_recurring_after_resolution,
        disturbance,
        ladder_when_tier2_due,
        paged_directly_acknowledged_by_sms,
        jira_record_and_follow_up_to_closed,
    )
}


async def main(names: list[str]) -> None:
    names = list(SCENARIOS) if names == ["all"] else names
    unknown = [name for name in names if name not in SCENARIOS]
    if not names or unknown:
        print(f"unknown: {', '.join(unknown)}" if unknown else "record which? (the others stay as recorded)")
        print("scenarios: all, " + ", ".join(SCENARIOS))
        raise SystemExit(2)
    bin_dir = Path(sys.executable).parent
    for scenario in (SCENARIOS[name] for name in names):
        env = await WorkflowEnvironment.start_time_skipping(
            test_server_existing_path=str(bin_dir / "temporal-test-server"),
            data_converter=pydantic_data_converter,
            interceptors=[SIGNING],  # decisions signed with the tests' fixed key, so the replay test can verify them
        )
        await search_attributes.register(env.client)
        with tempfile.TemporaryDirectory() as scratch:
            settings = scratch_settings(Path(scratch), "record")
            async with build_worker(env.client, settings):
                await scenario(env, settings)
        await env.shutdown()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
