"""ntfy's publish API against a fake server: the push, its action buttons, and how each failure is classified."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.outbox import Outbox
from activities.paging.ntfy import NtfyActivities
from settings import Settings
from tests.fakes.ntfy import FakeNtfy
from tests.integrations.helpers import attempt, direct_message
from workflows.contracts.activity_io import DirectMessage
from workflows.contracts.trust import links


def push(topic: str = "bob-pages") -> DirectMessage:
    return direct_message(topic, step="m0")


async def test_a_push_carries_acknowledge_and_open_buttons_that_act_as_its_person(settings: Settings, ntfy: FakeNtfy):
    configured = ntfy.configure(settings).model_copy(update={"public_url": "https://incidents.example"})
    result = await attempt().run(NtfyActivities(configured, Outbox(settings.outbox_path)).send_push, push())

    assert (result.delivered_to, result.reference) == ("ntfy", "m1")
    [sent] = ntfy.published
    assert (sent["topic"], sent["priority"]) == ("bob-pages", 5)
    acknowledge, open_ = sent["actions"]
    assert (acknowledge["action"], acknowledge["method"], open_["action"]) == ("http", "POST", "view")
    assert acknowledge["url"] == open_["url"] and acknowledge["url"].startswith("https://incidents.example/ack/")
    granted = links.read(links.link_key(settings.ack_link_key), acknowledge["url"].rsplit("/", 1)[1], datetime.now(UTC))
    assert (granted.incident_id, granted.person, granted.via) == ("INC-7F3K", "bob", "push")


async def test_a_topic_the_token_may_not_write_is_refused_for_good(settings: Settings, ntfy: FakeNtfy):
    with pytest.raises(ApplicationError) as raised:
        await attempt().run(
            NtfyActivities(ntfy.configure(settings), Outbox(settings.outbox_path)).send_push, push("someone-elses")
        )
    assert (raised.value.type, raised.value.non_retryable) == ("ntfy:403", True)


@pytest.mark.parametrize(
    ("status", "headers", "delay"), [(429, {"Retry-After": "7"}, timedelta(seconds=7)), (502, {}, None)]
)
async def test_rate_limits_and_server_errors_are_retried(
    settings: Settings, ntfy: FakeNtfy, status: int, headers: dict[str, str], delay: timedelta | None
):
    ntfy.fail("/", status, {"code": status * 100 + 1, "http": status, "error": "limit reached"}, headers=headers)
    with pytest.raises(ApplicationError) as raised:
        await attempt().run(NtfyActivities(ntfy.configure(settings), Outbox(settings.outbox_path)).send_push, push())
    assert (raised.value.type, raised.value.non_retryable, raised.value.next_retry_delay) == (
        f"ntfy:{status}",
        False,
        delay,
    )
    assert ntfy.published == []


async def test_an_unreachable_or_slow_server_is_retried_within_the_attempt(settings: Settings, ntfy: FakeNtfy):
    activities = NtfyActivities(ntfy.configure(settings), Outbox(settings.outbox_path))
    ntfy.delay = 2.0
    short = ActivityEnvironment()
    short.info = dataclasses.replace(short.info, start_to_close_timeout=timedelta(seconds=1))
    with pytest.raises(ApplicationError) as slow:
        await short.run(activities.send_push, push())
    await ntfy.__aexit__()
    with pytest.raises(ApplicationError) as down:
        await attempt().run(activities.send_push, push())
    assert (slow.value.type, slow.value.non_retryable) == ("ntfy:attempt_timeout", False)
    assert (down.value.type, down.value.non_retryable) == ("ntfy:unreachable", False)


async def test_without_ntfy_url_the_push_goes_to_the_outbox(settings: Settings):
    result = await attempt().run(NtfyActivities(settings, Outbox(settings.outbox_path)).send_push, push())
    assert result.delivered_to == "outbox"
    [line] = Outbox(settings.outbox_path).read()
    assert (line["system"], line["kind"], line["delivered"]) == ("ntfy", "push", False)
