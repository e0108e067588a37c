"""A fake Microsoft Teams: the Entra ID token endpoint (client credentials), the Graph calls the adapter makes
(a team's channels, their members, tabs and messages; chats' messages; archive), the Bot Framework connector
(conversations and activities), and the Bot Framework's OpenID metadata and keys, whose private half signs the
requests this fake sends to a bot, as Teams would.

Errors are Graph's shape, {"error": {"code", "message"}}; throttling is 429 with Retry-After.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import jwt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from pydantic import SecretStr

from settings import Settings
from tests.fakes.peer import FakePeer, params

TENANT = "00000000-0000-0000-0000-00000000aaaa"
TEAM = "team-incidents"
APP_ID = "11111111-2222-3333-4444-555555555555"
SECRET = "teams-app-secret"
ISSUER = "https://api.botframework.com"
KID = "fake-teams-key"
CARD = "application/vnd.microsoft.card.adaptive"


@dataclass
class Message:
    id: str
    attachments: list[dict[str, Any]]  # as Graph lists them: each card's content a JSON string
    text: str = ""

    def cards(self) -> list[dict[str, Any]]:
        return [json.loads(a["content"]) for a in self.attachments if a.get("contentType") == CARD]

    def shown(self) -> str:
        """What a person reads: the card's text blocks, or the plain text."""
        blocks = [b.get("text", "") for c in self.cards() for b in c.get("body", []) if b.get("type") == "TextBlock"]
        return "\n".join(blocks) or self.text

    def buttons(self) -> list[dict[str, Any]]:
        """The cards' Action.Execute buttons, as a person sees them."""
        return [a for c in self.cards() for a in c.get("actions", []) if a.get("type") == "Action.Execute"]

    def key(self) -> str:
        return next((b["id"][4:] for c in self.cards() for b in c.get("body", []) if b.get("id", "")[:4] == "key:"), "")


@dataclass
class Channel:
    id: str
    name: str
    description: str = ""
    membership: str = "standard"
    archived: bool = False
    members: set[str] = field(default_factory=set)
    tabs: list[dict[str, Any]] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "displayName": self.name,
            "description": self.description,
            "membershipType": self.membership,
            "isArchived": self.archived,
        }


