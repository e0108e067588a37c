"""The chats an incident lives in: Slack and Microsoft Teams, each an adapter of its own."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from temporalio.exceptions import ApplicationError

from activities.outbox import Outbox
from workflows.contracts.activity_io import ChatDelivered, ChatDirectMessage


async def to_outbox(chat: str, outbox: Outbox, message: ChatDirectMessage) -> ChatDelivered:
    """A chat with no credentials: each recipient's DM goes to the outbox, under its own key."""
    where = ""
    for person, user_id in message.recipients.items():
        key = message.key_for(person)
        where = await outbox.deliver(
            chat, "dm", key, {"user_id": user_id, "text": message.text, "idempotency_key": key}
        )
    return ChatDelivered(delivered_to=where)


async def to_each(chat: str, message: ChatDirectMessage, send: Callable[[str, str], Awaitable[None]]) -> ChatDelivered:
    """`send(person, user_id)` for each recipient in turn. The chat refusing one person for good is that person's
    failure, reported; a retryable error raises, and the retry finds the DMs this attempt already sent (keyed)."""
    failures: dict[str, str] = {}
    for person, user_id in message.recipients.items():
        if refused := await unless_refused(send(person, user_id)):
            failures[person] = refused
    return ChatDelivered(failures=failures, delivered_to=chat)


async def unless_refused(call: Awaitable[object]) -> str:
    """Why the chat refused the call for good, or "" once it is done. A retryable error raises, for the retry."""
    try:
        await call
    except ApplicationError as err:
        if not err.non_retryable:
            raise
        return err.message
    return ""
