"""Push notifications through ntfy (self-hostable, https://docs.ntfy.sh/publish/): a JSON publish to the
server's root, to the person's topic, with two action buttons: Acknowledge (an HTTP POST to this service's
acknowledge link, as that person) and Open (the same link in a browser: the incident and its Acknowledge button).

ntfy has no idempotency key: a retry after a lost answer may push twice, so the attempt ends before Temporal
would retry it (`within_attempt`), as for Telegram. A refusal (a topic the token may not write, 4xx) is final
and the person's notification rules move on at once; 429 and 5xx are retried after the server's Retry-After.
"""

from __future__ import annotations

from typing import Any

import httpx
from temporalio import activity

from activities.http import ack_link, check, new_client, send, within_attempt
from activities.outbox import Outbox
from settings import Settings
from workflows.contracts.activity_io import DirectMessage, DirectResult
from workflows.contracts.vocabulary import Channel


class NtfyActivities:
    def __init__(self, settings: Settings, outbox: Outbox) -> None:
        self.settings = settings
        self.outbox = outbox
        self.client: httpx.AsyncClient | None = None
        if settings.ntfy_url:
            token = settings.ntfy_token.get_secret_value() if settings.ntfy_token else ""
            self.client = new_client(settings.ntfy_url, {"Authorization": f"Bearer {token}"} if token else None)

    @activity.defn
    async def send_push(self, message: DirectMessage) -> DirectResult:
        link = ack_link(self.settings, message, Channel.PUSH)
        body: dict[str, Any] = {
            "topic": message.address,
            "title": message.title[:250],
            "message": message.text[:4000],
            "priority": 5 if message.urgent else 3,
            "tags": ["rotating_light" if message.urgent else "warning"],
            "actions": [
                {"action": "http", "label": "Acknowledge", "url": link, "method": "POST", "clear": True},
                {"action": "view", "label": "Open", "url": link},
            ],
        }
        if self.client is None:
            where = await self.outbox.deliver("ntfy", "push", message.idempotency_key, body)
            return DirectResult(delivered_to=where)
        async with within_attempt("ntfy"):
            response = await send(self.client, "ntfy", "POST", "/", json=body)
        check(response, "ntfy")
        answer = response.json() if response.content else {}
        return DirectResult(reference=str(answer.get("id", "")), delivered_to="ntfy")
