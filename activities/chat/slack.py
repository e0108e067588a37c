"""Slack: the incident channel, posts, direct messages, archiving.

With SLACK_BOT_TOKEN set this is the Web API through slack_sdk's AsyncWebClient; without it, the
outbox. Every post carries its idempotency key in message metadata, and a retried attempt looks for
that key in the channel's recent history before posting, so an activity killed after Slack accepted
a message does not post it twice.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from contextlib import asynccontextmanager
from contextvars import ContextVar
from datetime import timedelta
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.chat import to_each, to_outbox, unless_refused
from activities.http import retry_after
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

SlackMethod = Callable[..., Awaitable[AsyncSlackResponse]]

log = logging.getLogger(__name__)

METADATA_EVENT_TYPE = "incident_orchestrator"
# Slack error codes that mean "try again later"; every other `ok: false` is a decision Slack made
# about this request (channel_not_found, invalid_auth, is_archived, ...) that a retry won't change.
RETRYABLE_ERRORS = frozenset({"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"})
# conversations.invite errors about some of the users, not the call: the rest of the channel setup goes on.
PER_USER_INVITE_ERRORS = frozenset(
    {
        "already_in_channel",
        "cant_invite_self",
        "user_not_found",
        "cant_invite",
        "user_is_restricted",
        "user_is_ultra_restricted",
        "ura_max_channels",
        "user_team_not_in_channel",
        "missing_user",
    }
)
INVITE_BATCH = 100  # Slack accepts up to 1,000 ids per call; small batches keep one failure small
HISTORY_WINDOW = 200  # messages searched for an earlier attempt's post: posts retry within minutes
MAX_WAIT = timedelta(seconds=30)  # a longer Retry-After frees the worker and lets Temporal wait
ATTEMPT_SHARE = 0.9  # of its start_to_close_timeout an attempt may use; the rest reports the failure
USER_ID = re.compile(r"^[UW][A-Z0-9]+$")
CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]+$")


def channel_name(incident_id: str, title: str, prefix: str = "inc") -> str:
    """A readable, valid Slack channel name: lowercase, dashes, at most 80 characters."""
    words = "".join(c if c.isalnum() else "-" for c in title.lower()).split("-")
    slug = "-".join(w for w in words if w)
    incident = incident_id.lower()
    if incident.startswith(f"{prefix}-"):  # "INC-7F3K" with prefix "inc": no "inc-inc-"
        incident = incident[len(prefix) + 1 :]
    name = f"{prefix}-{incident}-{slug}".strip("-")
    return name[:80].rstrip("-")


def escape_mrkdwn(text: str) -> str:
    """Slack's three control characters, so alert text cannot become `<!channel>`, a mention or a link."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def message_text(text: str, mention_user_ids: Collection[str] = ()) -> str:
    """Escaped text, preceded by the mentions the workflow asked for (well-formed user ids only)."""
    mentions = " ".join(f"<@{user}>" for user in mention_user_ids if USER_ID.match(user))
    return f"{mentions} {escape_mrkdwn(text)}" if mentions else escape_mrkdwn(text)


