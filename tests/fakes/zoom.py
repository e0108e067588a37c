"""A fake Zoom: Server-to-Server OAuth tokens and meeting creation."""

from __future__ import annotations

import base64
import itertools
from typing import Any

from aiohttp import web
from pydantic import SecretStr

from settings import Settings
from tests.fakes.peer import FakePeer, params

ACCOUNT_ID = "acct-test"
CLIENT_ID = "client-test"
CLIENT_SECRET = "zoom-client-secret"


class FakeZoom(FakePeer):
    def __init__(self) -> None:
        super().__init__()
        self.meetings: list[dict[str, Any]] = []
        self.tokens: set[str] = set()
        self._ids = itertools.count(81234567890)
        self.app.router.add_post("/oauth/token", self._token)
        self.app.router.add_post("/v2/users/me/meetings", self._create_meeting)

    def configure(self, settings: Settings) -> Settings:
        return settings.model_copy(
            update={
                "zoom_account_id": ACCOUNT_ID,
                "zoom_client_id": CLIENT_ID,
                "zoom_client_secret": SecretStr(CLIENT_SECRET),
                "zoom_api_url": f"{self.url}/v2",
                "zoom_oauth_url": f"{self.url}/oauth/token",
            }
        )

    async def _token(self, request: web.Request) -> web.Response:
        expected = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        if request.headers.get("Authorization") != expected:
            return web.json_response(
                {"reason": "Invalid client_id or client_secret", "error": "invalid_client"}, status=400
            )
        query = request.query
        if query.get("grant_type") != "account_credentials" or query.get("account_id") != ACCOUNT_ID:
            return web.json_response({"reason": "Invalid request", "error": "invalid_request"}, status=400)
        token = f"zoom-token-{len(self.tokens) + 1}"
        self.tokens.add(token)
        return web.json_response(
            {"access_token": token, "token_type": "bearer", "expires_in": 3599, "scope": "meeting:write:meeting:admin"}
        )

    async def _create_meeting(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization", "").removeprefix("Bearer ") not in self.tokens:
            return web.json_response({"code": 124, "message": "Invalid access token."}, status=401)
        body = params(request)
        meeting_id = next(self._ids)
        meeting = {
            "id": meeting_id,
            "topic": body.get("topic", ""),
            "type": body.get("type", 2),
            "join_url": f"{self.url}/j/{meeting_id}",
            "start_url": f"{self.url}/s/{meeting_id}",
        }
        self.meetings.append(meeting)
        return web.json_response(meeting, status=201)
