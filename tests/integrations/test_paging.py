"""Paging through OpsGenie's Alert API, Jira Service Management Operations' and PagerDuty's Events API, each
against its fake."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import SecretStr
from temporalio.exceptions import ApplicationError

from activities.outbox import Outbox
from activities.paging.providers import PagingActivities
from settings import Settings
from tests.fakes.paging import JSM_KEY, OPSGENIE_KEY, PAGERDUTY_ROUTING_KEY, FakeJsm, FakeOpsGenie, FakePagerDuty
from tests.integrations.helpers import attempt
from workflows.contracts.activity_io import PageAction, PageRequest
from workflows.contracts.vocabulary import Severity


def page(provider: str, **changes: object) -> PageRequest:
    fields: dict[str, object] = {
        "incident_id": "INC-7F3K",
        "dedup_key": "INC-7F3K",
        "summary": "Checkout is failing " * 10,
        "severity": Severity.SEV1,
        "description": "5xx above 20%",
        "provider": provider,
        "responders": ["alice@example.com", "team:payments"],
        "details": {"service": "checkout"},
    }
    return PageRequest.model_validate(fields | changes)


def action(provider: str, note: str = "") -> PageAction:
    return PageAction(incident_id="INC-7F3K", dedup_key="INC-7F3K", provider=provider, note=note, actor="alice")


async def test_opsgenie_open_is_one_alert_by_alias_even_when_repeated(settings: Settings, opsgenie: FakeOpsGenie):
    paging = PagingActivities(opsgenie.configure(settings), Outbox(settings.outbox_path))

    result = await attempt().run(paging.page_open, page("opsgenie"))
    await attempt(2).run(paging.page_open, page("opsgenie"))

    [alert] = opsgenie.alerts.values()
    assert (result.provider, result.delivered_to) == ("opsgenie", "opsgenie")
    assert result.reference  # OpsGenie's requestId
    assert alert.count == 2  # OpsGenie de-duplicated the retry: no second notification
    assert alert.body["priority"] == "P1"
    assert len(alert.body["message"]) == 130
    assert alert.body["responders"] == [
        {"type": "user", "username": "alice@example.com"},
        {"type": "team", "name": "payments"},
    ]
    assert opsgenie.calls("/v2/alerts")[0].headers["Authorization"] == f"GenieKey {OPSGENIE_KEY}"


async def test_opsgenie_acknowledge_note_and_close_address_the_alert_by_alias(
    settings: Settings, opsgenie: FakeOpsGenie
):
    paging = PagingActivities(opsgenie.configure(settings), Outbox(settings.outbox_path))
    await attempt().run(paging.page_open, page("opsgenie"))

    await attempt().run(paging.page_acknowledge, action("opsgenie"))
    await attempt().run(paging.page_note, action("opsgenie", note="rolled back 1.42"))
    await attempt(2).run(paging.page_note, action("opsgenie", note="rolled back 1.42"))
    await attempt().run(paging.page_resolve, action("opsgenie"))

    alert = opsgenie.alerts["INC-7F3K"]
    assert alert.acknowledged and alert.status == "closed"
    assert [n["note"] for n in alert.notes] == ["rolled back 1.42"]  # the retried note was not added twice


async def test_opsgenie_rejections_are_final_and_outages_are_retried(settings: Settings, opsgenie: FakeOpsGenie):
    paging = PagingActivities(opsgenie.configure(settings), Outbox(settings.outbox_path))
    opsgenie.fail("/v2/alerts", 503, "<html>503 Service Unavailable</html>")

    with pytest.raises(ApplicationError) as outage:
        await attempt().run(paging.page_open, page("opsgenie"))
    with pytest.raises(ApplicationError) as rejected:
        await attempt().run(paging.page_open, page("opsgenie", summary=""))

    assert (outage.value.type, outage.value.non_retryable) == ("opsgenie:503", False)
    assert (rejected.value.type, rejected.value.non_retryable) == ("opsgenie:422", True)
    assert "Message can not be empty" in rejected.value.message


async def test_opsgenie_wrong_key_is_not_retried_and_not_echoed(settings: Settings, opsgenie: FakeOpsGenie):
    wrong_key = opsgenie.configure(settings).model_copy(update={"opsgenie_api_key": SecretStr("wrong-key")})
    paging = PagingActivities(wrong_key, Outbox(settings.outbox_path))

    with pytest.raises(ApplicationError) as raised:
        await attempt().run(paging.page_open, page("opsgenie"))

    assert (raised.value.type, raised.value.non_retryable) == ("opsgenie:401", True)
    assert "wrong-key" not in str(raised.value)


async def test_pagerduty_trigger_acknowledge_resolve_share_the_dedup_key(settings: Settings, pagerduty: FakePagerDuty):
    paging = PagingActivities(pagerduty.configure(settings), Outbox(settings.outbox_path))

    opened = await attempt().run(paging.page_open, page("pagerduty", severity=Severity.SEV2))
    await attempt().run(paging.page_acknowledge, action("pagerduty"))
    await attempt().run(paging.page_resolve, action("pagerduty"))

    assert (opened.reference, opened.delivered_to) == ("INC-7F3K", "pagerduty")
    assert pagerduty.incidents == {"INC-7F3K": "resolved"}
    trigger = pagerduty.events[0]
    assert trigger["routing_key"] == PAGERDUTY_ROUTING_KEY
    assert trigger["payload"]["severity"] == "error"
    assert trigger["payload"]["custom_details"]["service"] == "checkout"
    assert [e["event_action"] for e in pagerduty.events] == ["trigger", "acknowledge", "resolve"]


async def test_pagerduty_invalid_event_is_final_and_429_is_retried(settings: Settings, pagerduty: FakePagerDuty):
    paging = PagingActivities(pagerduty.configure(settings), Outbox(settings.outbox_path))
    pagerduty.fail(
        "/v2/enqueue",
        429,
        {
            "status": "throttle event",
            "message": "Requests for this service are arriving too quickly. Please retry later.",
        },
    )

    with pytest.raises(ApplicationError) as throttled:
        await attempt().run(paging.page_open, page("pagerduty"))
    with pytest.raises(ApplicationError) as invalid:
        await attempt().run(paging.page_open, page("pagerduty", summary=""))

    assert (throttled.value.type, throttled.value.non_retryable) == ("pagerduty:429", False)
    assert (invalid.value.type, invalid.value.non_retryable) == ("pagerduty:400", True)
    assert "payload.summary" in invalid.value.message


async def test_pagerduty_note_is_kept_in_the_outbox(settings: Settings, pagerduty: FakePagerDuty):
    paging = PagingActivities(pagerduty.configure(settings), Outbox(settings.outbox_path))

    result = await attempt().run(paging.page_note, action("pagerduty", note="rolled back"))

    assert result.delivered_to == "outbox"
    assert pagerduty.received == []
    assert Outbox(settings.outbox_path).read()[0]["payload"]["note"] == "rolled back"


async def test_unconfigured_provider_pages_into_the_outbox(settings: Settings, opsgenie: FakeOpsGenie):
    paging = PagingActivities(opsgenie.configure(settings), Outbox(settings.outbox_path))

    result = await attempt().run(paging.page_open, page("pagerduty"))

    assert result.delivered_to == "outbox"
    assert opsgenie.received == []


async def test_jsm_open_acknowledge_and_close_address_one_alert_by_alias(settings: Settings, jsm: FakeJsm):
    paging = PagingActivities(jsm.configure(settings), Outbox(settings.outbox_path))

    opened = await attempt().run(paging.page_open, page("jsm"))
    await attempt(2).run(paging.page_open, page("jsm"))
    await attempt().run(paging.page_acknowledge, action("jsm"))
    await attempt().run(paging.page_note, action("jsm", note="rolled back 1.42"))
    await attempt().run(paging.page_resolve, action("jsm"))

    [alert] = jsm.alerts.values()
    assert (opened.provider, opened.delivered_to) == ("jsm", "jsm") and opened.reference  # JSM's requestId
    assert alert.count == 2  # JSM de-duplicated the retried open on its alias: nobody is notified twice
    assert alert.acknowledged and alert.status == "closed"
    assert [n["note"] for n in alert.notes] == ["rolled back 1.42"]
    assert alert.body["priority"] == "P1" and alert.body["alias"] == "INC-7F3K"
    assert {r.headers["Authorization"] for r in jsm.received} == {f"GenieKey {JSM_KEY}"}
    assert {r.path for r in jsm.received} == {
        "/jsm/ops/integration/v2/alerts",
        "/jsm/ops/integration/v2/alerts/INC-7F3K/acknowledge",
        "/jsm/ops/integration/v2/alerts/INC-7F3K/notes",
        "/jsm/ops/integration/v2/alerts/INC-7F3K/close",
    }


async def test_jsm_throttling_and_outages_are_retried_and_a_wrong_key_is_final(settings: Settings, jsm: FakeJsm):
    paging = PagingActivities(jsm.configure(settings), Outbox(settings.outbox_path))
    jsm.fail("/alerts", 429, {"message": "Rate limit exceeded", "took": 0.0}, headers={"Retry-After": "7"})
    jsm.fail("/alerts", 502, "<html>502 Bad Gateway</html>")

    with pytest.raises(ApplicationError) as throttled:
        await attempt().run(paging.page_open, page("jsm"))
    with pytest.raises(ApplicationError) as outage:
        await attempt(2).run(paging.page_open, page("jsm"))
    await jsm.__aexit__()
    with pytest.raises(ApplicationError) as unreachable:
        await attempt(3).run(paging.page_open, page("jsm"))
    wrong = jsm.configure(settings).model_copy(update={"jsm_api_key": SecretStr("wrong-key")})
    async with FakeJsm() as up:
        wrong = wrong.model_copy(update={"jsm_api_url": up.url})
        with pytest.raises(ApplicationError) as refused:
            await attempt().run(PagingActivities(wrong, Outbox(settings.outbox_path)).page_open, page("jsm"))

    assert (throttled.value.type, throttled.value.non_retryable) == ("jsm:429", False)
    assert throttled.value.next_retry_delay == timedelta(seconds=7)
    assert (outage.value.type, outage.value.non_retryable) == ("jsm:502", False)
    assert (unreachable.value.type, unreachable.value.non_retryable) == ("jsm:unreachable", False)
    assert (refused.value.type, refused.value.non_retryable) == ("jsm:401", True)
    assert "wrong-key" not in str(refused.value)
