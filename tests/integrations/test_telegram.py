"""Telegram sendMessage against a fake Bot API: the token is in the URL, never in errors or logs."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp import web
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.outbox import Outbox
from activities.telegram import TelegramActivities
from settings import Settings
from tests.fakes.telegram import TOKEN, FakeTelegram
from tests.integrations.helpers import attempt as any_attempt
from workflows.contracts.activity_io import TelegramMessage
from workflows.contracts.trust import links


def attempt(number: int = 1, seconds: float = 60) -> ActivityEnvironment:
    """An attempt as the workflow asks for one (TELEGRAM: a minute each)."""
    env = any_attempt(number)
    env.info = dataclasses.replace(env.info, start_to_close_timeout=timedelta(seconds=seconds))
    return env


def message(
    chat_id: str = "1001", text: str = "SEV1 INC-7F3K: checkout is failing", **recipients: str
) -> TelegramMessage:
    """To alice's chat (or `chat_id`), or to the `recipients` given (person id -> chat id)."""
    return TelegramMessage(recipients=recipients or {"alice": chat_id}, text=text, idempotency_key="INC-7F3K:tg")


async def test_send_message_delivers_plain_text(settings: Settings, telegram: FakeTelegram):
    activities = TelegramActivities(telegram.configure(settings), Outbox(settings.outbox_path))

    result = await attempt().run(activities.send_telegram, message(text="<b>not markup</b> *nor this*"))

    assert result.delivered_to == "telegram"
    assert [m["text"] for m in telegram.sent] == ["<b>not markup</b> *nor this*"]
    assert "parse_mode" not in telegram.calls("sendMessage")[0].params


async def test_429_is_retried_after_telegrams_retry_after(settings: Settings, telegram: FakeTelegram):
    activities = TelegramActivities(telegram.configure(settings), Outbox(settings.outbox_path))
    telegram.rate_limited_for = 1

    with pytest.raises(ApplicationError) as raised:
        await attempt().run(activities.send_telegram, message())

    assert (raised.value.type, raised.value.non_retryable) == ("telegram:429", False)
    assert raised.value.next_retry_delay == timedelta(seconds=1)
    assert telegram.sent == []


@pytest.mark.parametrize(("chat_id", "reason"), [("999", "chat not found"), ("1003", "bot was blocked")])
async def test_a_chat_refused_for_good_is_its_persons_failure_and_the_others_are_reached(
    settings: Settings, chat_id: str, reason: str
):
    async with FakeTelegram(chats={"1001", "1002", "1003"}, blocked={"1003"}) as telegram:
        activities = TelegramActivities(telegram.configure(settings), Outbox(settings.outbox_path))

        result = await attempt().run(activities.send_telegram, message(alice="1001", oleh=chat_id, alex="1002"))

    assert list(result.failures) == ["oleh"] and reason in result.failures["oleh"]
    assert sorted(m["chat"]["id"] for m in telegram.sent) == [1001, 1002]


async def test_a_retry_sends_only_to_the_chats_no_earlier_attempt_settled(settings: Settings, telegram: FakeTelegram):
    """Telegram takes no idempotency key: the heartbeat says who has their message, so a retry never sends it again."""
    activities = TelegramActivities(telegram.configure(settings), Outbox(settings.outbox_path))
    first = attempt()
    beats: list[object] = []
    first.on_heartbeat = beats.append  # what the worker records with Temporal
    telegram.rate_limit_after = 1  # alice's message goes through; oleh's meets a 429

    with pytest.raises(ApplicationError) as raised:
        await first.run(activities.send_telegram, message(alice="1001", oleh="1002"))
    assert raised.value.type == "telegram:429"
    assert beats[-1] == {"sent": ["alice"], "refused": {}}

    retry = attempt(2)
    retry.info = dataclasses.replace(retry.info, heartbeat_details=[beats[-1]])
    result = await retry.run(activities.send_telegram, message(alice="1001", oleh="1002"))

    assert result.failures == {}
    assert [m["chat"]["id"] for m in telegram.sent] == [1001, 1002], "alice once, then oleh"


async def test_token_never_appears_in_errors_or_logs(
    settings: Settings, telegram: FakeTelegram, caplog: pytest.LogCaptureFixture
):
    activities = TelegramActivities(telegram.configure(settings), Outbox(settings.outbox_path))
    caplog.set_level(logging.DEBUG)
    await attempt().run(activities.send_telegram, message())
    await telegram.__aexit__()  # Telegram goes away: the connection error must not carry the URL either

    with pytest.raises(ApplicationError) as raised:
        await attempt().run(activities.send_telegram, message())

    assert raised.value.type == "telegram:unreachable"
    assert TOKEN not in str(raised.value)
    assert "HTTP Request: POST" in caplog.text
    assert TOKEN not in caplog.text


