"""Reaching people and audiences from the message loop, through the activities: the approved message to its
audience (Slack, e-mail, Statuspage) and direct messages to the people it waits on. A failure is recorded for
the distributor to see, never fatal: one dead destination must not hold up the others or the loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.chat.slack import SlackActivities
    from activities.email import EmailActivities
    from activities.statuspage import StatuspageActivities
    from workflows.comms.model import CommsMessage, CommsState, Delivery, Version
    from workflows.comms.rules import log
    from workflows.contracts.activity_io import (
        ChatButton,
        ChatDirectMessage,
        ChatPost,
        EmailRequest,
        StatuspageRequest,
    )
    from workflows.contracts.policy import Policy
    from workflows.contracts.vocabulary import Audience, Channel, occurrence
    from workflows.delivery.reach import CHAT_ACTIVITIES, EMAIL

# People are reached best-effort: a failed DM is logged, never blocks the loop.
NOTIFY_TIMEOUT = timedelta(seconds=30)
NOTIFY_RETRY = RetryPolicy(maximum_interval=timedelta(minutes=1), maximum_attempts=10)
# Deliveries to an audience keep trying through a provider's outage; the adapters mark business
# errors (unknown channel, rejected address) non-retryable.
DELIVER_TIMEOUT = timedelta(minutes=1)
DELIVER_RETRY = RetryPolicy(maximum_interval=timedelta(minutes=5), maximum_attempts=30)


def message_key(state: CommsState, m: CommsMessage) -> str:
    """Idempotency keys: incident, message (phase x audience) and what, never the attempt."""
    return f"{occurrence(state.incident_id, state.facts.opened_at)}:comms:{m.message_id}"


async def distribute(state: CommsState, policy: Policy, m: CommsMessage, version: Version) -> None:
    """Send the version to every destination the policy names for the message's audience."""
    key = f"{message_key(state, m)}:v{version.number}"
    recipients = policy.comms.recipients
    if m.audience is Audience.INTERNAL:
        if recipients.internal_slack_channel:
            await _post_to_slack(state, m, recipients.internal_slack_channel, version, f"{key}:slack")
        if recipients.internal_email:
            await _email(state, m, recipients.internal_email, version, f"{key}:email", personal=False)
    elif m.audience is Audience.STRATEGIC:
        for customer in recipients.strategic_customers:
            await _email(state, m, customer.contacts, version, f"{key}:email:{customer.name}", personal=True)
    else:
        if recipients.statuspage:
            await _update_statuspage(state, m, version, f"{key}:statuspage")
        if recipients.customer_mailing_list:
            await _email(state, m, recipients.customer_mailing_list, version, f"{key}:email", personal=False)


async def _post_to_slack(state: CommsState, m: CommsMessage, channel: str, version: Version, key: str) -> None:
    async def post() -> str:
        result = await workflow.execute_activity_method(
            SlackActivities.slack_post,
            ChatPost(channel=channel, text=f"{version.subject}\n\n{version.text}", idempotency_key=key),
            start_to_close_timeout=DELIVER_TIMEOUT,
            retry_policy=DELIVER_RETRY,
        )
        return result.delivered_to

    await _deliver(state, m, "slack", channel, key, post)


async def _email(
    state: CommsState, m: CommsMessage, to: list[str], version: Version, key: str, *, personal: bool
) -> None:
    async def send() -> str:
        result = await workflow.execute_activity_method(
            EmailActivities.send_email,
            EmailRequest(
                to=to,
                subject=version.subject,
                text=version.text,
                html=version.html,
                idempotency_key=key,
                personal=personal,
            ),
            # the send heartbeats its accepted recipients: a killed attempt is retried within seconds
            start_to_close_timeout=DELIVER_TIMEOUT,
            heartbeat_timeout=EMAIL["heartbeat_timeout"],
            retry_policy=DELIVER_RETRY,
        )
        return result.delivered_to

    await _deliver(state, m, "email", ", ".join(to), key, send)


async def _update_statuspage(state: CommsState, m: CommsMessage, version: Version, key: str) -> None:
    async def upsert() -> str:
        result = await workflow.execute_activity_method(
            StatuspageActivities.statuspage_upsert,
            StatuspageRequest(
                incident_id=state.incident_id,
                name=version.subject,
                phase=m.phase,
                body=version.text,
                idempotency_key=key,
                statuspage_incident_id=state.statuspage_incident_id,
            ),
            start_to_close_timeout=DELIVER_TIMEOUT,
            retry_policy=DELIVER_RETRY,
        )
        state.statuspage_incident_id = result.statuspage_incident_id  # later phases update the same incident
        return result.delivered_to

    await _deliver(state, m, "statuspage", "status page", key, upsert)


async def _deliver(
    state: CommsState, m: CommsMessage, channel: str, target: str, key: str, send: Callable[[], Awaitable[str]]
) -> None:
    delivery = Delivery(channel=channel, target=target, idempotency_key=key)
    try:
        delivery.delivered_to = await send()
    except ActivityError as err:
        delivery.error = cause(err)
        log(state, workflow.now(), "delivery_failed", f"{m.message_id}: {channel} {target}: {delivery.error}")
    m.deliveries.append(delivery)


async def direct_message(
    state: CommsState, policy: Policy, people: list[str], text: str, key: str, buttons: list[ChatButton]
) -> None:
    """A DM to each person in each of the organisation's chats, one call per chat; one nobody can reach is on
    the log."""
    message = ChatDirectMessage(recipients={}, text=text, idempotency_key=key, buttons=buttons)
    await asyncio.gather(*(_direct_message(state, policy, chat, people, message) for chat in policy.response.chats))


async def _direct_message(
    state: CommsState, policy: Policy, chat: Channel, people: list[str], message: ChatDirectMessage
) -> None:
    label = chat.label
    recipients: dict[str, str] = {}
    for person in people:
        user = policy.people.get(person)
        if user is None or not user.contact(chat):
            log(state, workflow.now(), "unreachable", f"{person} has no {label} user id in the policy: {message.text}")
        else:
            recipients[person] = user.contact(chat)
    if not recipients:
        return
    try:
        delivered = await workflow.execute_activity_method(
            CHAT_ACTIVITIES[chat].direct_message,
            message.model_copy(update={"recipients": recipients}),
            start_to_close_timeout=NOTIFY_TIMEOUT,
            retry_policy=NOTIFY_RETRY,
        )
    except ActivityError as err:
        log(state, workflow.now(), "unreachable", f"{', '.join(recipients)}: direct message failed: {cause(err)}")
        return
    for person, reason in delivered.failures.items():
        log(state, workflow.now(), "unreachable", f"{person}: direct message failed: {reason}")


def cause(err: ActivityError) -> str:
    """What the peer (or the template) said, for a person to read."""
    c = err.cause
    return c.message if isinstance(c, ApplicationError) else str(c or err)
