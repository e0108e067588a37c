"""The alert webhook against a real Temporal dev server: 202 only for recorded alerts, one incident per
alert group however the alerts arrive, and a clear 4xx (or 503) that starts nothing otherwise."""

from __future__ import annotations

import asyncio
import json
import socket
import time
import uuid

import httpx
import pytest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from client.decide import query_state
from settings import ROOT, Settings
from starter.http.app import create_app
from tests.conftest import BIN
from tests.starter.conftest import workflows_on
from workflows.contracts.policy import Policy
from workflows.contracts.temporal.ids import incident_id_for
from workflows.incident.model import IncidentState


def example(name: str) -> dict:
    return json.loads((ROOT / "examples" / f"{name}.json").read_text())


def generic(key: str = "", **fields: object) -> dict:
    return {
        "dedup_key": key or uuid.uuid4().hex,
        "title": "Checkout is failing",
        "severity": "SEV2",
        "service": "checkout",
        **fields,
    }


async def state_of(env: WorkflowEnvironment, incident_id: str) -> IncidentState:
    return await query_state(env.client, incident_id)


async def exists(env: WorkflowEnvironment, incident_id: str) -> bool:
    try:
        await env.client.get_workflow_handle(incident_id).describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True


async def test_healthz(http: httpx.AsyncClient) -> None:
    answer = await http.get("/healthz")
    assert answer.status_code == 200 and answer.json() == {"status": "ok"}


async def test_alertmanager_group_opens_one_incident_with_every_alert(
    http: httpx.AsyncClient, dev_env: WorkflowEnvironment
) -> None:
    body = example("alertmanager")
    body["groupKey"] = f"group-{uuid.uuid4().hex}"
    answer = await http.post("/alerts/alertmanager", json=body)
    assert answer.status_code == 202, answer.text
    incident_id = incident_id_for("alertmanager", body["groupKey"])
    assert answer.json() == {"incidents": [incident_id], "alerts": 2}
    state = await state_of(dev_env, incident_id)
    assert state.alert_count == 2 and set(state.alerts) == {"a1b2c3d4e5f60718", "b2c3d4e5f6071829"}
    assert state.severity.value == "SEV1"  # the policy's criterion label: key_function_broken


@pytest.mark.parametrize("source", ["grafana", "datadog", "generic"])
async def test_every_source_example_is_accepted(
    http: httpx.AsyncClient, dev_env: WorkflowEnvironment, source: str
) -> None:
    body = example(source)
    if source == "datadog":  # the template, filled in as Datadog would
        body = {
            "alert_id": "4242",
            "transition": "Triggered",
            "aggregation_key": uuid.uuid4().hex,
            "alert_cycle_key": "c1",
            "priority": "P2",
            "title": "[Triggered] checkout 5xx",
            "message": "5xx above 5%",
            "link": "https://app.datadoghq.com/monitors/4242",
            "tags": "service:checkout",
        }
    elif source == "grafana":
        body["groupKey"] = uuid.uuid4().hex
    else:
        body["dedup_key"] = uuid.uuid4().hex
    answer = await http.post(f"/alerts/{source}", json=body)
    assert answer.status_code == 202, answer.text
    (incident_id,) = answer.json()["incidents"]
    assert (await state_of(dev_env, incident_id)).alert_count == 1


async def test_same_alert_sent_100_times_at_once_opens_exactly_one_incident(
    http: httpx.AsyncClient, dev_env: WorkflowEnvironment, settings: Settings
) -> None:
    body = generic()
    answers = await asyncio.gather(*(http.post("/alerts/generic", json=body) for _ in range(100)))
    assert {a.status_code for a in answers} == {202}
    incident_id = incident_id_for("generic", body["dedup_key"])
    assert {tuple(a.json()["incidents"]) for a in answers} == {(incident_id,)}
    assert (await state_of(dev_env, incident_id)).alert_count == 100
    runs = await dev_env.client.count_workflows(f'WorkflowId="{incident_id}"')
    assert runs.count == 1 and await workflows_on(dev_env, settings) == 1


async def test_metrics_count_accepted_alerts_and_dedup_hits(http: httpx.AsyncClient) -> None:
    body = generic()
    for _ in range(3):
        assert (await http.post("/alerts/generic", json=body)).status_code == 202
    await http.post("/alerts/generic", content=b"{")
    text = (await http.get("/metrics")).text
    assert 'incident_http_alerts_total{outcome="accepted",source="generic"} 3.0' in text
    assert 'incident_http_alerts_total{outcome="invalid",source="generic"} 1.0' in text
    assert 'incident_http_alert_dedup_hits_total{source="generic"} 2.0' in text
    assert 'incident_http_incidents_opened_total{source="generic"} 1.0' in text
    assert 'incident_http_request_seconds_count{method="POST",route="/alerts/{source}",status="202"} 3.0' in text


async def test_metrics_count_open_incidents_by_severity_from_visibility(
    dev_env: WorkflowEnvironment, settings: Settings, example_policy: Policy, worker: None
) -> None:
    fresh = settings.model_copy(update={"metrics_gauge_seconds": 0})  # every scrape reads visibility
    app = create_app(fresh, client=dev_env.client, policy=example_policy)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://webhook") as http:
        await _counts_a_new_sev4(http)


