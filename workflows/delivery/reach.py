"""Reaching people from workflow code: per step, one call per channel (an e-mail each), through the activities.

Shared by IncidentWorkflow and EscalationWorkflow. Each outside system has its own timeouts and
retry policy, chosen for how that peer fails. A delivery that still fails is reported back as a
failure line for the timeline: a dead Slack must never stop paging or the incident's deadlines.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from typing import Any, TypedDict

from temporalio import workflow
from temporalio.common import Priority, RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.exceptions import TimeoutError as TemporalTimeout

with workflow.unsafe.imports_passed_through():
    from activities.chat.slack import SlackActivities
    from activities.chat.teams import TeamsActivities
    from activities.email import EmailActivities
    from activities.paging.ntfy import NtfyActivities
    from activities.paging.providers import PagingActivities
    from activities.paging.telephony import TelephonyActivities
    from activities.telegram import TelegramActivities
    from workflows.contracts.activity_io import (
        AckFor,
        ChatArchive,
        ChatButton,
        ChatChannelRequest,
        ChatDirectMessage,
        ChatPost,
        DirectMessage,
        EmailRequest,
        PageRequest,
        Reached,
        Settled,
        TelegramMessage,
    )
    from workflows.contracts.policy import DIRECT, Policy
    from workflows.contracts.temporal.priority import INCIDENT, PEOPLE
    from workflows.contracts.vocabulary import Channel, Severity
    from workflows.delivery.direct import URGENT, Watch, page_directly


class ActivityOptions(TypedDict, total=False):
    start_to_close_timeout: timedelta
    schedule_to_close_timeout: timedelta
    heartbeat_timeout: timedelta
    retry_policy: RetryPolicy
    priority: Priority


# A worker killed mid-attempt is noticed only when the attempt times out: after its heartbeat_timeout
# where the activity heartbeats, otherwise after its start_to_close_timeout. So both are as short as the
# peer allows, and the adapters end an attempt before it times out (so it never delivers after its retry).

# Chat APIs rate-limit in seconds: retry quickly, give up (and record it) after ten minutes. Slack's
# calls do not heartbeat, so no heartbeat_timeout: 20 s is twice a call's HTTP timeout.
CHAT: ActivityOptions = {
    "start_to_close_timeout": timedelta(seconds=20),
    "schedule_to_close_timeout": timedelta(minutes=10),
    "retry_policy": RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30)),
    "priority": PEOPLE,
}
# Telegram is a chat, but one call sends a step to each of its chats in turn, heartbeating each chat it settled
# (a retry skips them): a killed attempt is retried within 10 s; a minute per attempt, for several chats.
TELEGRAM: ActivityOptions = CHAT | {
    "start_to_close_timeout": timedelta(seconds=60),
    "heartbeat_timeout": timedelta(seconds=10),
}
# Paging is what wakes people: keep trying for longer; a killed attempt's retry within 20 s (the HTTP
# timeout is 15 s at most).
PAGING: ActivityOptions = {
    "start_to_close_timeout": timedelta(seconds=20),
    "schedule_to_close_timeout": timedelta(minutes=30),
    "retry_policy": RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30)),
    "priority": INCIDENT,
}
# SMTP servers greylist and queue: slower retries, up to five minutes apart, an hour in all. A send to
# many recipients takes a while, so it heartbeats (every second: the worker's heartbeat throttle is 1 s,
# not the SDK's 0.8 x the timeout) with the recipients already accepted: a killed attempt is retried
# within 10 s, and the retry goes on from there.
EMAIL: ActivityOptions = {
    "start_to_close_timeout": timedelta(seconds=60),
    "heartbeat_timeout": timedelta(seconds=10),
    "schedule_to_close_timeout": timedelta(hours=1),
    "retry_policy": RetryPolicy(initial_interval=timedelta(seconds=2), maximum_interval=timedelta(minutes=5)),
    "priority": PEOPLE,
}
# Local files and template rendering: fail fast, a retry rarely helps.
LOCAL: ActivityOptions = {
    "start_to_close_timeout": timedelta(seconds=10),
    "retry_policy": RetryPolicy(maximum_attempts=5),
    "priority": PEOPLE,
}


def starting_own_workflow(priority: Priority) -> ActivityOptions:
    """A workflow of our own started through an activity (activities/own_workflows.py): one quick call to
    Temporal itself, retried until the server answers."""
    return {
        "start_to_close_timeout": timedelta(seconds=10),
        "schedule_to_close_timeout": timedelta(minutes=30),
        "retry_policy": RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=10)),
        "priority": priority,
    }


async def attempt(description: str, call: Any) -> tuple[Any, str | None]:
    """Await an activity; on failure return the reason instead of failing the workflow."""
    try:
        return await call, None
    except ActivityError as err:
        return None, f"{description} failed: {_reason(err)}"


def _reason(err: ActivityError) -> str:
    return getattr(err.cause, "message", None) or str(err.cause or err)


@dataclass(frozen=True)
class Chat:
    """What an organisation's chat does for an incident, as activities: the duties ask the chat, by the
    policy's `response.chats`, and never name Slack or Teams. A new chat is an entry here and in vocabulary.CHATS."""

    ensure_channel: Callable[..., Any]
    post: Callable[..., Any]
    direct_message: Callable[..., Any]
    archive: Callable[..., Any]


