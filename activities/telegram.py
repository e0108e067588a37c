"""Telegram Bot API: sendMessage, for reaching leadership out of business hours (seed 002).

The bot token is part of every request's URL, so it is kept out of everything that could carry a URL:
errors say "telegram answered 403: ..." without the address, and httpx's request log line has the
token replaced. sendMessage has no idempotency key and nothing lets a bot read back what it sent: a retry
after Telegram answered 429 or 400 is safe (nothing was sent), but a retry after a lost answer (the
worker killed while Telegram was answering) delivers the message twice. So each message is one request
for one chat, the activity answers as soon as Telegram has, and the attempt ends before Temporal would
retry it (`within_attempt`): the window is the request's own round trip.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.http import ack_link, failure, new_client, retry_after, send, within_attempt
from activities.outbox import Outbox
from settings import Settings
from workflows.contracts.activity_io import DeliveryResult, TelegramRequest
from workflows.contracts.vocabulary import Channel

MAX_TEXT = 4096  # Telegram's limit for one message


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
    async def send_telegram(self, request: TelegramRequest) -> DeliveryResult:
        if self.client is None:
            where = await self.outbox.deliver("telegram", "message", request.idempotency_key, request.model_dump())
            return DeliveryResult(delivered_to=where)
        # Plain text (no parse_mode): alert text cannot turn into Markdown or HTML.
        body: dict[str, object] = {"chat_id": request.chat_id, "text": request.text[:MAX_TEXT]}
        if request.acknowledge is not None:  # a page: a button that acknowledges as its person
            link = ack_link(self.settings, request.acknowledge, Channel.TELEGRAM)
            body["reply_markup"] = {"inline_keyboard": [[{"text": "Acknowledge", "url": link}]]}
        async with within_attempt("telegram"):
            response = await send(
                self.client,
                "telegram",
                "POST",
                f"/bot{self._token}/sendMessage",
                secrets=[self._token],
                json=body,
            )
        try:
            answer = response.json()
        except ValueError:
            answer = {}
        if response.is_success and answer.get("ok"):
            return DeliveryResult(delivered_to="telegram")
        raise _classify(response.status_code, answer)


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