async def _counts_a_new_sev4(http: httpx.AsyncClient) -> None:
    def sev4_unacknowledged(text: str) -> float:
        line = next(
            line for line in text.splitlines() if line.startswith('incident_open{acknowledged="false",severity="SEV4"}')
        )
        return float(line.rsplit(" ", 1)[1])

    before = sev4_unacknowledged((await http.get("/metrics")).text)
    assert (await http.post("/alerts/generic", json=generic(severity="SEV4"))).status_code == 202
    for _ in range(50):  # visibility is eventually consistent
        if sev4_unacknowledged((await http.get("/metrics")).text) == before + 1:
            break
        await asyncio.sleep(0.2)
    assert sev4_unacknowledged((await http.get("/metrics")).text) == before + 1


async def test_malformed_json_is_400_and_starts_nothing(
    http: httpx.AsyncClient, dev_env: WorkflowEnvironment, settings: Settings
) -> None:
    for raw in (b"{", b"\xff\xfe", b"[" * 100_000 + b"]" * 100_000, b""):
        answer = await http.post("/alerts/generic", content=raw)
        assert answer.status_code == 400, (raw[:10], answer.text)
    assert await workflows_on(dev_env, settings) == 0


async def test_wrong_shape_is_422_naming_the_field_and_starts_nothing(
    http: httpx.AsyncClient, dev_env: WorkflowEnvironment, settings: Settings
) -> None:
    body = example("alertmanager")
    body["groupKey"] = uuid.uuid4().hex
    body["alerts"].append({"status": "firing", "labels": {"n": 1}})  # the third alert is bad
    answer = await http.post("/alerts/alertmanager", json=body)
    assert answer.status_code == 422 and answer.json()["error"].startswith("alerts.2.labels.n")
    assert not await exists(dev_env, incident_id_for("alertmanager", body["groupKey"]))
    answer = await http.post("/alerts/alertmanager", json={**body, "alerts": []})
    assert answer.status_code == 422 and answer.json()["error"].startswith("alerts:")
    assert await workflows_on(dev_env, settings) == 0


async def test_unknown_source_is_404(http: httpx.AsyncClient) -> None:
    assert (await http.post("/alerts/nagios", json=generic())).status_code == 404


async def test_body_over_the_limit_is_413_by_header_and_by_stream(
    dev_env: WorkflowEnvironment, settings: Settings, example_policy: Policy, worker: None
) -> None:
    small = settings.model_copy(update={"max_body_bytes": 2000})
    app = create_app(small, client=dev_env.client, policy=example_policy)
    big = json.dumps(generic(description="x" * 5000)).encode()

    async def chunks():  # no Content-Length: only the streamed size can tell
        for i in range(0, len(big), 500):
            yield big[i : i + 500]

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://webhook") as http:
        assert (await http.post("/alerts/generic", content=big)).status_code == 413
        assert (await http.post("/alerts/generic", content=chunks())).status_code == 413
        lying = await http.post("/alerts/generic", content=big, headers={"Content-Length": "10"})
        assert lying.status_code in (400, 413)
    assert await workflows_on(dev_env, settings) == 0


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_temporal_unreachable_is_503_with_retry_after(settings: Settings, example_policy: Policy) -> None:
    down = await Client.connect(f"127.0.0.1:{closed_port()}", lazy=True, data_converter=pydantic_data_converter)
    app = create_app(settings, client=down, policy=example_policy)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://webhook") as http:
        answer = await http.post("/alerts/generic", json=generic())
        assert answer.status_code == 503 and answer.headers["Retry-After"].isdigit()
        assert 'outcome="unavailable"' in (await http.get("/metrics")).text


async def test_temporal_going_away_is_503_within_the_budget(settings: Settings, example_policy: Policy) -> None:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(BIN / "temporal"), data_converter=pydantic_data_converter
    )
    app = create_app(settings, client=env.client, policy=example_policy, budget_seconds=1.0)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://webhook") as http:
        # No worker is needed for the server to accept a signal-with-start: 202 while it is up.
        assert (await http.post("/alerts/generic", json=generic())).status_code == 202
        await env.shutdown()
        started = time.monotonic()
        answer = await http.post("/alerts/generic", json=generic())
        assert answer.status_code == 503 and answer.headers["Retry-After"].isdigit()
        assert time.monotonic() - started < 5


async def test_alert_storm_of_thousands_in_one_body_is_one_incident(
    http: httpx.AsyncClient, dev_env: WorkflowEnvironment, settings: Settings
) -> None:
    body = example("alertmanager")
    body["groupKey"] = uuid.uuid4().hex
    template = body["alerts"][0]
    body["alerts"] = [
        {**template, "fingerprint": f"fp{i}", "labels": {**template["labels"], "instance": f"i{i}"}}
        for i in range(2000)
    ]
    answer = await http.post("/alerts/alertmanager", json=body)
    incident_id = incident_id_for("alertmanager", body["groupKey"])
    assert answer.status_code == 202 and answer.json() == {"incidents": [incident_id], "alerts": 2000}
    assert (await state_of(dev_env, incident_id)).alert_count == 2000
    assert await workflows_on(dev_env, settings) == 1
