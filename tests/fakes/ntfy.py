"""A fake ntfy server: JSON publishing to the root (https://docs.ntfy.sh/publish/#publish-as-json), with ntfy's
{"code", "http", "error"} answers for a token that may not write a topic."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web
from pydantic import SecretStr

from settings import Settings
from tests.fakes.peer import FakePeer, params

TOKEN = "tk_testtokenntfy"


class FakeNtfy(FakePeer):
    def __init__(self, forbidden: set[str] | None = None) -> None:
        super().__init__()
        self.forbidden = forbidden or set()  # topics the token may not publish to
        self.published: list[dict[str, Any]] = []
        self.app.router.add_post("/", self._publish)

    def configure(self, settings: Settings) -> Settings:
        return settings.model_copy(update={"ntfy_url": self.url, "ntfy_token": SecretStr(TOKEN)})

    async def _publish(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return _error(401, 40101, "unauthorized")
        body = params(request)
        topic = str(body.get("topic", ""))
        if not topic:
            return _error(400, 40009, "invalid request: topic invalid")
        if topic in self.forbidden:
            return _error(403, 40301, "forbidden")
        message = {"id": f"m{next(self._ids)}", "time": int(time.time()), "event": "message"} | body
        self.published.append(message)
        return web.json_response({k: message[k] for k in ("id", "time", "event", "topic", "message")})


def _error(status: int, code: int, error: str) -> web.Response:
    return web.json_response(
        {"code": code, "http": status, "error": error, "link": "https://ntfy.sh/docs/"}, status=status
    )