CHAT_ACTIVITIES: dict[Channel, Chat] = {
    Channel.SLACK: Chat(
        SlackActivities.slack_ensure_channel,
        SlackActivities.slack_post,
        SlackActivities.slack_direct_message,
        SlackActivities.slack_archive_channel,
    ),
    Channel.TEAMS: Chat(
        TeamsActivities.teams_ensure_channel,
        TeamsActivities.teams_post,
        TeamsActivities.teams_direct_message,
        TeamsActivities.teams_archive_channel,
    ),
}


async def post(chat: Channel, request: ChatPost) -> str | None:
    """Post to the incident's channel in a chat (or revise the post under its key); a failure line or None."""
    _, failure = await attempt(
        f"{chat.label} post to {request.channel}",
        workflow.execute_activity_method(CHAT_ACTIVITIES[chat].post, request, **CHAT),
    )
    return failure


async def ensure_channel(chat: Channel, request: ChatChannelRequest) -> tuple[Any, str | None]:
    """Create a chat's channel (or find the one an earlier attempt made): its result, or a failure line."""
    return await attempt(
        f"{chat.label} channel",
        workflow.execute_activity_method(CHAT_ACTIVITIES[chat].ensure_channel, request, **CHAT),
    )


async def archive(chat: Channel, channel: str) -> str | None:
    _, failure = await attempt(
        f"archive {chat.label} channel",
        workflow.execute_activity_method(CHAT_ACTIVITIES[chat].archive, ChatArchive(channel=channel), **CHAT),
    )
    return failure


def button(label: str, decision: str, incident_id: str, **fields: str) -> ChatButton:
    """A button for a decision on an incident (its name in the registry, its fields)."""
    return ChatButton(label=label, decision=decision, fields={"incident_id": incident_id, **fields})


def chat_ids(policy: Policy, chat: Channel, people: list[str]) -> list[str]:
    """The ids of `people` in a chat, for invitations and mentions (those without one are left out)."""
    return [c for p in people if p in policy.people and (c := policy.people[p].contact(chat))]


@dataclass(frozen=True)
class Step:
    """One step's message (its text, and the key that makes each delivery of it once)."""

    policy: Policy
    text: str
    key: str  # the step's key with the incident's occurrence: `occurrence:escalation:r1:t2`
    subject: str
    incident_id: str
    severity: Severity
    watch: Watch = field(default_factory=Watch)  # direct pages: answered yet? failed by the provider's word?
    acknowledgeable: bool = False  # a page: each message carries the way to acknowledge as its person
    buttons: tuple[ChatButton, ...] = ()  # in a chat, the decisions it asks for, one click each


async def reach(
    policy: Policy,
    people: list[str],
    channels: list[Channel],
    text: str,
    key: str,
    *,
    incident_id: str,
    severity: Severity,
    subject: str = "",
    occurrence: str = "",
    watch: Watch | None = None,
    acknowledgeable: bool = False,
    buttons: list[ChatButton] | None = None,
) -> Reached:
    """Reach every person through every channel the policy has a contact for, the channels concurrently.

    `key` names the step (say "escalation:r1:t2"); with the incident's occurrence (id and opening
    time) and the person it makes each delivery's idempotency key, so a replayed or retried step never
    reaches anybody twice, and the same alert group's next incident is not mistaken for this one.
    """
    step = Step(
        policy,
        text,
        f"{occurrence or incident_id}:{key}",
        subject,
        incident_id,
        severity,
        watch or Watch(),
        acknowledgeable,
        tuple(buttons or ()),
    )
    reached = Reached(failures=unreachable(policy, people, channels))
    sends = []
    for channel in channels:
        contacts = {p: c for p in people if p in policy.people and (c := policy.address(p, channel))}
        if contacts:
            sends.append(SENDERS[channel](step, contacts))
    for part in await asyncio.gather(*sends):
        reached.lines += part.lines
        reached.failures += part.failures
        reached.page_keys += part.page_keys
    return reached


