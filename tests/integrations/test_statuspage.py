"""The public status page: created once per incident, then updated phase by phase."""

from __future__ import annotations

import pytest
from temporalio.exceptions import ApplicationError

from activities.outbox import Outbox
from activities.statuspage import StatuspageActivities
from settings import Settings
from tests.fakes.statuspage import API_KEY, FakeStatuspage
from tests.integrations.helpers import attempt
from workflows.contracts.activity_io import StatuspageRequest
from workflows.contracts.vocabulary import Phase


def update(phase: Phase, body: str, statuspage_incident_id: str = "") -> StatuspageRequest:
    return StatuspageRequest(
        incident_id="INC-7F3K",
        name="Checkout errors",
        phase=phase,
        body=body,
        idempotency_key=f"INC-7F3K:statuspage:{phase}",
        statuspage_incident_id=statuspage_incident_id,
    )


async def test_create_then_update_maps_phases_to_statuspage_statuses(settings: Settings, statuspage: FakeStatuspage):
    activities = StatuspageActivities(statuspage.configure(settings), Outbox(settings.outbox_path))

    created = await attempt().run(activities.statuspage_upsert, update(Phase.INVESTIGATION, "Looking into it"))
    await attempt().run(
        activities.statuspage_upsert, update(Phase.IDENTIFICATION, "Found it", created.statuspage_incident_id)
    )
    await attempt().run(activities.statuspage_upsert, update(Phase.RESOLUTION, "Fixed", created.statuspage_incident_id))

    incident = statuspage.incidents[created.statuspage_incident_id]
    assert incident["name"] == "Checkout errors (INC-7F3K)"
    assert [(u["status"], u["body"]) for u in reversed(incident["incident_updates"])] == [
        ("investigating", "Looking into it"),
        ("identified", "Found it"),
        ("resolved", "Fixed"),
    ]
    assert statuspage.calls("/incidents")[0].headers["Authorization"] == f"OAuth {API_KEY}"


async def test_create_retried_without_an_id_finds_the_incident_it_created(
    settings: Settings, statuspage: FakeStatuspage
):
    activities = StatuspageActivities(statuspage.configure(settings), Outbox(settings.outbox_path))
    first = await attempt().run(activities.statuspage_upsert, update(Phase.DETECTION, "Looking into it"))

    again = await attempt(2).run(activities.statuspage_upsert, update(Phase.DETECTION, "Looking into it"))

    assert again.statuspage_incident_id == first.statuspage_incident_id
    assert len(statuspage.incidents) == 1
    assert len(statuspage.incidents[first.statuspage_incident_id]["incident_updates"]) == 1


async def test_update_retried_after_it_went_through_is_not_repeated(settings: Settings, statuspage: FakeStatuspage):
    activities = StatuspageActivities(statuspage.configure(settings), Outbox(settings.outbox_path))
    created = await attempt().run(activities.statuspage_upsert, update(Phase.INVESTIGATION, "Looking"))
    monitoring = update(Phase.MONITORING, "A fix is out", created.statuspage_incident_id)

    await attempt().run(activities.statuspage_upsert, monitoring)
    await attempt(2).run(activities.statuspage_upsert, monitoring)

    assert len(statuspage.incidents[created.statuspage_incident_id]["incident_updates"]) == 2


async def test_unknown_incident_is_final_and_outage_is_retried(settings: Settings, statuspage: FakeStatuspage):
    activities = StatuspageActivities(statuspage.configure(settings), Outbox(settings.outbox_path))

    with pytest.raises(ApplicationError) as missing:
        await attempt().run(activities.statuspage_upsert, update(Phase.MONITORING, "x", "inc-gone"))
    statuspage.fail("/incidents", 502, "<html>Bad Gateway</html>")
    with pytest.raises(ApplicationError) as outage:
        await attempt().run(activities.statuspage_upsert, update(Phase.MONITORING, "x"))

    assert (missing.value.type, missing.value.non_retryable) == ("statuspage:404", True)
    assert (outage.value.type, outage.value.non_retryable) == ("statuspage:502", False)
