"""Telegram Bot API: sendMessage, for reaching leadership out of business hours (seed 002).

The bot token is part of every request's URL, so it is kept out of everything that could carry a URL:
errors say "telegram answered 403: ..." without the address, and httpx's request log line has the
token replaced. sendMessage has no idempotency key and nothing lets a bot read back what it sent: a retry
after Telegram answered 429 or 400 is safe (nothing was sent), but a retry after a lost answer (the
worker killed while Telegram was answering) delivers the message twice. So one call sends a step's
message to each of its people in turn, and each chat Telegram accepted (or refused for good) goes into the
activity's heartbeat details at once: a retry skips them. The attempt ends before Temporal would retry it
(`within_attempt`), and begins no request it could not finish in time. What can still arrive twice is one
message accepted in the moment before the worker died: within the request's round trip and the worker's
heartbeat throttle (1 s, worker.py).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.http import (
    TIMEOUT,
    ack_link,
    attempt_deadline,
    failure,
    heartbeating,
    new_client,
    retry_after,
    send,
    within_attempt,
)
from activities.outbox import Outbox
from settings import Settings
from workflows.contracts.activity_io import AckFor, ChatDelivered, Settled, TelegramMessage
from workflows.contracts.vocabulary import Channel

MAX_TEXT = 4096  # Telegram's limit for one message
REQUEST_SECONDS = (TIMEOUT.connect or 0) + (TIMEOUT.read or 0)  # the longest one sendMessage can take


class _RedactToken(logging.Filter):
    """Replaces the bot token in log records, e.g. httpx's `HTTP Request: POST https://.../bot<token>/...`."""

    def __init__(self, token: str) -> None:
        super().__init__()
        self.token = token

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if self.token in message:
            record.msg, record.args = message.replace(self.token, "<redacted>"), None
        return True


class TelegramActivities:
    def __init__(self, settings: Settings, outbox: Outbox) -> None:
        self.settings = settings
        self.outbox = outbox
        self.client: httpx.AsyncClient | None = None
        self._token = ""
        if settings.telegram_bot_token is not None:
            self._token = settings.telegram_bot_token.get_secret_value()
            self.client = new_client(settings.telegram_api_url)
            logging.getLogger("httpx").addFilter(_RedactToken(self._token))

    @activity.defn
    async def send_telegram(self, message: TelegramMessage) -> ChatDelivered:
        """The message to each recipient's chat, each once. Telegram refusing one chat for good (not found,
        the bot blocked) is that person's failure, reported; a retryable error raises, and the retry goes on
        from the chats this attempt settled."""
        if self.client is None:
            return await self._to_outbox(message)
        progress = Settled.read(activity.info().heartbeat_details)
        try:
            async with heartbeating(progress.model_dump), within_attempt("telegram"):
                await self._send_each(message, progress)
        except ApplicationError as err:
            # If this attempt is the last, the workflow reads from its failure whom the message reached.
            raise ApplicationError(
                err.message,
                progress.model_dump(),
                type=err.type,
                non_retryable=err.non_retryable,
                next_retry_delay=err.next_retry_delay,
            ) from None
        return ChatDelivered(failures=dict(progress.refused), delivered_to="telegram")

    async def _send_each(self, message: TelegramMessage, progress: Settled) -> None:
        """Each chat not settled yet, in turn; each one settled goes into the heartbeat at once."""
        deadline, begun = attempt_deadline(), False
        for person, chat_id in message.recipients.items():
            if person in progress.sent or person in progress.refused:
                continue
            if begun and deadline is not None and asyncio.get_running_loop().time() + REQUEST_SECONDS > deadline:
                # a request cut off by the attempt's end may have been delivered: leave the rest to the retry
                raise ApplicationError("telegram: no time left in this attempt", type="telegram:attempt_timeout")
            begun = True
            try:
                await self._send(chat_id, message.text, message.acknowledge_for(person))
            except ApplicationError as err:
                if not err.non_retryable:
                    raise
                progress.refused[person] = err.message
            else:
                progress.sent.append(person)
            activity.heartbeat(progress.model_dump())  # a copy: the SDK encodes it later

    async def _send(self, chat_id: str, text: str, acknowledge: AckFor | None) -> None:
        assert self.client is not None
        # Plain text (no parse_mode): alert text cannot turn into Markdown or HTML.
        body: dict[str, object] = {"chat_id": chat_id, "text": text[:MAX_TEXT]}
        if acknowledge is not None:  # a page: a button that acknowledges as its person
            link = ack_link(self.settings, acknowledge, Channel.TELEGRAM)
            body["reply_markup"] = {"inline_keyboard": [[{"text": "Acknowledge", "url": link}]]}
        response = await send(
            self.client, "telegram", "POST", f"/bot{self._token}/sendMessage", secrets=[self._token], json=body
        )
        try:
            answer = response.json()
        except ValueError:
            answer = {}
        if not (response.is_success and answer.get("ok")):
            raise _classify(response.status_code, answer)

    async def _to_outbox(self, message: TelegramMessage) -> ChatDelivered:
        """No bot token: each recipient's message goes to the outbox, under its own key."""
        where = ""
        for person, chat_id in message.recipients.items():
            key = message.key_for(person)
            acknowledge = message.acknowledge_for(person)
            line: dict[str, Any] = {
                "chat_id": chat_id,
                "text": message.text,
                "idempotency_key": key,
                "acknowledge": acknowledge.model_dump() if acknowledge else None,
            }
            where = await self.outbox.deliver("telegram", "message", key, line)
        return ChatDelivered(delivered_to=where)


def _classify(status: int, answer: dict[str, object]) -> ApplicationError:
    """Telegram's error shape: {"ok": false, "error_code": 429, "description": ..., "parameters": {...}}."""
    code = answer.get("error_code")
    code = code if isinstance(code, int) else status
    parameters = answer.get("parameters")
    wait = retry_after(parameters.get("retry_after")) if isinstance(parameters, dict) else None
    description = str(answer.get("description", "no description"))
    if code == 429:
        return failure("telegram", 429, description, retry_after=wait or timedelta(seconds=1))
    return failure("telegram", code, description)