# --- how each channel sends one step to its people (their addresses on it, by person id) ---------------


async def _page(step: Step, pagers: dict[str, str]) -> Reached:
    """One alert at the paging provider for all of them: the provider rings each. Paged directly, each follows
    their own notification rules instead (delivery/direct.py)."""
    if step.policy.paging_provider == DIRECT:
        return await page_directly(step, list(pagers), SENDERS)
    page = _page_for(step, list(pagers.values()))
    paging = workflow.execute_activity_method(PagingActivities.page_open, page, **PAGING)
    return await _one_delivery(describe_page(page), paging, page_keys=[page.dedup_key])


async def _direct_message(chat: Channel, step: Step, user_ids: dict[str, str]) -> Reached:
    """One call DMs them all (each once); a person the chat refuses is that person's failure."""
    message = ChatDirectMessage(
        recipients=user_ids,
        text=step.text,
        idempotency_key=step.key,
        buttons=_page_buttons(step, chat.label) + list(step.buttons),
    )
    call = workflow.execute_activity_method(CHAT_ACTIVITIES[chat].direct_message, message, **CHAT)
    return await _each_reached(f"{chat.label} DM", list(user_ids), call)


async def _email(step: Step, addresses: dict[str, str]) -> Reached:
    """An e-mail each (nobody sees the others' addresses)."""
    return await _one_each(
        Channel.EMAIL.label,
        addresses,
        lambda person, address: workflow.execute_activity_method(
            EmailActivities.send_email,
            EmailRequest(
                to=[address],
                subject=step.subject or step.text[:80],
                text=step.text,
                idempotency_key=f"{step.key}:{person}",
                acknowledge=AckFor(incident_id=step.incident_id, person=person) if _acknowledge(step) else None,
            ),
            **EMAIL,
        ),
    )


async def _telegram(step: Step, chats: dict[str, str]) -> Reached:
    """One call sends to them all, each in their own chat, each once; a chat Telegram refuses is its person's
    failure."""
    message = TelegramMessage(
        recipients=chats,
        text=step.text,
        idempotency_key=step.key,
        acknowledge_incident=step.incident_id if _acknowledge(step) else "",
    )
    call = workflow.execute_activity_method(TelegramActivities.send_telegram, message, **TELEGRAM)
    return await _each_reached(Channel.TELEGRAM.label, list(chats), call)


async def _each_reached(label: str, people: list[str], call: Any) -> Reached:
    """One call for several people: the timeline's line for each it reached, a failure for each it could not. A call
    that failed as a whole still credits the people it had reached, where its failure says which (Settled)."""
    try:
        delivered = await call
    except ActivityError as err:
        settled = Settled.read(_details(err))
        unsettled = [p for p in people if p not in settled.sent and p not in settled.refused]
        return Reached(
            lines=[f"{label} {p}" for p in settled.sent],
            failures=[f"{label} {p} failed: {reason}" for p, reason in settled.refused.items()]
            + ([f"{label} {', '.join(unsettled)} failed: {_reason(err)}"] if unsettled else []),
        )
    return Reached(
        lines=[as_delivered(f"{label} {p}", delivered) for p in people if p not in delivered.failures],
        failures=[f"{label} {p} failed: {reason}" for p, reason in delivered.failures.items()],
    )


def _details(err: ActivityError) -> Sequence[Any]:
    """What the last attempt said of its progress: its failure's details, or a timed-out attempt's last heartbeat."""
    if isinstance(err.cause, ApplicationError):
        return err.cause.details
    if isinstance(err.cause, TemporalTimeout):
        return err.cause.last_heartbeat_details
    return ()


def _page_buttons(step: Step, label: str) -> list[ChatButton]:
    """A page's message in a chat: an Acknowledge button, which the chat's endpoint takes as whoever clicks it (the
    DM's one reader), noting the chat it came by."""
    return [button("Acknowledge", "acknowledge", step.incident_id, via=label)] if _acknowledge(step) else []


