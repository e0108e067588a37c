"""E-mail over SMTP (aiosmtplib): multipart text + HTML, one message per person when personal."""

from __future__ import annotations

from temporalio import activity

from activities.outbox import Outbox
from settings import Settings
from workflows.model import EmailRequest, EmailResult


class EmailActivities:
    def __init__(self, settings: Settings, outbox: Outbox) -> None:
        self.settings = settings
        self.outbox = outbox

    @activity.defn
    async def send_email(self, request: EmailRequest) -> EmailResult:
        where = await self.outbox.deliver("email", "email", request.idempotency_key, request.model_dump())
        return EmailResult(delivered_to=where)
