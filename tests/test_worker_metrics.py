"""The worker's Prometheus endpoint: the SDK's own metrics and the pages the orchestrator sent."""

from __future__ import annotations

import asyncio
import socket
from datetime import timedelta

import httpx
from temporalio.testing import WorkflowEnvironment

import observability
from settings import Settings, connect
from worker import build_worker
from workflows.contracts.policy import Policy
from workflows.contracts.temporal.ids import incident_id_for
from workflows.contracts.vocabulary import Severity
from workflows.incident.inputs import IncidentInput
from workflows.incident.model import AlertEvent
from workflows.incident.workflow import IncidentWorkflow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_worker_serves_pages_sent_and_sdk_metrics(
    dev_env: WorkflowEnvironment, settings: Settings, example_policy: Policy
) -> None:
    settings = settings.model_copy(
        update={"metrics_port": free_port(), "temporal_address": dev_env.client.service_client.config.target_host}
    )
    runtime = observability.worker_runtime(settings)
    assert runtime is not None
    client = await connect(settings, runtime=runtime)
    incident_id = incident_id_for("test", f"metrics-{settings.incident_task_queue}")
    async with build_worker(client, settings):
        await client.start_workflow(
            IncidentWorkflow.run,
            IncidentInput(incident_id=incident_id, policy=example_policy),
            id=incident_id,
            task_queue=settings.incident_task_queue,
            start_signal="alert",
            start_signal_args=[
                AlertEvent(
                    source="test", dedup_key="m", title="Checkout down", severity=Severity.SEV1, service="checkout"
                )
            ],
            execution_timeout=timedelta(minutes=5),
        )
        url = f"http://{settings.metrics_host}:{settings.metrics_port}/metrics"
        text = ""
        async with httpx.AsyncClient() as http:
            for _ in range(50):
                text = (await http.get(url)).text
                if "incident_pages_sent" in text:
                    break
                await asyncio.sleep(0.2)
        await client.get_workflow_handle(incident_id).terminate("test finished")
    pages = [line for line in text.splitlines() if line.startswith("incident_pages_sent")]
    assert pages and all('delivered_to="outbox"' in p and 'provider="opsgenie"' in p for p in pages), pages
    assert "temporal_activity_execution_latency" in text or "temporal_workflow_task" in text
