"""Microsoft Teams: the incident channel (Microsoft Graph), posts and direct messages (the bot, through the
Bot Framework connector), archiving.

With the app registration set (TEAMS_APP_ID, TEAMS_APP_PASSWORD, TEAMS_TENANT_ID, TEAMS_TEAM_ID) these are the
REST APIs through httpx, each with a client-credentials token; without it, the outbox. Everything is found
before it is made, so an activity killed after Teams accepted a call does not make it twice: the channel by
its name (which carries the incident id), a post by its key (every post is an Adaptive Card whose first
block's id is `key:<idempotency key>`), a tab by its link.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import Collection
from datetime import timedelta
from typing import Any

import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.chat import to_each, to_outbox, unless_refused
from activities.chat.slack import channel_name
from activities.http import attempt_deadline, check, failure, new_client, retry_after, send, within_attempt
from activities.outbox import Outbox
from settings import Settings
from workflows.contracts.activity_io import (
    ChatArchive,
    ChatButton,
    ChatChannel,
    ChatChannelRequest,
    ChatDelivered,
    ChatDirectMessage,
    ChatPost,
    ChatResult,
)

log = logging.getLogger(__name__)

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
BOT_SCOPE = "https://api.botframework.com/.default"
CARD = "application/vnd.microsoft.card.adaptive"
NAME_LENGTH = 50  # Teams' limit for a channel's displayName
MESSAGES_SEARCHED = 50  # recent messages searched for an earlier attempt's post: posts retry within minutes
MAX_WAIT = timedelta(seconds=30)  # a longer Retry-After frees the worker and lets Temporal wait
TOKEN_MARGIN = 300  # seconds before a token's expiry it is renewed
WEB_TAB_APP = "com.microsoft.teamspace.tab.web"
GRAPH_V1 = "https://graph.microsoft.com/v1.0"  # what Graph's @odata.bind references name, wherever it is reached


def key_marker(key: str) -> str:
    return f"key:{key}"


def card(text: str, key: str, mentions: Collection[str] = (), buttons: Collection[ChatButton] = ()) -> dict[str, Any]:
    """An Adaptive Card with the text (data, never markup: escaped) and the post's key as its first block's id.

    A mentioned person is `<at>id</at>` with its entity, as Teams wants for a mention in a card. A button is an
    Action.Execute, as the Teams endpoint reads a click: `verb` the decision's name, `data` its fields."""
    tags = " ".join(f"<at>{user}</at>" for user in mentions)
    body = f"{tags} {escape(text)}" if tags else escape(text)
    return {
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "version": "1.5",
        "body": [{"type": "TextBlock", "id": key_marker(key), "text": body, "wrap": True}],
        "actions": [
            {"type": "Action.Execute", "title": b.label, "verb": b.decision, "data": b.fields} for b in buttons
        ],
        "msteams": {
            "entities": [
                {"type": "mention", "text": f"<at>{user}</at>", "mentioned": {"id": user, "name": user}}
                for user in mentions
            ]
        },
    }


def escape(text: str) -> str:
    """Alert text is data: no link, mention or emphasis in a card's markdown comes from it."""
    for char in "\\[]()*_<>#`":
        text = text.replace(char, "\\" + char)
    return text


def message_activity(
    text: str, key: str, mentions: Collection[str] = (), buttons: Collection[ChatButton] = ()
) -> dict[str, Any]:
    return {"type": "message", "attachments": [{"contentType": CARD, "content": card(text, key, mentions, buttons)}]}


def carries(message: dict[str, Any], key: str) -> bool:
    """Does a message (as Graph lists it) carry this key? Its cards' content is a JSON string."""
    marker = json.dumps(key_marker(key))
    return any(marker in str(a.get("content") or "") for a in message.get("attachments") or [])


