"""A 14-day SEV2 incident with a 30-minute update cadence, on the time-skipping server.

Prints the events of each run (continue-as-new keeps every run well under 10,000), the number of runs
and the wall time. Usage: `.venv/bin/python -m bench.long_incident [--days 14]`.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from datetime import time as dt_time
from datetime import timedelta
from pathlib import Path

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from client.alerts import send_alert
from client.decide import query_state, send_decision
from client.signing import Signer, SigningInterceptor
from policy_file import load_policy
from settings import ROOT, Settings, free_temporal
from worker import build_worker
from workflows.contracts.policy import Policy
from workflows.contracts.temporal import search_attributes
from workflows.contracts.temporal.ids import incident_id_for
from workflows.contracts.trust import verify
from workflows.contracts.vocabulary import IncidentKind, Severity
from workflows.incident.model import Acknowledge, AlertEvent, Classify, ProgressNote, StatusUpdate


def around_the_clock(policy: Policy) -> Policy:
    """The example policy with business hours all week, so the figures do not depend on the day it runs."""
    hours = policy.business_hours.model_copy(
        update={"days": list(range(7)), "start": dt_time(0, 0), "end": dt_time(23, 59, 59)}
    )
    return policy.model_copy(update={"business_hours": hours})


async def events_per_run(client: Client, workflow_id: str, first_run_id: str) -> list[int]:
    counts, run_id = [], first_run_id
    while run_id:
        history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        counts.append(len(history.events))
        last = history.events[-1]
        continued = last.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
        run_id = last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id if continued else ""
    return counts


def policy_file(scratch: Path, policy: Policy) -> Path:
    """The worker runs only what its policy file holds (own_policy.py): the bench's policy goes there."""
    path = scratch / "policy.json"
    path.write_text(policy.model_dump_json())
    return path


async def main(days: int) -> None:
    signer = Signer.generate()  # the bench decides as the HTTP service would: signed, with a key trusted here
    verify.trust([signer.public_key])
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(Path(sys.executable).parent / "temporal-test-server"),
        data_converter=pydantic_data_converter,
        interceptors=[SigningInterceptor(signer)],
    )
    await search_attributes.register(env.client)
    with tempfile.TemporaryDirectory() as scratch:
        policy = around_the_clock(load_policy(ROOT / "examples" / "policy.toml"))
        settings = Settings(
            _env_file=None,
            incident_task_queue="bench",
            outbox_path=Path(scratch, "outbox.jsonl"),
            incident_log_dir=Path(scratch, "logs"),
            incident_policy=policy_file(Path(scratch), policy),
        )
        started = time.perf_counter()
        alert = AlertEvent(
            source="bench",
            dedup_key="long-incident",
            fingerprint="fp1",
            title="Checkout is failing",
            severity=Severity.SEV2,
            service="checkout",
        )
        incident_id = incident_id_for(alert.source, alert.dedup_key)
        async with build_worker(env.client, settings):
            await send_alert(env.client, settings, policy, alert)
            first_run_id = (await env.client.get_workflow_handle(incident_id).describe()).run_id
            await send_decision(env.client, incident_id, Classify(actor="alice", kind=IncidentKind.INCIDENT))
            await env.sleep(timedelta(minutes=2))
            await send_decision(env.client, incident_id, Acknowledge(actor="bob"))
            updates = days * 24 * 2
            for n in range(updates):
                # the developer reports progress, the PM sends the update a minute before it is due
                await env.sleep(timedelta(minutes=12 if n == 0 else 14))
                await send_decision(env.client, incident_id, ProgressNote(actor="bob", text=f"progress {n + 1}"))
                await env.sleep(timedelta(minutes=15))
                await send_decision(env.client, incident_id, StatusUpdate(actor="alice", text=f"update {n + 1}"))
            state = await query_state(env.client, incident_id)
            counts = await events_per_run(env.client, incident_id, first_run_id)
        wall = time.perf_counter() - started
    await env.shutdown()
    print(f"simulated: {days} days of a SEV2 incident: {updates} status updates every 30 min, {updates} progress notes")
    print(f"runs: {len(counts)} (continue-as-new {len(counts) - 1} times)")
    print(f"events per run: max {max(counts)}, all {counts}")
    print(f"timeline entries carried: {len(state.timeline)}; updates missed: {state.updates_missed}")
    print(f"wall time: {wall:.1f} s")
    assert max(counts) < 10_000


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--days", type=int, default=14)
    try:
        asyncio.run(main(parser.parse_args().days))
    finally:
        free_temporal()