async def test_unconfigured_telegram_writes_the_outbox_a_line_per_person(settings: Settings):
    activities = TelegramActivities(settings, Outbox(settings.outbox_path))
    page = message(oleh="1002", alex="1003").model_copy(update={"acknowledge_incident": "INC-7F3K"})

    result = await attempt().run(activities.send_telegram, page)

    assert result.delivered_to == "outbox"
    lines = [json.loads(line) for line in settings.outbox_path.read_text().splitlines()]
    assert [(line["system"], line["key"], line["payload"]["chat_id"]) for line in lines] == [
        ("telegram", "INC-7F3K:tg:oleh", "1002"),
        ("telegram", "INC-7F3K:tg:alex", "1003"),
    ]
    assert [line["payload"]["acknowledge"] for line in lines] == [
        {"incident_id": "INC-7F3K", "person": "oleh"},
        {"incident_id": "INC-7F3K", "person": "alex"},
    ]


async def test_a_chat_refused_in_an_earlier_attempt_is_not_tried_again_and_still_reported(
    settings: Settings, telegram: FakeTelegram
):
    activities = TelegramActivities(telegram.configure(settings), Outbox(settings.outbox_path))
    retry = attempt(2)
    earlier = {"sent": ["alice"], "refused": {"oleh": "telegram answered 403: Forbidden: bot was blocked by the user"}}
    retry.info = dataclasses.replace(retry.info, heartbeat_details=[earlier])

    result = await retry.run(activities.send_telegram, message(alice="1001", oleh="1003", alex="1002"))

    assert result.failures == earlier["refused"]
    assert [m["chat"]["id"] for m in telegram.sent] == [1002], "alex alone: alice had hers, oleh's chat refused"


async def test_no_chat_is_begun_that_the_attempt_could_not_finish(settings: Settings, telegram: FakeTelegram):
    """A request cut off by the attempt's end may have been delivered and would be sent again: leave it to the retry."""
    activities = TelegramActivities(telegram.configure(settings), Outbox(settings.outbox_path))
    short = attempt(seconds=10)  # less than one request may take (connect and read timeouts) after the first
    beats: list[object] = []
    short.on_heartbeat = beats.append

    with pytest.raises(ApplicationError) as raised:
        await short.run(activities.send_telegram, message(alice="1001", oleh="1002"))

    assert (raised.value.type, raised.value.non_retryable) == ("telegram:attempt_timeout", False)
    assert [m["chat"]["id"] for m in telegram.sent] == [1001]
    assert beats[-1] == {"sent": ["alice"], "refused": {}}


class SlowTelegram(FakeTelegram):
    """Sends the message, then holds its answer: the attempt that asked may be gone by then."""

    hold_seconds = 3.0

    async def _send_message(self, request: web.Request) -> web.Response:
        answer = await super()._send_message(request)
        await asyncio.sleep(self.hold_seconds)
        return answer


async def test_an_attempt_ends_before_temporal_would_retry_it(settings: Settings):
    """A retry must never overlap its attempt: Temporal retries after start_to_close without telling the worker."""
    async with SlowTelegram() as telegram:
        activities = TelegramActivities(telegram.configure(settings), Outbox(settings.outbox_path))
        env = attempt()
        env.info = dataclasses.replace(env.info, start_to_close_timeout=timedelta(seconds=1))
        started = time.monotonic()

        with pytest.raises(ApplicationError) as raised:
            await env.run(activities.send_telegram, message())
        took = time.monotonic() - started

    assert (raised.value.type, raised.value.non_retryable) == ("telegram:attempt_timeout", False)
    assert took < 1.0


async def test_a_page_carries_an_acknowledge_button_linking_as_its_person(settings: Settings, telegram: FakeTelegram):
    configured = telegram.configure(settings).model_copy(update={"public_url": "https://incidents.example"})
    request = message(oleh="1002").model_copy(update={"acknowledge_incident": "INC-7F3K"})
    await attempt().run(TelegramActivities(configured, Outbox(settings.outbox_path)).send_telegram, request)

    [[button]] = telegram.calls("sendMessage")[0].params["reply_markup"]["inline_keyboard"]
    assert button["text"] == "Acknowledge"
    token = button["url"].removeprefix("https://incidents.example/ack/")
    granted = links.read(links.link_key(settings.ack_link_key), token, datetime.now(UTC))
    assert (granted.incident_id, granted.person, granted.via_label()) == ("INC-7F3K", "oleh", "Telegram")
