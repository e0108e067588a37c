"""A fake Telegram Bot API: sendMessage with Telegram's {"ok": ..., "error_code": ...} answers."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web
from pydantic import SecretStr

from settings import Settings
from tests.fakes.peer import FakePeer, params

TOKEN = "123456:AAE-test-token-secret"


class FakeTelegram(FakePeer):
    def __init__(self, chats: set[str] | None = None, blocked: set[str] | None = None) -> None:
        super().__init__()
        self.chats = chats or {"1001", "1002"}
        self.blocked = blocked or set()
        self.sent: list[dict[str, Any]] = []
        self.rate_limited_for = 0  # the next sendMessage answers 429 with this retry_after, once
        self.rate_limit_after: int | None = None  # once this many messages are sent, the next answers 429, once
        self.rate_limited_chats: set[str] = set()  # these chats' messages answer 429 (retry after 30 s), always
        self.app.router.add_post("/bot{token}/sendMessage", self._send_message)

    def configure(self, settings: Settings) -> Settings:
        return settings.model_copy(update={"telegram_bot_token": SecretStr(TOKEN), "telegram_api_url": self.url})

    async def _send_message(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != TOKEN:
            return _error(401, "Unauthorized")
        if self.rate_limit_after is not None and len(self.sent) >= self.rate_limit_after:
            self.rate_limit_after, self.rate_limited_for = None, 1
        if self.rate_limited_for:
            wait, self.rate_limited_for = self.rate_limited_for, 0
            return _error(429, f"Too Many Requests: retry after {wait}", parameters={"retry_after": wait})
        body = params(request)
        chat_id, text = str(body.get("chat_id", "")), body.get("text", "")
        if chat_id in self.rate_limited_chats:
            return _error(429, "Too Many Requests: retry after 30", parameters={"retry_after": 30})
        if not text:
            return _error(400, "Bad Request: message text is empty")
        if chat_id in self.blocked:
            return _error(403, "Forbidden: bot was blocked by the user")
        if chat_id not in self.chats:
            return _error(400, "Bad Request: chat not found")
        message = {
            "message_id": next(self._ids),
            "date": int(time.time()),
            "chat": {"id": int(chat_id), "type": "private"},
            "text": text,
        }
        self.sent.append(message)
        return web.json_response({"ok": True, "result": message})


def _error(code: int, description: str, **extra: Any) -> web.Response:
    body = {"ok": False, "error_code": code, "description": description, **extra}
    return web.json_response(body, status=code)
