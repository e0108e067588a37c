"""Slack: the incident channel, posts, direct messages, archiving."""

from __future__ import annotations

from temporalio import activity

from activities.outbox import Outbox
from settings import Settings
from workflows.model import SlackArchive, SlackChannel, SlackChannelRequest, SlackDirectMessage, SlackPost, SlackResult


def channel_name(incident_id: str, title: str, prefix: str = "inc") -> str:
    """A readable, valid Slack channel name: lowercase, dashes, at most 80 characters."""
    words = "".join(c if c.isalnum() else "-" for c in title.lower()).split("-")
    slug = "-".join(w for w in words if w)
    name = f"{prefix}-{incident_id.lower()}-{slug}".strip("-")
    return name[:80].rstrip("-")


class SlackActivities:
    def __init__(self, settings: Settings, outbox: Outbox) -> None:
        self.settings = settings
        self.outbox = outbox

    @activity.defn
    async def slack_ensure_channel(self, request: SlackChannelRequest) -> SlackChannel:
        name = channel_name(request.incident_id, request.title)
        where = await self.outbox.deliver("slack", "channel", f"channel:{request.incident_id}",
                                          request.model_dump() | {"name": name})
        return SlackChannel(channel_id=f"#{name}", name=name, delivered_to=where)

    @activity.defn
    async def slack_post(self, post: SlackPost) -> SlackResult:
        where = await self.outbox.deliver("slack", "post", post.idempotency_key, post.model_dump())
        return SlackResult(channel=post.channel, delivered_to=where)

    @activity.defn
    async def slack_direct_message(self, message: SlackDirectMessage) -> SlackResult:
        where = await self.outbox.deliver("slack", "dm", message.idempotency_key, message.model_dump())
        return SlackResult(channel=message.user_id, delivered_to=where)

    @activity.defn
    async def slack_archive_channel(self, request: SlackArchive) -> SlackResult:
        where = await self.outbox.deliver("slack", "archive", f"archive:{request.channel}", request.model_dump())
        return SlackResult(channel=request.channel, delivered_to=where)
