"""Telegram Bot API: sendMessage, for reaching leadership out of business hours (seed 002)."""

from __future__ import annotations

from temporalio import activity

from activities.outbox import Outbox
from settings import Settings
from workflows.model import DeliveryResult, TelegramRequest


class TelegramActivities:
    def __init__(self, settings: Settings, outbox: Outbox) -> None:
        self.settings = settings
        self.outbox = outbox

    @activity.defn
    async def send_telegram(self, request: TelegramRequest) -> DeliveryResult:
        where = await self.outbox.deliver("telegram", "message", request.idempotency_key, request.model_dump())
        return DeliveryResult(delivered_to=where)
