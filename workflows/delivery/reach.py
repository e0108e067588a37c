"""Reaching people from workflow code: one call per person and channel, through the activities.

Shared by IncidentWorkflow and EscalationWorkflow. Each outside system has its own timeouts and
retry policy, chosen for how that peer fails. A delivery that still fails is reported back as a
failure line for the timeline: a dead Slack must never stop paging or the incident's deadlines.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any, TypedDict

from temporalio import workflow
from temporalio.common import Priority, RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.email import EmailActivities
    from activities.paging import PagingActivities
    from activities.slack import SlackActivities
    from activities.telegram import TelegramActivities
    from workflows.contracts.activity_io import (
        EmailRequest,
        PageRequest,
        Reached,
        SlackChannelRequest,
        SlackDirectMessage,
        SlackPost,
        TelegramRequest,
    )
    from workflows.contracts.policy import Policy
    from workflows.contracts.priority import INCIDENT, PEOPLE
    from workflows.contracts.vocabulary import Channel, Severity


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


async def attempt(description: str, call: Any) -> tuple[Any, str | None]:
    """Await an activity; on failure return the reason instead of failing the workflow."""
    try:
        return await call, None
    except ActivityError as err:
        cause = getattr(err.cause, "message", None) or str(err.cause or err)
        return None, f"{description} failed: {cause}"


async def post(channel: str, text: str, key: str, mentions: list[str] | None = None) -> str | None:
    """Post to a Slack channel; returns a failure line or None."""
    _, failure = await attempt(
        f"Slack post to {channel}",
        workflow.execute_activity_method(
            SlackActivities.slack_post,
            SlackPost(channel=channel, text=text, idempotency_key=key, mention_user_ids=mentions or []),
            **CHAT,
        ),
    )
    return failure


async def ensure_channel(request: SlackChannelRequest) -> tuple[Any, str | None]:
    """Create a Slack channel (or find the one an earlier attempt made): its result, or a failure line."""
    return await attempt(
        "Slack channel",
        workflow.execute_activity_method(SlackActivities.slack_ensure_channel, request, **CHAT),
    )


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
) -> Reached:
    """Reach every person through every channel the policy has a contact for, concurrently.

    `key` names the step (say "escalation:r1:t2"); with the incident's occurrence (id and opening
    time) and the person it makes each delivery's idempotency key, so a replayed or retried step never
    reaches anybody twice, and the same alert group's next incident is not mistaken for this one.
    """
    key = f"{occurrence or incident_id}:{key}"
    reached = Reached(failures=unreachable(policy, people, channels))
    calls: list[tuple[str, Any]] = []
    page = page_request(policy, people, text, key, incident_id=incident_id, severity=severity, subject=subject)
    if Channel.PAGE in channels and page:
        reached.page_keys.append(page.dedup_key)
        calls.append(
            (describe_page(page), workflow.execute_activity_method(PagingActivities.page_open, page, **PAGING))
        )
    for person_id in people:
        person = policy.people.get(person_id)
        if person is None:
            continue
        if Channel.SLACK in channels and person.slack_user_id:
            calls.append(
                (
                    f"Slack DM {person_id}",
                    workflow.execute_activity_method(
                        SlackActivities.slack_direct_message,
                        SlackDirectMessage(
                            user_id=person.slack_user_id, text=text, idempotency_key=f"{key}:{person_id}"
                        ),
                        **CHAT,
                    ),
                )
            )
        if Channel.EMAIL in channels and person.email:
            calls.append(
                (
                    f"e-mail {person_id}",
                    workflow.execute_activity_method(
                        EmailActivities.send_email,
                        EmailRequest(
                            to=[person.email],
                            subject=subject or text[:80],
                            text=text,
                            idempotency_key=f"{key}:{person_id}",
                        ),
                        **EMAIL,
                    ),
                )
            )
        if Channel.TELEGRAM in channels and person.telegram_chat_id:
            calls.append(
                (
                    f"Telegram {person_id}",
                    workflow.execute_activity_method(
                        TelegramActivities.send_telegram,
                        TelegramRequest(
                            chat_id=person.telegram_chat_id, text=text, idempotency_key=f"{key}:{person_id}"
                        ),
                        **CHAT,
                    ),
                )
            )
    results = await asyncio.gather(*(attempt(description, call) for description, call in calls))
    for (description, _), (_, failure) in zip(calls, results, strict=True):
        if failure:
            reached.failures.append(failure)
        else:
            reached.lines.append(description)
    return reached


def page_request(
    policy: Policy, people: list[str], text: str, key: str, *, incident_id: str, severity: Severity, subject: str
) -> PageRequest | None:
    """The page for whoever of `people` has a pager (None if nobody has); `key` is its dedup key."""
    pageable = [policy.people[p].pager_id for p in people if p in policy.people and policy.people[p].pager_id]
    if not pageable:
        return None
    return PageRequest(
        incident_id=incident_id,
        dedup_key=key,
        summary=subject or text[:120],
        severity=severity,
        description=text,
        responders=pageable,
        provider=policy.paging_provider,
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
        elif not any(_has_contact(person, channel) for channel in channels):
            lines.append(f"{person_id} has no contact for {', '.join(c.value for c in channels)}")
    return lines


def _has_contact(person: Any, channel: Channel) -> bool:
    return bool(
        {
            Channel.PAGE: person.pager_id,
            Channel.SLACK: person.slack_user_id,
            Channel.EMAIL: person.email,
            Channel.TELEGRAM: person.telegram_chat_id,
        }[channel]
    )
