"""Bounded input: every alert field has a limit (workflows/contracts/limits.py). At the door a field over it is
a 4xx naming the field and starts nothing; an alert just under every limit pages; and an oversized alert that
gets past the door (started straight in Temporal) is shortened in the workflow and still pages."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import httpx
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from activities.outbox import Outbox
from client.alerts import summary_line
from client.decide import query_state
from settings import Settings
from tests.starter.conftest import workflows_on
from workflows.contracts import limits
from workflows.contracts.policy import Policy
from workflows.contracts.temporal import search_attributes as sa
from workflows.contracts.temporal.ids import INCIDENT_WORKFLOW, incident_id_for
from workflows.contracts.vocabulary import AlertStatus, Severity
from workflows.incident.inputs import IncidentInput
from workflows.incident.model import AlertEvent, IncidentState

KB = 1024
CYRILLIC = "\u0436"  # two bytes in UTF-8


def generic(**fields: object) -> dict[str, object]:
    return {"dedup_key": uuid.uuid4().hex, "title": "Checkout is failing", "severity": "SEV1", **fields}


def alertmanager(**annotations: str) -> dict[str, object]:
    return {
        "groupKey": uuid.uuid4().hex,
        "commonLabels": {"service": "checkout", "severity": "SEV1"},
        "alerts": [{"status": "firing", "labels": {"alertname": "Down"}, "annotations": annotations}],
    }


async def pages_of(settings: Settings, incident_id: str) -> list[dict[str, Any]]:
    """Wait for the incident's first page in the outbox (the tests' deliveries go there)."""
    async with asyncio.timeout(30):
        while True:
            pages = [
                p
                for p in Outbox(settings.outbox_path).read()
                if p["kind"] == "page" and p["payload"]["incident_id"] == incident_id
            ]
            if pages:
                return pages
            await asyncio.sleep(0.2)


async def test_a_3_kb_service_a_900_kb_annotation_and_a_600_kb_title_are_4xx_naming_the_field(
    http: httpx.AsyncClient, dev_env: WorkflowEnvironment, settings: Settings
) -> None:
    cases = [
        ("generic", generic(service="s" * 3 * KB), "service"),
        ("alertmanager", alertmanager(summary="Down", runbook="r" * 900 * KB), "alerts.0.annotations"),
        ("generic", generic(title=CYRILLIC * 300 * KB), "title"),  # Cyrillic: 600 KB in 300 K characters
    ]
    for source, body, field in cases:
        answer = await http.post(f"/alerts/{source}", json=body)
        assert answer.status_code in (413, 422), (field, answer.status_code)
        assert answer.json()["error"].startswith(f"{field}:"), answer.json()
        assert "over the limit" in answer.json()["error"]
    assert await workflows_on(dev_env, settings) == 0


async def test_labels_over_their_count_key_or_value_limit_are_422_naming_the_label(http: httpx.AsyncClient) -> None:
    too_many = {f"l{i}": "v" for i in range(limits.LABELS.entries + 1)}
    for labels, says in (
        (too_many, "65 entries"),
        ({"k" * 129: "v"}, "key 'kkk"),
        ({"team": "v" * 1025}, "'team': 1025 bytes"),
    ):
        answer = await http.post("/alerts/generic", json=generic(labels=labels))
        assert answer.status_code == 422 and answer.json()["error"].startswith("labels:"), answer.text
        assert says in answer.json()["error"], answer.json()


async def test_an_alert_just_under_every_limit_pages(
    http: httpx.AsyncClient, dev_env: WorkflowEnvironment, settings: Settings
) -> None:
    body = generic(
        title=CYRILLIC * (limits.TITLE.value_bytes // 2),  # two bytes each: exactly at the limit
        service="s" * limits.SERVICE.value_bytes,
        description="d" * limits.DESCRIPTION.value_bytes,
        labels={f"{i:0>128}": "v" * limits.LABELS.value_bytes for i in range(limits.LABELS.entries)},
        links=["https://x.example/" + "p" * (limits.LINK.value_bytes - 18)] * limits.LINKS.entries,
    )
    answer = await http.post("/alerts/generic", json=body)
    assert answer.status_code == 202, answer.text
    incident_id = answer.json()["incidents"][0]
    assert await pages_of(settings, incident_id)
    state = await query_state(dev_env.client, incident_id)
    assert state.title == body["title"] and state.service == body["service"], "nothing under a limit is cut"


async def test_alertmanager_common_annotations_are_not_copied_into_every_alert(
    http: httpx.AsyncClient, dev_env: WorkflowEnvironment
) -> None:
    """A group's common description multiplied into each of its thousands of alerts made a 546 KB body about
    500 MB of signals in one history; each alert now carries only its own words."""
    marker = "common-words-" * 800  # 10 KB
    body = alertmanager(summary="Down")
    body["commonAnnotations"] = {"summary": "Down", "description": marker}
    body["alerts"] = [{**body["alerts"][0], "fingerprint": f"f{i}"} for i in range(20)]  # type: ignore[index]
    answer = await http.post("/alerts/alertmanager", json=body)
    assert answer.status_code == 202, answer.text
    handle = dev_env.client.get_workflow_handle(incident_id_for("alertmanager", str(body["groupKey"])))
    copies = 0
    async for event in handle.fetch_history_events():
        copies += event.SerializeToString().count(marker[:1300].encode())
    assert copies == 0, f"the group's description is in the history {copies} times"


async def started_straight(
    dev_env: WorkflowEnvironment, settings: Settings, policy: Policy, event: AlertEvent
) -> WorkflowHandle[object, IncidentState]:
    """What someone with namespace access does: start the incident with no door in between."""
    incident_id = incident_id_for(event.source, event.dedup_key)
    return await dev_env.client.start_workflow(
        INCIDENT_WORKFLOW,
        IncidentInput(incident_id=incident_id, policy=policy, first_alert=event),
        id=incident_id,
        task_queue=settings.incident_task_queue,
        execution_timeout=timedelta(minutes=10),
    )


async def test_an_oversized_alert_past_the_door_is_shortened_and_still_pages(
    dev_env: WorkflowEnvironment, settings: Settings, example_policy: Policy, worker: None
) -> None:
    """A 3 KB service is over the server's limit on a search attribute: uncut, the first workflow task (the one
    that pages) would be refused on every retry. A 600 KB title would be refused by the paging provider."""
    event = AlertEvent.model_construct(  # no validation: the oversized alert as it reaches Temporal
        source="straight",
        dedup_key=uuid.uuid4().hex,
        fingerprint="f",
        status=AlertStatus.FIRING,
        title=CYRILLIC * 300 * KB,
        description="d" * 900 * KB,
        severity=Severity.SEV1,
        service="s" * 3 * KB,
        labels={"team": "v" * 5 * KB},
        links=[],
        criteria=[],
        received_at=None,
        silence=None,
    )
    handle = await started_straight(dev_env, settings, example_policy, event)
    pages = await pages_of(settings, handle.id)
    assert limits.size(str(pages[0]["payload"]["summary"])) <= limits.TITLE.value_bytes + 200
    state = await query_state(dev_env.client, handle.id)
    assert state.title == CYRILLIC * (limits.TITLE.value_bytes // 2)
    assert limits.size(state.service) == limits.SERVICE.value_bytes
    assert limits.size(state.description) <= limits.DESCRIPTION.value_bytes
    described = await handle.describe()
    assert described.typed_search_attributes.get(sa.SERVICE) == state.service


async def test_the_openapi_states_the_limits(http: httpx.AsyncClient) -> None:
    described = (await http.get("/openapi.json")).json()["paths"]["/alerts/{source}"]["post"]["description"]
    assert f"Title {limits.TITLE.value_bytes}" in described and f"service {limits.SERVICE.value_bytes}" in described


def test_the_ui_summary_is_cut_by_bytes_not_characters() -> None:
    """Servers measure the summary in bytes: 200 Cyrillic characters are 400 bytes."""
    line = summary_line(AlertEvent(source="generic", dedup_key="k", title=CYRILLIC * 1000, service="checkout"))
    assert limits.size(line) <= limits.SUMMARY_BYTES and line.startswith(CYRILLIC * 100)