class TeamsActivities:
    def __init__(self, settings: Settings, outbox: Outbox) -> None:
        self.settings, self.outbox = settings, outbox
        self.http: httpx.AsyncClient | None = None
        s = settings
        if s.teams_app_id and s.teams_app_password and s.teams_tenant_id and s.teams_team_id:
            self.http = new_client("")
        self._tokens: dict[str, tuple[str, float]] = {}  # scope -> (token, when it must be renewed)

    # --- the activities ---------------------------------------------------------------------------

    @activity.defn
    async def teams_ensure_channel(self, request: ChatChannelRequest) -> ChatChannel:
        name = channel_name(request.incident_id, request.title, request.channel_prefix)[:NAME_LENGTH].rstrip("-")
        if self.http is None:
            digest = hashlib.sha256(request.model_dump_json().encode()).hexdigest()[:12]
            payload = request.model_dump() | {"name": name}
            where = await self.outbox.deliver("teams", "channel", f"channel:{name}:{digest}", payload)
            if request.first_post is not None:
                await self._post_to_outbox(request.first_post.to(f"#{name}"))
            return ChatChannel(channel_id=f"#{name}", name=name, delivered_to=where)
        async with within_attempt("teams"):
            channel = await self._create_or_reuse(name, request)
            await self._add_members(channel["id"], request.invite_user_ids)
            await self._add_tabs(channel["id"], request.bookmarks)
            refused = ""
            if request.first_post is not None:  # looked for first: the channel may be one an earlier call greeted
                refused = await unless_refused(self._post(request.first_post.to(channel["id"]), look_first=True))
        return ChatChannel(
            channel_id=channel["id"], name=channel["displayName"], delivered_to="teams", first_post_failure=refused
        )

    @activity.defn
    async def teams_post(self, post: ChatPost) -> ChatResult:
        """Post to a channel once, as the bot; `revises`: the post under the key gets this text."""
        if self.http is None:
            return ChatResult(channel=post.channel, delivered_to=await self._post_to_outbox(post))
        async with within_attempt("teams"):
            found = await self._post(post)
        return ChatResult(channel=post.channel, ts=found, delivered_to="teams")

    async def _post(self, post: ChatPost, look_first: bool = False) -> str:
        """The post made once (or, `revises`, the one under its key given this text); its message id. Looked for
        first on a retried attempt, or when `look_first`."""
        key = post.idempotency_key
        posted = message_activity(post.text, key, post.mention_user_ids, post.buttons)
        found = None
        if post.revises or look_first or activity.info().attempt > 1:
            found = await self._find(f"{self._team()}/channels/{post.channel}/messages", key)
        if found is not None and post.revises:
            conversation = f"{post.channel};messageid={found}"
            await self._call("bot", "PUT", f"v3/conversations/{conversation}/activities/{found}", json=posted)
        elif found is None:
            started = await self._call(
                "bot",
                "POST",
                "v3/conversations",
                json={
                    "isGroup": True,
                    "bot": {"id": f"28:{self.settings.teams_app_id}"},
                    "channelData": {
                        "channel": {"id": post.channel},
                        "tenant": {"id": self.settings.teams_tenant_id},
                    },
                    "activity": posted,
                },
            )
            found = str(started.get("activityId", ""))
        return found

    async def _post_to_outbox(self, post: ChatPost) -> str:
        key = f"{post.idempotency_key}:revised" if post.revises else post.idempotency_key
        return await self.outbox.deliver("teams", "post", key, post.model_dump())

    @activity.defn
    async def teams_direct_message(self, message: ChatDirectMessage) -> ChatDelivered:
        """A 1:1 chat with each recipient (by Entra ID object id), the text as a card, each once. Teams refusing a
        person for good is that person's failure, reported; a retryable error raises, and the retry finds the
        messages this attempt already sent."""
        if self.http is None:
            return await to_outbox("teams", self.outbox, message)
        async with within_attempt("teams"):
            return await to_each(
                "teams",
                message,
                lambda person, user_id: self._direct_message(user_id, message, message.key_for(person)),
            )

    @activity.defn
    async def teams_archive_channel(self, request: ChatArchive) -> ChatResult:
        if self.http is None:
            where = await self.outbox.deliver("teams", "archive", f"archive:{request.channel}", request.model_dump())
            return ChatResult(channel=request.channel, delivered_to=where)
        async with within_attempt("teams"):
            await self._call("graph", "POST", f"{self._team()}/channels/{request.channel}/archive", ok=(409,))
        return ChatResult(channel=request.channel, delivered_to="teams")

    async def reply(self, service_url: str, conversation_id: str, reply_to: str, text: str) -> None:
        """Answer a person in the conversation their request came from, as the bot (the HTTP service's answer to
        a command, not an activity: one try, a failure logged by the caller)."""
        assert self.http is not None
        url = f"{service_url.rstrip('/')}/v3/conversations/{conversation_id}/activities/{reply_to}"
        token = await self._token(BOT_SCOPE)
        answer = await send(
            self.http,
            "teams",
            "POST",
            url,
            headers={"Authorization": f"Bearer {token}"},
            json=message_activity(text, f"reply:{reply_to}") | {"replyToId": reply_to},
        )
        check(answer, "teams")

    # --- the channel ------------------------------------------------------------------------------

    async def _create_or_reuse(self, name: str, request: ChatChannelRequest) -> dict[str, Any]:
        """The live channel of that name (a retry, or a re-run of the step), or a new one. An archived one (a
        reopened incident) moves on to `name-2`, `name-3`...: its history stays as it was."""
        candidates = [name] + [f"{name[: NAME_LENGTH - 2].rstrip('-')}-{n}" for n in range(2, 6)]
        listed = await self._list(f"{self._team()}/channels")
        for candidate in candidates:
            existing = next((c for c in listed if c.get("displayName") == candidate), None)
            if existing is not None:
                if existing.get("isArchived"):
                    continue
                return existing
            owners = request.invite_user_ids[:1]
            created = await self._call(
                "graph",
                "POST",
                f"{self._team()}/channels",
                ok=(409,),
                json={
                    "displayName": candidate,
                    "description": f"{request.purpose} ({request.incident_id})".strip(),
                    # private: the people of the incident are its members; it needs an owner from the start
                    "membershipType": "private" if owners else "standard",
                    "members": [_member(user, ["owner"]) for user in owners],
                },
            )
            if created.get("id"):
                return created
            listed = await self._list(f"{self._team()}/channels")  # made meanwhile, by an earlier attempt
            again = next((c for c in listed if c.get("displayName") == candidate), None)
            if again is not None and not again.get("isArchived"):
                return again
        raise ApplicationError(
            f"teams: channel names {candidates[0]} to {candidates[-1]} are all taken",
            type="teams:name_taken",
            non_retryable=True,
        )

    async def _add_members(self, channel_id: str, user_ids: list[str]) -> None:
        """Each person once; one Teams cannot add (unknown, a guest) is logged and skipped, not fatal."""
        path = f"{self._team()}/channels/{channel_id}/members"
        present = {str(m.get("userId", "")) for m in await self._list(path)}
        for user in dict.fromkeys(user_ids):
            if user in present:
                continue
            try:
                await self._call("graph", "POST", path, ok=(409,), json=_member(user, []))
            except ApplicationError as err:
                if not err.non_retryable:
                    raise
                log.warning("teams: %s: could not add %s: %s", channel_id, user, err.message)

    async def _add_tabs(self, channel_id: str, bookmarks: dict[str, str]) -> None:
        """A website tab per link, once: Teams' bookmarks. A tab Teams refuses is logged, not fatal."""
        wanted = {title: url for title, url in bookmarks.items() if url}
        if not wanted:
            return
        path = f"{self._team()}/channels/{channel_id}/tabs"
        present = {(t.get("configuration") or {}).get("websiteUrl") for t in await self._list(path)}
        for title, url in wanted.items():
            if url in present:
                continue
            tab = {
                "displayName": title[:30],
                "teamsApp@odata.bind": f"{GRAPH_V1}/appCatalogs/teamsApps/{WEB_TAB_APP}",
                "configuration": {"contentUrl": url, "websiteUrl": url},
            }
            try:
                await self._call("graph", "POST", path, json=tab)
            except ApplicationError as err:
                if not err.non_retryable:
                    raise
                log.warning("teams: tab %s skipped: %s", title, err.message)

    # --- posting ----------------------------------------------------------------------------------

    async def _direct_message(self, user_id: str, message: ChatDirectMessage, key: str) -> None:
        started = await self._call(
            "bot",
            "POST",
            "v3/conversations",
            json={
                "isGroup": False,
                "bot": {"id": f"28:{self.settings.teams_app_id}"},
                "members": [{"id": user_id}],
                "tenantId": self._tenant(),
                "channelData": {"tenant": {"id": self._tenant()}},
            },
        )
        chat = str(started["id"])
        if activity.info().attempt > 1 and await self._find(f"chats/{chat}/messages", key) is not None:
            log.info("teams: %s already sent", key)
            return
        sent = message_activity(message.text, key, buttons=message.buttons)
        await self._call("bot", "POST", f"v3/conversations/{chat}/activities", json=sent)

    async def _find(self, path: str, key: str) -> str | None:
        """The id of the message carrying `key`, among the recent ones at `path`."""
        answer = await self._call("graph", "GET", path, params={"$top": str(MESSAGES_SEARCHED)})
        for message in answer.get("value", []):
            if carries(message, key):
                return str(message["id"])
        return None

    # --- the REST calls ---------------------------------------------------------------------------

    def _tenant(self) -> str:
        return self.settings.teams_tenant_id or ""

    def _team(self) -> str:
        return f"teams/{self.settings.teams_team_id}"

    async def _list(self, path: str) -> list[dict[str, Any]]:
        """Every item of a Graph collection, following @odata.nextLink."""
        items: list[dict[str, Any]] = []
        url: str | None = path
        while url:
            page = await self._call("graph", "GET", url)
            items += page.get("value", [])
            url = page.get("@odata.nextLink")
        return items

    async def _call(
        self, api: str, method: str, path: str, *, ok: Collection[int] = (), **kwargs: Any
    ) -> dict[str, Any]:
        """One call to Graph or the bot connector: its JSON ({} for none, or for a status in `ok`).

        429 (and 503 with a Retry-After) wait Retry-After and try again while the attempt has time for it (Teams
        did not take the request), then leave the wait to Temporal's retry; an expired token is renewed once."""
        assert self.http is not None
        base = self.settings.teams_graph_url if api == "graph" else self.settings.teams_service_url
        url = path if path.startswith("http") else f"{base.rstrip('/')}/{path}"
        renewed = False
        while True:
            token = await self._token(GRAPH_SCOPE if api == "graph" else BOT_SCOPE)
            answer = await send(self.http, "teams", method, url, headers={"Authorization": f"Bearer {token}"}, **kwargs)
            if answer.status_code == 401 and not renewed:
                self._tokens.clear()
                renewed = True
                continue
            if answer.status_code == 429 or (answer.status_code == 503 and "Retry-After" in answer.headers):
                delay = retry_after(answer.headers.get("Retry-After")) or timedelta(seconds=1)
                deadline = attempt_deadline()
                outlasts = deadline is not None and asyncio.get_running_loop().time() + delay.total_seconds() > deadline
                if delay > MAX_WAIT or outlasts:
                    raise failure("teams", answer.status_code, "throttled", retry_after=delay)
                log.info("teams: %s %s throttled, waiting %ss", method, path, delay.total_seconds())
                activity.heartbeat()
                await asyncio.sleep(delay.total_seconds())
                continue
            if answer.status_code in ok:
                return {}
            check(answer, "teams")
            return dict(answer.json()) if answer.content else {}

    async def _token(self, scope: str) -> str:
        """A client-credentials token for Graph or the bot connector, kept until shortly before it expires."""
        held = self._tokens.get(scope)
        if held is not None and held[1] > time.monotonic():
            return held[0]
        s = self.settings
        assert self.http is not None and s.teams_app_password is not None
        answer = await send(
            self.http,
            "teams",
            "POST",
            f"{s.teams_login_url.rstrip('/')}/{s.teams_tenant_id}/oauth2/v2.0/token",
            data={
                "grant_type": "client_credentials",
                "client_id": s.teams_app_id,
                "client_secret": s.teams_app_password.get_secret_value(),
                "scope": scope,
            },
        )
        check(answer, "teams")
        body = answer.json()
        expires = time.monotonic() + max(0, int(body.get("expires_in", 3600)) - TOKEN_MARGIN)
        self._tokens[scope] = (str(body["access_token"]), expires)
        return self._tokens[scope][0]


def _member(user_id: str, roles: list[str]) -> dict[str, Any]:
    return {
        "@odata.type": "#microsoft.graph.aadUserConversationMember",
        "roles": roles,
        "user@odata.bind": f"https://graph.microsoft.com/v1.0/users('{user_id}')",
    }
