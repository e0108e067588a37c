"""A fake Slack Web API: channels, members, messages with metadata, bookmarks, Slack's error shapes.

Errors are HTTP 200 with {"ok": false, "error": "..."}; rate limiting is HTTP 429 with Retry-After.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from pydantic import SecretStr

from settings import Settings
from tests.fakes.peer import FakePeer, params

TOKEN = "xoxb-test-token"
BOT_USER = "UBOT"
NAME = re.compile(r"^[a-z0-9_-]{1,80}$")


@dataclass
class Channel:
    id: str
    name: str
    is_im: bool = False
    is_archived: bool = False
    topic: str = ""
    purpose: str = ""
    members: set[str] = field(default_factory=lambda: {BOT_USER})
    messages: list[dict[str, Any]] = field(default_factory=list)  # oldest first
    bookmarks: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "is_channel": not self.is_im,
            "is_im": self.is_im,
            "is_archived": self.is_archived,
            "is_member": BOT_USER in self.members,
            "topic": {"value": self.topic, "creator": "", "last_set": 0},
            "purpose": {"value": self.purpose, "creator": "", "last_set": 0},
        }


class FakeSlack(FakePeer):
    def __init__(self, users: set[str] | None = None, page_size: int = 1000) -> None:
        super().__init__()
        self.users = users or {"U0ALICE", "U0BOB", "U0CAROL"}
        self.page_size = page_size  # Slack may return fewer than `limit`: paging must be followed
        self.channels: dict[str, Channel] = {}
        self.rate_limited_until = 0.0
        self.retry_after_seconds = 1
        self.holds: dict[str, float] = {}  # method -> seconds to hold the answer after acting, once
        self._ts = itertools.count(1)
        self.app.router.add_route("*", "/api/{method}", self._dispatch)

    def configure(self, settings: Settings) -> Settings:
        """These settings, with Slack pointed at this fake."""
        return settings.model_copy(update={"slack_bot_token": SecretStr(TOKEN), "slack_api_url": f"{self.url}/api/"})

    def add_channel(self, name: str, **fields: Any) -> Channel:
        channel = Channel(id=f"C{next(self._ids):08d}", name=name, **fields)
        self.channels[channel.id] = channel
        return channel

    def channel_named(self, name: str) -> Channel:
        return next(c for c in self.channels.values() if c.name == name)

    def rate_limit_for(self, seconds: float) -> None:
        self.rate_limited_until = time.monotonic() + seconds

    def hold_answer(self, method: str, seconds: float) -> None:
        """Act on the next `method` call, then wait this long before answering (the caller may give up)."""
        self.holds[method] = seconds

    async def _dispatch(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        if time.monotonic() < self.rate_limited_until:
            return web.json_response(
                {"ok": False, "error": "ratelimited"},
                status=429,
                headers={"Retry-After": str(self.retry_after_seconds)},
            )
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return _error("invalid_auth")
        handler = getattr(self, "_" + method.replace(".", "_"), None)
        if handler is None:
            return _error("unknown_method")
        answer: dict[str, Any] = handler(params(request))
        if method in self.holds:
            await asyncio.sleep(self.holds.pop(method))
        return web.json_response(answer)

    def _find(self, ref: str) -> Channel | None:
        if ref in self.channels:
            return self.channels[ref]
        return next((c for c in self.channels.values() if c.name == ref.removeprefix("#")), None)

    # --- methods, named after the Web API ---------------------------------------------------------

    def _conversations_create(self, p: dict[str, Any]) -> dict[str, Any]:
        name = p.get("name", "")
        if not NAME.match(name):
            return {"ok": False, "error": "invalid_name_specials"}
        if any(c.name == name for c in self.channels.values()):
            return {"ok": False, "error": "name_taken"}
        return {"ok": True, "channel": self.add_channel(name).summary()}

    def _conversations_list(self, p: dict[str, Any]) -> dict[str, Any]:
        channels = [
            c
            for c in self.channels.values()
            if not c.is_im and not (c.is_archived and _truthy(p.get("exclude_archived")))
        ]
        start = int(p.get("cursor") or 0)
        size = min(int(p.get("limit", 100)), self.page_size)
        page = channels[start : start + size]
        more = start + size < len(channels)
        return {
            "ok": True,
            "channels": [c.summary() for c in page],
            "response_metadata": {"next_cursor": str(start + size) if more else ""},
        }

    def _conversations_setTopic(self, p: dict[str, Any]) -> dict[str, Any]:
        channel = self._find(p.get("channel", ""))
        if channel is None:
            return {"ok": False, "error": "channel_not_found"}
        channel.topic = p["topic"]
        return {"ok": True, "channel": channel.summary()}

    def _conversations_setPurpose(self, p: dict[str, Any]) -> dict[str, Any]:
        channel = self._find(p.get("channel", ""))
        if channel is None:
            return {"ok": False, "error": "channel_not_found"}
        channel.purpose = p["purpose"]
        return {"ok": True, "channel": channel.summary()}

    def _conversations_invite(self, p: dict[str, Any]) -> dict[str, Any]:
        channel = self._find(p.get("channel", ""))
        if channel is None:
            return {"ok": False, "error": "channel_not_found"}
        if channel.is_archived:
            return {"ok": False, "error": "is_archived"}
        errors = []
        invited = 0
        for user in p.get("users", "").split(","):
            if user not in self.users:
                errors.append({"user": user, "ok": False, "error": "user_not_found"})
            elif user in channel.members:
                errors.append({"user": user, "ok": False, "error": "already_in_channel"})
            else:
                channel.members.add(user)
                invited += 1
        if errors and (not invited or not _truthy(p.get("force"))):
            return {"ok": False, "error": errors[0]["error"], "errors": errors}
        return {"ok": True, "channel": channel.summary(), **({"errors": errors} if errors else {})}

    def _bookmarks_list(self, p: dict[str, Any]) -> dict[str, Any]:
        channel = self._find(p.get("channel_id", ""))
        if channel is None:
            return {"ok": False, "error": "channel_not_found"}
        return {"ok": True, "bookmarks": channel.bookmarks}

    def _bookmarks_add(self, p: dict[str, Any]) -> dict[str, Any]:
        channel = self._find(p.get("channel_id", ""))
        if channel is None:
            return {"ok": False, "error": "channel_not_found"}
        bookmark = {
            "id": f"Bk{next(self._ids):08d}",
            "channel_id": channel.id,
            "title": p["title"],
            "type": p["type"],
            "link": p.get("link", ""),
        }
        channel.bookmarks.append(bookmark)
        return {"ok": True, "bookmark": bookmark}

    def _conversations_open(self, p: dict[str, Any]) -> dict[str, Any]:
        user = p.get("users", "")
        if user not in self.users:
            return {"ok": False, "error": "user_not_found"}
        channel = self._find(f"dm-{user}")
        if channel is None:
            channel = Channel(id=f"D{next(self._ids):08d}", name=f"dm-{user}", is_im=True, members={BOT_USER, user})
            self.channels[channel.id] = channel
        return {"ok": True, "channel": {"id": channel.id}}

    def _chat_postMessage(self, p: dict[str, Any]) -> dict[str, Any]:
        channel = self._find(p.get("channel", ""))
        if channel is None:
            return {"ok": False, "error": "channel_not_found"}
        if channel.is_archived:
            return {"ok": False, "error": "is_archived"}
        if BOT_USER not in channel.members:
            return {"ok": False, "error": "not_in_channel"}
        if not p.get("text") and not p.get("blocks"):
            return {"ok": False, "error": "no_text"}
        metadata = p.get("metadata")
        message = {
            "type": "message",
            "user": BOT_USER,
            "text": p.get("text", ""),
            "ts": f"{int(time.time())}.{next(self._ts):06d}",
        }
        if p.get("blocks"):
            message["blocks"] = p["blocks"] if isinstance(p["blocks"], list) else json.loads(p["blocks"])
        if metadata:
            message["metadata"] = metadata if isinstance(metadata, dict) else json.loads(metadata)
        channel.messages.append(message)
        return {"ok": True, "channel": channel.id, "ts": message["ts"], "message": message}

    def _chat_update(self, p: dict[str, Any]) -> dict[str, Any]:
        channel = self.channels.get(p.get("channel", ""))  # ids only, like Slack
        if channel is None:
            return {"ok": False, "error": "channel_not_found"}
        message = next((m for m in channel.messages if m["ts"] == p.get("ts")), None)
        if message is None:
            return {"ok": False, "error": "message_not_found"}
        message["text"] = p.get("text", "")
        return {"ok": True, "channel": channel.id, "ts": message["ts"], "text": message["text"]}

    def _conversations_history(self, p: dict[str, Any]) -> dict[str, Any]:
        channel = self.channels.get(p.get("channel", ""))  # ids only, like Slack
        if channel is None:
            return {"ok": False, "error": "channel_not_found"}
        limit = int(p.get("limit", 100))
        newest_first = list(reversed(channel.messages))[:limit]
        if not _truthy(p.get("include_all_metadata")):
            newest_first = [{k: v for k, v in m.items() if k != "metadata"} for m in newest_first]
        return {"ok": True, "messages": newest_first, "has_more": len(channel.messages) > limit}

    def _conversations_archive(self, p: dict[str, Any]) -> dict[str, Any]:
        channel = self.channels.get(p.get("channel", ""))
        if channel is None:
            return {"ok": False, "error": "channel_not_found"}
        if channel.is_archived:
            return {"ok": False, "error": "already_archived"}
        channel.is_archived = True
        return {"ok": True}


def _error(code: str) -> web.Response:
    return web.json_response({"ok": False, "error": code})


def _truthy(value: Any) -> bool:
    return value in (True, "1", "true", 1)