class FakeTeams(FakePeer):
    def __init__(self, users: set[str] | None = None, page_size: int = 100) -> None:
        super().__init__()
        self.users = users or {"aad-alice", "aad-bob", "aad-carol", "aad-dave"}
        self.page_size = page_size
        self.channels: dict[str, Channel] = {}
        self.chats: dict[str, list[Message]] = {}  # 1:1 chat id -> messages, oldest first
        self.replies: list[dict[str, Any]] = []  # what the bot answered people in their conversations
        self.throttled_until = 0.0
        self.retry_after_seconds = 1
        self._tokens: dict[str, str] = {}  # token -> scope
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        r = self.app.router
        r.add_post(f"/login/{TENANT}/oauth2/v2.0/token", self._token)
        r.add_route("*", "/graph/v1.0/{path:.*}", self._graph)
        r.add_route("*", "/bot/v3/{path:.*}", self._bot)
        r.add_get("/openid", self._openid)
        r.add_get("/keys", self._keys)

    def configure(self, settings: Settings) -> Settings:
        """These settings, with Teams pointed at this fake."""
        return settings.model_copy(
            update={
                "teams_app_id": APP_ID,
                "teams_app_password": SecretStr(SECRET),
                "teams_tenant_id": TENANT,
                "teams_team_id": TEAM,
                "teams_login_url": f"{self.url}/login",
                "teams_graph_url": f"{self.url}/graph/v1.0",
                "teams_service_url": f"{self.url}/bot/",
                "teams_openid_url": f"{self.url}/openid",
            }
        )

    def throttle_for(self, seconds: float) -> None:
        self.throttled_until = time.monotonic() + seconds

    def channel_named(self, name: str) -> Channel:
        return next(c for c in self.channels.values() if c.name == name)

    def dms(self, user: str) -> list[Message]:
        return self.chats.get(_chat_id(user), [])

    # --- what Teams sends a bot ---------------------------------------------------------------------

    def token_for(self, *, audience: str = APP_ID, expires_in: int = 300, key: Any = None, kid: str = KID) -> str:
        """A Bot Framework token as the connector signs it (another `key` or `kid`: a forgery)."""
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "aud": audience,
            "iat": now,
            "nbf": now - 5,
            "exp": now + expires_in,
            "serviceUrl": f"{self.url}/bot/",
        }
        return jwt.encode(claims, key or self.key, algorithm="RS256", headers={"kid": kid})

    def activity(
        self, user: str, *, text: str = "", value: Any = None, invoke: str = "", **extra: Any
    ) -> dict[str, Any]:
        """An activity from `user` (an Entra ID object id): a message, a card's Action.Submit (`value`), or an
        invoke (`invoke` names it, `value` its payload)."""
        n = next(self._ids)
        activity: dict[str, Any] = {
            "type": "invoke" if invoke else "message",
            "id": f"activity-{n}",
            "timestamp": "2026-01-01T00:00:00Z",
            "serviceUrl": f"{self.url}/bot/",
            "channelId": "msteams",
            "from": {"id": f"29:{user}", "name": user, "aadObjectId": user},
            "conversation": {"id": f"19:general@thread.tacv2;messageid={n}", "conversationType": "channel"},
            "recipient": {"id": f"28:{APP_ID}", "name": "incidents"},
            "channelData": {"tenant": {"id": TENANT}},
            **extra,
        }
        if text:
            activity["text"] = text
        if invoke:
            activity["name"] = invoke
        if value is not None:
            activity["value"] = value
        return activity

    # --- the token endpoint, the keys ----------------------------------------------------------------

    async def _token(self, request: web.Request) -> web.Response:
        p = params(request)
        if p.get("client_id") != APP_ID or p.get("client_secret") != SECRET:
            return _error(401, "invalid_client", "AADSTS7000215: Invalid client secret provided.")
        token = f"token-{next(self._ids)}"
        self._tokens[token] = str(p.get("scope", ""))
        return web.json_response({"token_type": "Bearer", "expires_in": 3599, "access_token": token})

    async def _openid(self, _: web.Request) -> web.Response:
        return web.json_response(
            {
                "issuer": ISSUER,
                "jwks_uri": f"{self.url}/keys",
                "id_token_signing_alg_values_supported": ["RS256"],
                "token_endpoint_auth_methods_supported": ["private_key_jwt"],
            }
        )

    async def _keys(self, _: web.Request) -> web.Response:
        public = json.loads(RSAAlgorithm.to_jwk(self.key.public_key()))
        return web.json_response({"keys": [public | {"kid": KID, "use": "sig", "endorsements": ["msteams"]}]})

    def _refused(self, request: web.Request, scope: str) -> web.Response | None:
        if time.monotonic() < self.throttled_until:
            return _error(429, "TooManyRequests", "throttled", {"Retry-After": str(self.retry_after_seconds)})
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if self._tokens.get(token) != scope:
            return _error(401, "InvalidAuthenticationToken", "Access token is empty or invalid.")
        return None

    # --- Graph --------------------------------------------------------------------------------------

    async def _graph(self, request: web.Request) -> web.Response:
        refused = self._refused(request, "https://graph.microsoft.com/.default")
        if refused is not None:
            return refused
        parts, p, verb = request.match_info["path"].split("/"), params(request), request.method
        if parts[0] == "chats" and len(parts) == 3:
            return _page([_listed(m) for m in reversed(self.chats.get(parts[1], []))], 0, 50)
        if parts[:3] != ["teams", TEAM, "channels"]:
            return _error(404, "NotFound", "no such team")
        if len(parts) == 3:
            if verb == "GET":
                start = int(request.query.get("$skiptoken", 0))
                listed = [c.summary() for c in self.channels.values()]
                return _page(listed, start, self.page_size, f"{self.url}/graph/v1.0/teams/{TEAM}/channels")
            return self._create_channel(p)
        channel = self.channels.get(parts[3])
        if channel is None:
            return _error(404, "NotFound", "Channel not found")
        what = parts[4] if len(parts) > 4 else ""
        if what == "members":
            if verb == "GET":
                return _page([{"userId": u} for u in sorted(channel.members)], 0, 1000)
            user = _bound_user(p)
            if user not in self.users:
                return _error(404, "NotFound", f"user {user} not found")
            if user in channel.members:
                return _error(409, "Conflict", "already a member")
            channel.members.add(user)
            return web.json_response({"userId": user}, status=201)
        if what == "tabs":
            if verb == "GET":
                return _page(channel.tabs, 0, 1000)
            tab = {"id": f"tab-{next(self._ids)}", "displayName": p["displayName"], "configuration": p["configuration"]}
            channel.tabs.append(tab)
            return web.json_response(tab, status=201)
        if what == "messages":
            top = int(request.query.get("$top", 20))
            return _page([_listed(m) for m in reversed(channel.messages)], 0, top)
        if what == "archive":
            if channel.archived:
                return _error(409, "Conflict", "already archived")
            channel.archived = True
            return web.Response(status=202)
        return _error(404, "NotFound", "unknown resource")

    def _create_channel(self, p: dict[str, Any]) -> web.Response:
        name = str(p.get("displayName", ""))
        if not name or len(name) > 50 or any(c in name for c in "~#%&*{}+/\\:<>?|'\","):
            return _error(400, "BadRequest", f"invalid channel name {name!r}")
        if any(c.name == name for c in self.channels.values()):
            return _error(409, "NameAlreadyExists", "Channel name already existed, please use other name.")
        owners = {_bound_user(m) for m in p.get("members", [])}
        if p.get("membershipType") == "private" and not owners:
            return _error(400, "BadRequest", "a private channel needs an owner")
        channel = Channel(
            id=f"19:{next(self._ids):06d}@thread.tacv2",
            name=name,
            description=str(p.get("description", "")),
            membership=str(p.get("membershipType", "standard")),
            members=owners,
        )
        self.channels[channel.id] = channel
        return web.json_response(channel.summary(), status=201)

    # --- the Bot Framework connector ----------------------------------------------------------------

    async def _bot(self, request: web.Request) -> web.Response:
        refused = self._refused(request, "https://api.botframework.com/.default")
        if refused is not None:
            return refused
        parts, p = request.match_info["path"].split("/"), params(request)
        if parts == ["conversations"] and request.method == "POST":
            if p.get("isGroup"):
                channel = self.channels.get(str(p.get("channelData", {}).get("channel", {}).get("id", "")))
                if channel is None or channel.archived:
                    return _error(404, "ConversationNotFound", "Conversation not found.")
                message = self._message(p.get("activity", {}))
                channel.messages.append(message)
                return web.json_response(
                    {"id": f"{channel.id};messageid={message.id}", "activityId": message.id}, status=201
                )
            user = str((p.get("members") or [{}])[0].get("id", ""))
            if user not in self.users:
                return _error(403, "Forbidden", "The bot is not part of the conversation roster.")
            self.chats.setdefault(_chat_id(user), [])
            return web.json_response({"id": _chat_id(user)}, status=201)
        if parts[0] == "conversations" and len(parts) >= 3 and parts[2] == "activities":
            conversation = parts[1]
            if request.method == "PUT":
                channel_id, _, message_id = conversation.partition(";messageid=")
                channel = self.channels.get(channel_id)
                found = next((m for m in channel.messages if m.id == message_id), None) if channel else None
                if found is None:
                    return _error(404, "ActivityNotFound", "Activity not found.")
                found.attachments = self._message(p).attachments
                return web.json_response({"id": message_id})
            if conversation in self.chats:
                message = self._message(p)
                self.chats[conversation].append(message)
                return web.json_response({"id": message.id}, status=201)
            self.replies.append({"conversation": conversation, "reply_to": parts[3] if len(parts) > 3 else ""} | p)
            return web.json_response({"id": f"reply-{len(self.replies)}"}, status=201)
        return _error(404, "NotFound", "unknown connector call")

    def _message(self, activity: dict[str, Any]) -> Message:
        attachments = [
            {
                "id": f"att-{next(self._ids)}",
                "contentType": a.get("contentType"),
                "content": json.dumps(a.get("content")),
            }
            for a in activity.get("attachments", [])
        ]
        return Message(
            id=f"{int(time.time() * 1000)}{next(self._ids):04d}", attachments=attachments, text=activity.get("text", "")
        )


def _chat_id(user: str) -> str:
    return f"19:{user}_{APP_ID}@unq.gbl.spaces"


def _bound_user(member: dict[str, Any]) -> str:
    bound = str(member.get("user@odata.bind", ""))
    return bound.partition("users('")[2].rstrip("')")


def _listed(m: Message) -> dict[str, Any]:
    return {
        "id": m.id,
        "messageType": "message",
        "body": {"contentType": "html", "content": m.text},
        "attachments": m.attachments,
    }


def _page(items: list[dict[str, Any]], start: int, size: int, link: str = "") -> web.Response:
    page: dict[str, Any] = {"value": items[start : start + size]}
    if link and start + size < len(items):
        page["@odata.nextLink"] = f"{link}?$skiptoken={start + size}"
    return web.json_response(page)


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status, headers=headers)