def button_blocks(text: str, buttons: Collection[ChatButton]) -> list[dict[str, Any]]:
    """The (escaped) text and a button per decision, as the Slack endpoint reads a click: `action_id` the
    decision's name, `value` its fields as JSON. No buttons: no blocks, the text alone."""
    if not buttons:
        return []
    actions = [
        {
            "type": "button",
            "text": {"type": "plain_text", "text": button.label[:75]},
            "action_id": button.decision,
            "value": json.dumps(button.fields),
        }
        for button in buttons
    ]
    return [
        {"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}},
        {"type": "actions", "elements": actions},
    ]


def idempotency_metadata(key: str) -> dict[str, Any]:
    return {"event_type": METADATA_EVENT_TYPE, "event_payload": {"idempotency_key": key}}


class SlackActivities:
    def __init__(self, settings: Settings, outbox: Outbox) -> None:
        self.settings = settings
        self.outbox = outbox
        self.client: AsyncWebClient | None = None
        if settings.slack_bot_token is not None:
            # No SDK retry handlers: its connection-error retry can re-send a post Slack already took.
            # Temporal retries the activity instead, and a retried attempt checks before posting.
            self.client = AsyncWebClient(
                token=settings.slack_bot_token.get_secret_value(),
                base_url=settings.slack_api_url.rstrip("/") + "/",
                timeout=10,
                retry_handlers=[],
            )
        self._channel_ids: dict[str, str] = {}  # channel name -> id, learnt from conversations.list

    @activity.defn
    async def slack_ensure_channel(self, request: ChatChannelRequest) -> ChatChannel:
        name = channel_name(request.incident_id, request.title, request.channel_prefix)
        if self.client is None:
            # keyed by content too: a channel ensured again with a bookmark more (a late bridge) is a line more
            digest = hashlib.sha256(request.model_dump_json().encode()).hexdigest()[:12]
            where = await self.outbox.deliver(
                "slack", "channel", f"channel:{name}:{digest}", request.model_dump() | {"name": name}
            )
            if request.first_post is not None:
                await self._post_to_outbox(request.first_post.to(f"#{name}"))
            return ChatChannel(channel_id=f"#{name}", name=name, delivered_to=where)
        async with within_attempt():
            channel = await self._create_or_reuse(self.client, name)
            await self._describe(self.client, channel, request.topic, request.purpose)
            await self._invite(self.client, channel["id"], request.invite_user_ids)
            await self._bookmark(self.client, channel["id"], request.bookmarks)
            refused = ""
            if request.first_post is not None:  # looked for first: the channel may be one an earlier call greeted
                welcome = request.first_post.to(channel["id"])
                text = message_text(welcome.text, welcome.mention_user_ids)
                key = welcome.idempotency_key
                refused = await unless_refused(
                    self._post_once(self.client, welcome.channel, text, [], key, look_first=True)
                )
        return ChatChannel(
            channel_id=channel["id"], name=channel["name"], delivered_to="slack", first_post_failure=refused
        )

    @activity.defn
    async def slack_post(self, post: ChatPost) -> ChatResult:
        """Post to a channel, once.

        `text` is escaped here; `buttons` follow it as a block of buttons.
        """
        if self.client is None:
            return ChatResult(channel=post.channel, delivered_to=await self._post_to_outbox(post))
        async with within_attempt():
            channel, ts = await self._post(self.client, post)
        return ChatResult(channel=channel, ts=ts, delivered_to="slack")

    async def _post(self, client: AsyncWebClient, post: ChatPost) -> tuple[str, str]:
        """The post made once (or, `revises`, the one under its key brought up to date): (channel id, ts)."""
        text = message_text(post.text, post.mention_user_ids)
        if post.revises:
            return await self._revise(client, post.channel, text, post.idempotency_key)
        return await self._post_once(
            client, post.channel, text, button_blocks(text, post.buttons), post.idempotency_key
        )

    async def _post_to_outbox(self, post: ChatPost) -> str:
        key = f"{post.idempotency_key}:revised" if post.revises else post.idempotency_key
        return await self.outbox.deliver("slack", "post", key, post.model_dump())

    async def _revise(self, client: AsyncWebClient, channel: str, text: str, key: str) -> tuple[str, str]:
        """The message posted under `key` with this text: its text replaced (chat.update), or posted if missing."""
        channel_id = await self._channel_id(client, channel)
        found = await _find_post(client, channel_id, key)
        if found is None:
            posted = await _call(
                client.chat_postMessage, channel=channel_id, text=text, metadata=idempotency_metadata(key)
            )
            return posted["channel"], posted["ts"]
        ts, earlier = found
        if earlier != text:
            await _call(client.chat_update, channel=channel_id, ts=ts, text=text)
        return channel_id, ts

    @activity.defn
    async def slack_direct_message(self, message: ChatDirectMessage) -> ChatDelivered:
        """A DM to each recipient. Slack refusing one person for good (user_not_found, ...) is that person's
        failure, reported; a retryable error raises, and the retry finds the DMs this attempt already sent."""
        client = self.client
        if client is None:
            return await to_outbox("slack", self.outbox, message)
        text = escape_mrkdwn(message.text)
        blocks = button_blocks(text, message.buttons)

        async def dm(person: str, user_id: str) -> None:
            opened = await _call(client.conversations_open, users=user_id)
            await self._post_once(client, opened["channel"]["id"], text, blocks, message.key_for(person))

        async with within_attempt():
            return await to_each("slack", message, dm)

    @activity.defn
    async def slack_archive_channel(self, request: ChatArchive) -> ChatResult:
        if self.client is None:
            where = await self.outbox.deliver("slack", "archive", f"archive:{request.channel}", request.model_dump())
            return ChatResult(channel=request.channel, delivered_to=where)
        async with within_attempt():
            channel_id = await self._channel_id(self.client, request.channel)
            await _call(self.client.conversations_archive, ok_errors={"already_archived"}, channel=channel_id)
        return ChatResult(channel=channel_id, delivered_to="slack")

    # --- channel setup ----------------------------------------------------------------------------

    async def _create_or_reuse(self, client: AsyncWebClient, name: str) -> dict[str, Any]:
        """Create the channel, or reuse the live one of that name (a retry, or a re-run of the step).

        A name held by an archived channel (a reopened incident) or one the bot cannot see moves on to
        `name-2`, `name-3`...: bots cannot unarchive.
        """
        candidates = [name] + [f"{name[:77].rstrip('-')}-{n}" for n in range(2, 6)]
        for candidate in candidates:
            created = await _call(client.conversations_create, ok_errors={"name_taken"}, name=candidate)
            if created.get("ok"):
                channel: dict[str, Any] = created["channel"]
                self._channel_ids[channel["name"]] = channel["id"]
                return channel
            existing = await self._find_channel(client, candidate)
            if existing is not None and not existing.get("is_archived"):
                return existing
        raise ApplicationError(
            f"slack: channel names {candidates[0]} to {candidates[-1]} are all taken",
            type="slack:name_taken",
            non_retryable=True,
        )

    async def _find_channel(self, client: AsyncWebClient, name: str) -> dict[str, Any] | None:
        cursor = None
        while True:
            page = await _call(
                client.conversations_list,
                types="public_channel,private_channel",
                exclude_archived=False,
                limit=200,
                cursor=cursor,
            )
            for channel in page.get("channels", []):
                self._channel_ids[channel["name"]] = channel["id"]
                if channel["name"] == name:
                    return dict(channel)
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return None

    async def _channel_id(self, client: AsyncWebClient, channel: str) -> str:
        """The id for a channel given by id, `name` or `#name` (history and archive take ids only)."""
        if CHANNEL_ID.match(channel):
            return channel
        name = channel.removeprefix("#")
        if name not in self._channel_ids and await self._find_channel(client, name) is None:
            raise ApplicationError(
                f"slack: no channel named {name}", type="slack:channel_not_found", non_retryable=True
            )
        return self._channel_ids[name]

    async def _describe(self, client: AsyncWebClient, channel: dict[str, Any], topic: str, purpose: str) -> None:
        """Topic and purpose, only when they differ: every change posts a notice in the channel."""
        if topic and (channel.get("topic") or {}).get("value") != topic[:250]:
            await _decoration(client.conversations_setTopic, channel=channel["id"], topic=topic[:250])
        if purpose and (channel.get("purpose") or {}).get("value") != purpose[:250]:
            await _decoration(client.conversations_setPurpose, channel=channel["id"], purpose=purpose[:250])

    async def _invite(self, client: AsyncWebClient, channel_id: str, user_ids: list[str]) -> None:
        """Invite in batches; a user who cannot be invited is logged and skipped, not fatal to the channel."""
        malformed = [user for user in user_ids if not USER_ID.match(user)]
        if malformed:
            log.warning("slack: not inviting malformed user ids %s", malformed)
        valid = [user for user in dict.fromkeys(user_ids) if USER_ID.match(user)]
        for start in range(0, len(valid), INVITE_BATCH):
            batch = valid[start : start + INVITE_BATCH]
            # force: invite the valid users of a batch even when some of them cannot be invited
            answer = await _call(
                client.conversations_invite,
                ok_errors=PER_USER_INVITE_ERRORS,
                channel=channel_id,
                users=",".join(batch),
                force=True,
            )
            refused = [
                f"{e.get('user')}: {e.get('error')}"
                for e in answer.get("errors", [])
                if e.get("error") not in ("already_in_channel", "cant_invite_self")
            ]
            if not answer.get("ok") and answer.get("error") not in ("already_in_channel", "cant_invite_self"):
                refused.append(f"{','.join(batch)}: {answer.get('error')}")
            if refused:
                log.warning("slack: %s: could not invite %s", channel_id, "; ".join(refused))

    async def _bookmark(self, client: AsyncWebClient, channel_id: str, bookmarks: dict[str, str]) -> None:
        """Add each link once: a bookmark already there (an earlier attempt) is not added again."""
        wanted = {title: url for title, url in bookmarks.items() if url}
        if not wanted:
            return
        listed = await _decoration(client.bookmarks_list, channel_id=channel_id)
        if listed is None:
            return
        present = {bookmark.get("link") for bookmark in listed.get("bookmarks", [])}
        for title, url in wanted.items():
            if url not in present:
                await _decoration(client.bookmarks_add, channel_id=channel_id, title=title, type="link", link=url)

    # --- posting ----------------------------------------------------------------------------------

    async def _post_once(
        self,
        client: AsyncWebClient,
        channel: str,
        text: str,
        blocks: list[dict[str, Any]],
        key: str,
        look_first: bool = False,
    ) -> tuple[str, str]:
        """Post unless an earlier attempt of this activity (or, `look_first`, anybody) already did; returns
        (channel id, ts)."""
        if look_first or activity.info().attempt > 1:
            channel_id = await self._channel_id(client, channel)
            found = await _find_post(client, channel_id, key)
            if found is not None:
                log.info("slack: %s already posted in %s as %s", key, channel_id, found[0])
                return channel_id, found[0]
        posted = await _call(
            client.chat_postMessage,
            channel=channel,
            text=text,
            blocks=blocks or None,
            metadata=idempotency_metadata(key),
        )
        if not CHANNEL_ID.match(channel):
            self._channel_ids.setdefault(channel.removeprefix("#"), posted["channel"])
        return posted["channel"], posted["ts"]


async def _find_post(client: AsyncWebClient, channel_id: str, key: str) -> tuple[str, str] | None:
    """(ts, text) of the message posted under `key`, among the channel's recent ones."""
    history = await _call(
        client.conversations_history, channel=channel_id, include_all_metadata=True, limit=HISTORY_WINDOW
    )
    for message in history.get("messages", []):
        metadata = message.get("metadata") or {}
        if (
            metadata.get("event_type") == METADATA_EVENT_TYPE
            and (metadata.get("event_payload") or {}).get("idempotency_key") == key
        ):
            return str(message["ts"]), str(message.get("text", ""))
    return None


async def _decoration(method: SlackMethod, **kwargs: Any) -> dict[str, Any] | None:
    """Topic, purpose and bookmarks are worth having, not worth failing the incident channel for.

    A business error (missing scope, bookmarks disabled) is logged; a retryable one still raises.
    """
    try:
        return await _call(method, **kwargs)
    except ApplicationError as err:
        if not err.non_retryable:
            raise
        log.warning("slack: %s skipped: %s", method.__name__, err.message)
        return None


_deadline: ContextVar[float] = ContextVar("slack_attempt_deadline", default=math.inf)


@asynccontextmanager
async def within_attempt() -> AsyncIterator[None]:
    """End this attempt's Slack calls before Temporal gives up on the attempt.

    A worker is not told when the server times an attempt out: an attempt still waiting out a 429
    could post after the next attempt looked for its message, and the message would be there twice.
    So an attempt stops at ATTEMPT_SHARE of its timeout and never starts a wait that would outlast it.
    """
    info = activity.info()
    budget = info.start_to_close_timeout or info.schedule_to_close_timeout
    if not budget:
        yield
        return
    deadline = asyncio.get_running_loop().time() + budget.total_seconds() * ATTEMPT_SHARE
    token = _deadline.set(deadline)
    try:
        async with asyncio.timeout_at(deadline):
            yield
    finally:
        _deadline.reset(token)


async def _call(method: SlackMethod, /, ok_errors: Collection[str] = (), **kwargs: Any) -> dict[str, Any]:
    """One Web API call: its data, or for an error in `ok_errors` the error answer itself.

    429 waits Retry-After and tries again while the attempt has time for it (Slack did not take the
    request, so repeating it is safe), then leaves the wait to Temporal's retry; other failures become
    retryable or non-retryable errors.
    """
    while True:
        try:
            return dict((await method(**kwargs)).data)  # type: ignore[arg-type]
        except SlackApiError as err:
            # a body that was not JSON leaves an aiohttp response here instead of a Slack one
            data = getattr(err.response, "data", None)
            data = data if isinstance(data, dict) else {}
            status = int(getattr(err.response, "status_code", 0) or getattr(err.response, "status", 0))
            error = str(data.get("error", ""))
            if error and error in ok_errors:
                return data
            if status != 429 and error != "ratelimited":
                raise _failure(method.__name__, status, error) from None
            headers = getattr(err.response, "headers", None) or {}
            delay = retry_after(headers.get("Retry-After")) or timedelta(seconds=1)
            outlasts_attempt = asyncio.get_running_loop().time() + delay.total_seconds() > _deadline.get()
            if delay > MAX_WAIT or outlasts_attempt:
                raise ApplicationError(
                    f"slack {method.__name__}: rate limited", type="slack:ratelimited", next_retry_delay=delay
                ) from None
            log.info("slack: %s rate limited, waiting %ss", method.__name__, delay.total_seconds())
            activity.heartbeat()
            await asyncio.sleep(delay.total_seconds())


def _failure(method: str, status: int, error: str) -> ApplicationError:
    # no error code at all (a proxy's page, a garbled body) is only Slack's decision when it is a 4xx
    retryable = status >= 500 or error in RETRYABLE_ERRORS or (not error and status < 400)
    code = error or f"http_{status}"
    return ApplicationError(f"slack {method}: {code}", type=f"slack:{code}", non_retryable=not retryable)
