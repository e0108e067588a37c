"""Twilio's REST API against a fake: an SMS with its acknowledge link, a call that reads the incident and takes a
keypress, status callbacks to the sending workflow, and how each failure is classified."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from urllib.parse import unquote

import pytest
from temporalio.exceptions import ApplicationError

from activities.outbox import Outbox
from activities.paging import telephony_providers
from activities.paging.telephony import TelephonyActivities
from settings import Settings
from tests.fakes.twilio import FROM, FakeTwilio
from tests.integrations.helpers import direct_message, in_workflow
from workflows.contracts.activity_io import DirectMessage

PUBLIC = "https://incidents.example"


def page(phone: str = "+15550100002") -> DirectMessage:
    return direct_message(phone)


def telephony(settings: Settings, fake: FakeTwilio) -> TelephonyActivities:
    configured = fake.configure(settings).model_copy(update={"public_url": PUBLIC})
    return TelephonyActivities(configured, Outbox(settings.outbox_path), telephony_providers(configured))


async def test_an_sms_asks_for_ack_links_back_and_reports_to_the_workflow_that_sent_it(
    settings: Settings, twilio_api: FakeTwilio
):
    result = await in_workflow().run(telephony(settings, twilio_api).send_sms, page())

    [sms] = twilio_api.messages
    assert (result.reference, result.delivered_to) == (sms["sid"], "twilio")
    assert (sms["To"], sms["From"]) == ("+15550100002", FROM)
    assert "Reply ACK to acknowledge" in sms["Body"] and f"{PUBLIC}/ack/" in sms["Body"]
    workflow_id, key = sms["StatusCallback"].removeprefix(f"{PUBLIC}/twilio/status/").split("/")
    assert (unquote(workflow_id), unquote(key)) == ("INC-7F3K", page().idempotency_key)


async def test_a_call_reads_the_incident_as_speech_and_gathers_one_key(settings: Settings, twilio_api: FakeTwilio):
    await in_workflow().run(telephony(settings, twilio_api).place_call, page())

    [call] = twilio_api.calls_placed
    assert call["Twiml"].startswith('<?xml version="1.0" encoding="UTF-8"?><Response><Gather')
    assert 'numDigits="1"' in call["Twiml"] and f'action="{PUBLIC}/twilio/voice/' in call["Twiml"]
    assert "checkout &lt;is&gt; failing &amp; needs" in call["Twiml"], "the alert's text is data, escaped for TwiML"


async def test_an_invalid_number_is_refused_for_good(settings: Settings, twilio_api: FakeTwilio):
    with pytest.raises(ApplicationError) as raised:
        await in_workflow().run(telephony(settings, twilio_api).send_sms, page("+15550100099"))
    assert (raised.value.type, raised.value.non_retryable) == ("twilio:400", True)


@pytest.mark.parametrize(
    ("status", "headers", "delay"), [(429, {"Retry-After": "3"}, timedelta(seconds=3)), (503, {}, None)]
)
async def test_rate_limits_and_server_errors_are_retried(
    settings: Settings, twilio_api: FakeTwilio, status: int, headers: dict[str, str], delay: timedelta | None
):
    body = {"code": 20429, "message": "Too Many Requests", "status": status}
    twilio_api.fail("Messages.json", status, body, headers=headers)
    with pytest.raises(ApplicationError) as raised:
        await in_workflow().run(telephony(settings, twilio_api).send_sms, page())
    assert (raised.value.type, raised.value.non_retryable, raised.value.next_retry_delay) == (
        f"twilio:{status}",
        False,
        delay,
    )
    assert twilio_api.messages == []


async def test_a_slow_or_unreachable_twilio_is_retried(settings: Settings, twilio_api: FakeTwilio):
    activities = telephony(settings, twilio_api)
    twilio_api.delay = 2.0
    short = in_workflow()
    short.info = dataclasses.replace(short.info, start_to_close_timeout=timedelta(seconds=1))
    with pytest.raises(ApplicationError) as slow:
        await short.run(activities.place_call, page())
    await twilio_api.__aexit__()
    with pytest.raises(ApplicationError) as down:
        await in_workflow().run(activities.place_call, page())
    assert (slow.value.type, slow.value.non_retryable) == ("twilio:attempt_timeout", False)
    assert (down.value.type, down.value.non_retryable) == ("twilio:unreachable", False)


async def test_without_a_twilio_account_sms_and_calls_go_to_the_outbox(settings: Settings):
    activities = TelephonyActivities(settings, Outbox(settings.outbox_path), telephony_providers(settings))
    await in_workflow().run(activities.send_sms, page())
    await in_workflow().run(activities.place_call, page())
    assert [(e["system"], e["kind"]) for e in Outbox(settings.outbox_path).read()] == [
        ("twilio", "sms"),
        ("twilio", "voice"),
    ]
