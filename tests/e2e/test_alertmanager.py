"""Real Alertmanager -> our HTTP service -> Temporal: one incident per alert group, and resolved
alerts reach the incident. Alertmanager is Debian's `prometheus-alertmanager`, installed when absent.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import uvicorn
from temporalio.testing import WorkflowEnvironment

from settings import Settings
from starter.http.app import create_app
from worker import build_worker
from workflows.contracts.vocabulary import AlertStatus
from workflows.incident.model import IncidentState
from workflows.incident.workflow import IncidentWorkflow

pytestmark = pytest.mark.e2e

ALERTMANAGER = Path("/usr/bin/prometheus-alertmanager")
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def alertmanager_binary() -> Path:
    """Debian's package, installed on a fresh (root) CI machine; elsewhere the test is skipped."""
    if ALERTMANAGER.exists():
        return ALERTMANAGER
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.skip("prometheus-alertmanager is not installed; as root: apt-get install prometheus-alertmanager")
    env = os.environ | {"DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "prometheus-alertmanager"]
    if subprocess.run(install, env=env, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True)
        result = subprocess.run(install, env=env, capture_output=True, text=True)
        assert result.returncode == 0, f"apt-get could not install prometheus-alertmanager:\n{result.stderr}"
    return ALERTMANAGER


@pytest.fixture
async def http_service(dev_env: WorkflowEnvironment, settings: Settings) -> AsyncIterator[str]:
    """The HTTP service in-process on a free port, and a worker for its task queue."""
    port = free_port()
    app = create_app(settings, client=dev_env.client)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    async with build_worker(dev_env.client, settings):
        serving = asyncio.create_task(server.serve())
        while not server.started:
            assert not serving.done(), "the HTTP service did not start"
            await asyncio.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
        server.should_exit = True
        await serving


@pytest.fixture
async def alertmanager(alertmanager_binary: Path, http_service: str, tmp_path: Path) -> AsyncIterator[str]:
    """Alertmanager on loopback, no clustering, flushing groups every second to our webhook."""
    config = tmp_path / "alertmanager.yml"
    config.write_text(
        f"""
route:
  receiver: orchestrator
  group_by: [alertname, service]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: orchestrator
    webhook_configs:
      - url: {http_service}/alerts/alertmanager
        send_resolved: true
"""
    )
    address = f"127.0.0.1:{free_port()}"
    process = await asyncio.create_subprocess_exec(
        str(alertmanager_binary),
        f"--config.file={config}",
        f"--storage.path={tmp_path / 'alertmanager-data'}",
        f"--web.listen-address={address}",
        "--cluster.listen-address=",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=(tmp_path / "alertmanager.log").open("wb"),
    )
    url = f"http://{address}"
    try:
        async with httpx.AsyncClient() as http:

            async def ready() -> bool:
                try:
                    return (await http.get(f"{url}/-/ready")).status_code == 200
                except httpx.TransportError:
                    return False

            await eventually(ready, "Alertmanager to be ready", within=15)
        yield url
    finally:
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            process.kill()
            await process.wait()


async def eventually(check: Callable[[], Awaitable[T | None]], what: str, within: float = 20) -> T:
    """`check()`'s first truthy result, polling; fails the test naming `what` after `within` seconds."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"gave up after {within:.0f} s waiting for {what}")
        await asyncio.sleep(0.25)


def alert(alertname: str, service: str, instance: str, ends_at: datetime) -> dict[str, Any]:
    return {
        "labels": {"alertname": alertname, "service": service, "instance": instance, "severity": "critical"},
        "annotations": {"summary": f"{service} error rate above 5%", "description": f"5xx on {instance}"},
        "startsAt": (datetime.now(UTC) - timedelta(minutes=5)).isoformat(),
        "endsAt": ends_at.isoformat(),
        "generatorURL": "http://prometheus.example.com/graph",
    }


async def test_alertmanager_groups_become_one_incident_each_and_resolution_reaches_them(
    alertmanager: str, dev_env: WorkflowEnvironment, settings: Settings
) -> None:
    alertname = f"E2EErrorRate{uuid.uuid4().hex[:6]}"
    groups = {"checkout": ["checkout-1:9100", "checkout-2:9100"], "search": ["search-1:9100"]}  # by service

    async def post(ends_at: datetime) -> None:
        alerts = [alert(alertname, service, i, ends_at) for service, hosts in groups.items() for i in hosts]
        async with httpx.AsyncClient() as http:
            response = await http.post(f"{alertmanager}/api/v2/alerts", json=alerts)
        assert response.status_code == 200, response.text

    async def incidents() -> list[IncidentState]:
        """Every incident opened on this test's task queue."""
        found = []
        async for execution in dev_env.client.list_workflows(f"TaskQueue = '{settings.incident_task_queue}'"):
            if execution.workflow_type == IncidentWorkflow.__name__:
                handle = dev_env.client.get_workflow_handle(execution.id)
                found.append(await handle.query(IncidentWorkflow.state))
        return found

    async def opened() -> list[IncidentState] | None:
        found = await incidents()
        alerts_per_service = sorted((state.service, len(state.alerts)) for state in found)
        return found if alerts_per_service == [("checkout", 2), ("search", 1)] else None

    await post(ends_at=datetime.now(UTC) + timedelta(hours=1))
    firing = await eventually(opened, "one incident per Alertmanager group, each with its group's alerts")
    for state in firing:
        assert {a.status for a in state.alerts.values()} == {AlertStatus.FIRING}

    await post(ends_at=datetime.now(UTC) - timedelta(seconds=1))

    async def resolved() -> list[IncidentState] | None:
        found = await incidents()
        done = all(a.status is AlertStatus.RESOLVED for state in found for a in state.alerts.values())
        return found if done else None

    after = await eventually(resolved, "Alertmanager's resolved notifications to reach the incidents")
    assert sorted(s.incident_id for s in after) == sorted(s.incident_id for s in firing), "no new incident"
