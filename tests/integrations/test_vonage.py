"""Vonage's SMS and Voice APIs against a fake: an SMS with its acknowledge link and delivery-receipt callback, a call
whose NCCO reads the incident and takes one key, and how each failure is classified (the SMS API's numbered
statuses at HTTP 200 included)."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import unquote

import pytest
from temporalio.exceptions import ApplicationError

from activities.outbox import Outbox
from activities.paging import telephony_providers
from activities.paging.telephony import TelephonyActivities
from settings import Settings
from tests.fakes.vonage import FROM, FakeVonage
from tests.integrations.helpers import direct_message, in_workflow
from workflows.contracts.activity_io import DirectMessage

PUBLIC = "https://incidents.example"


def page(phone: str = "+15550100002") -> DirectMessage:
    return direct_message(phone, telephony="vonage")


def telephony(settings: Settings, fake: FakeVonage) -> TelephonyActivities:
    configured = fake.configure(settings).model_copy(update={"public_url": PUBLIC})
    return TelephonyActivities(configured, Outbox(settings.outbox_path), telephony_providers(configured))


async def test_an_sms_goes_from_our_number_asks_for_ack_and_names_its_receipt_callback(
    settings: Settings, vonage_api: FakeVonage
):
    result = await in_workflow().run(telephony(settings, vonage_api).send_sms, page())

    [sms] = vonage_api.messages
    assert (result.reference, result.delivered_to) == (sms["message-id"], "vonage")
    assert (sms["to"], sms["from"]) == ("15550100002", FROM.lstrip("+")), "Vonage writes numbers without '+'"
    assert "Reply ACK to acknowledge" in sms["text"] and f"{PUBLIC}/ack/" in sms["text"]
    workflow_id, key = sms["callback"].removeprefix(f"{PUBLIC}/vonage/status/").split("/")
    assert (unquote(workflow_id), unquote(key)) == ("INC-7F3K", page().idempotency_key)


async def test_a_call_under_the_applications_jwt_reads_the_incident_and_takes_one_key(
    settings: Settings, vonage_api: FakeVonage
):
    result = await in_workflow().run(telephony(settings, vonage_api).place_call, page())

    [call] = vonage_api.calls_placed  # the fake took the RS256 JWT of our application
    assert result.reference == call["uuid"]
    talk, prompt, gather = call["ncco"]
    assert talk["text"].startswith("INC-7F3K: checkout is failing. [SEV1]") and "Press 1" in prompt["text"]
    assert gather["dtmf"]["maxDigits"] == 1 and gather["eventUrl"][0].startswith(f"{PUBLIC}/vonage/voice/")
    assert call["event_url"][0].startswith(f"{PUBLIC}/vonage/status/INC-7F3K/")


@pytest.mark.parametrize("send", ["send_sms", "place_call"])
async def test_an_invalid_number_is_refused_for_good(settings: Settings, vonage_api: FakeVonage, send: str):
    with pytest.raises(ApplicationError) as raised:
        await in_workflow().run(getattr(telephony(settings, vonage_api), send), page("+15550100099"))
    assert (raised.value.type, raised.value.non_retryable) == ("vonage:400", True)


async def test_wrong_credentials_are_refused_for_good(settings: Settings, vonage_api: FakeVonage):
    activities = telephony(settings, vonage_api)
    wrong = activities.settings.model_copy(update={"vonage_api_key": "nobody00"})
    with pytest.raises(ApplicationError) as raised:
        await in_workflow().run(
            TelephonyActivities(wrong, activities.outbox, telephony_providers(wrong)).send_sms, page()
        )
    assert (raised.value.non_retryable, "SMS status 4" in raised.value.message) == (True, True)


async def test_a_throttled_sms_is_retried(settings: Settings, vonage_api: FakeVonage):
    vonage_api.throttled = 1
    with pytest.raises(ApplicationError) as raised:
        await in_workflow().run(telephony(settings, vonage_api).send_sms, page())
    assert (raised.value.type, raised.value.non_retryable) == ("vonage:429", False)
    assert vonage_api.messages == []


@pytest.mark.parametrize(
    ("path", "status", "headers", "delay"),
    [
        ("/sms/json", 429, {"Retry-After": "3"}, timedelta(seconds=3)),
        ("/v1/calls", 429, {"Retry-After": "3"}, timedelta(seconds=3)),
        ("/sms/json", 503, {}, None),
    ],
)
async def test_rate_limits_and_server_errors_are_retried(
    settings: Settings,
    vonage_api: FakeVonage,
    path: str,
    status: int,
    headers: dict[str, str],
    delay: timedelta | None,
):
    vonage_api.fail(path, status, {"type": "about:blank", "title": "Too Many Requests"}, headers=headers)
    send = "send_sms" if path == "/sms/json" else "place_call"
    with pytest.raises(ApplicationError) as raised:
        await in_workflow().run(getattr(telephony(settings, vonage_api), send), page())
    assert (raised.value.type, raised.value.non_retryable, raised.value.next_retry_delay) == (
        f"vonage:{status}",
        False,
        delay,
    )
    assert vonage_api.messages == vonage_api.calls_placed == []


async def test_an_unreachable_vonage_is_retried(settings: Settings, vonage_api: FakeVonage):
    activities = telephony(settings, vonage_api)
    await vonage_api.__aexit__()
    with pytest.raises(ApplicationError) as down:
        await in_workflow().run(activities.send_sms, page())
    assert (down.value.type, down.value.non_retryable) == ("vonage:unreachable", False)


async def test_without_vonage_credentials_sms_and_calls_go_to_the_outbox(settings: Settings):
    activities = TelephonyActivities(settings, Outbox(settings.outbox_path), telephony_providers(settings))
    await in_workflow().run(activities.send_sms, page())
    await in_workflow().run(activities.place_call, page())
    assert [(e["system"], e["kind"]) for e in Outbox(settings.outbox_path).read()] == [
        ("vonage", "sms"),
        ("vonage", "voice"),
    ]