def _acknowledge(step: Step) -> bool:
    """Whether a page's message offers to acknowledge: while it is not answered yet."""
    return step.acknowledgeable and not step.watch.stopped()


def _direct_sender(channel: Channel, method: Any) -> Callable[[Step, dict[str, str]], Awaitable[Reached]]:
    """A sender of direct pages (push, SMS, a call): one delivery per person, each asked for at once (so a page
    due first goes first), keyed `step.key:person` (the key the provider's status callbacks name)."""

    def send(step: Step, addresses: dict[str, str]) -> Awaitable[Reached]:
        started = {
            person: workflow.start_activity_method(
                method,
                DirectMessage(
                    incident_id=step.incident_id,
                    person=person,
                    address=address,
                    title=step.subject or step.text[:80],
                    text=step.text,
                    idempotency_key=f"{step.key}:{person}",
                    urgent=step.severity in URGENT,
                    telephony=step.policy.telephony,
                ),
                **PAGING,
            )
            for person, address in addresses.items()
        }
        return _one_each(channel.label, addresses, lambda person, _: started[person])

    return send


async def _one_each(label: str, contacts: dict[str, str], send: Callable[[str, str], Any]) -> Reached:
    """A delivery per person, side by side; the timeline's line names the channel and the person."""
    parts = await asyncio.gather(
        *(_one_delivery(f"{label} {person}", send(person, address)) for person, address in contacts.items())
    )
    return Reached(lines=[line for p in parts for line in p.lines], failures=[f for p in parts for f in p.failures])


# Each channel's way of sending a step, keyed like the contacts it needs (contracts/people.py, CONTACT_FIELD).
SENDERS: dict[Channel, Callable[[Step, dict[str, str]], Awaitable[Reached]]] = {
    Channel.PAGE: _page,
    Channel.SLACK: partial(_direct_message, Channel.SLACK),
    Channel.TEAMS: partial(_direct_message, Channel.TEAMS),
    Channel.EMAIL: _email,
    Channel.TELEGRAM: _telegram,
    Channel.PUSH: _direct_sender(Channel.PUSH, NtfyActivities.send_push),
    Channel.SMS: _direct_sender(Channel.SMS, TelephonyActivities.send_sms),
    Channel.VOICE: _direct_sender(Channel.VOICE, TelephonyActivities.place_call),
}


async def _one_delivery(description: str, call: Any, page_keys: list[str] | None = None) -> Reached:
    result, failure = await attempt(description, call)
    if failure:
        return Reached(failures=[failure], page_keys=page_keys or [])
    return Reached(lines=[as_delivered(description, result)], page_keys=page_keys or [])


def as_delivered(description: str, result: Any) -> str:
    """The timeline's line for a delivery: one that only reached the local outbox says it was not delivered."""
    if getattr(result, "delivered_to", "") == "outbox":
        return f"{description}: not delivered (outbox only)"
    return description


def page_request(
    policy: Policy, people: list[str], text: str, key: str, *, incident_id: str, severity: Severity, subject: str
) -> PageRequest | None:
    """The page for whoever of `people` has a pager (None if nobody has); `key` is its dedup key."""
    pagers = [c for p in people if p in policy.people and (c := policy.people[p].contact(Channel.PAGE))]
    if not pagers:
        return None
    return _page_for(Step(policy, text, key, subject, incident_id, severity), pagers)


def _page_for(step: Step, pagers: list[str]) -> PageRequest:
    return PageRequest(
        incident_id=step.incident_id,
        dedup_key=step.key,
        summary=step.subject or step.text[:120],
        severity=step.severity,
        description=step.text,
        responders=pagers,
        provider=step.policy.paging_provider,
    )


def describe_page(page: PageRequest) -> str:
    return f"page {', '.join(page.responders)} ({page.provider})"


def unreachable(policy: Policy, people: list[str], channels: list[Channel]) -> list[str]:
    """A line for each of `people` that `channels` cannot reach: not in the policy, or no contact there."""
    lines = []
    for person_id in people:
        person = policy.people.get(person_id)
        if person is None:
            lines.append(f"no person {person_id!r} in the policy")
        elif not any(policy.address(person_id, channel) for channel in channels):
            lines.append(f"{person_id} has no contact for {', '.join(c.value for c in channels)}")
    return lines
