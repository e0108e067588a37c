"""Slack posts through a real Temporal worker (dev server): killed attempts and long rate limits."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from activities.chat.slack import SlackActivities
from activities.outbox import Outbox
from settings import Settings
from tests.fakes.slack import FakeSlack
from workflows.contracts.activity_io import ChatPost, ChatResult


@workflow.defn
class PostInOrder:
    """Posts one after the other, the way the incident workflow posts to its channel."""

    @workflow.run
    async def run(self, posts: list[ChatPost]) -> list[ChatResult]:
        return [
            await workflow.execute_activity_method(
                SlackActivities.slack_post,
                post,
                start_to_close_timeout=timedelta(seconds=2),
                retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=100), maximum_attempts=5),
            )
            for post in posts
        ]


def worker(env: WorkflowEnvironment, settings: Settings, slack: FakeSlack) -> Worker:
    activities = SlackActivities(slack.configure(settings), Outbox(settings.outbox_path))
    # The workflow is a test harness that only sequences activities: no sandbox needed.
    return Worker(
        env.client,
        task_queue=settings.incident_task_queue,
        workflows=[PostInOrder],
        activities=[activities.slack_post],
        workflow_runner=UnsandboxedWorkflowRunner(),
    )


async def post_in_order(env: WorkflowEnvironment, settings: Settings, posts: list[ChatPost]) -> list[ChatResult]:
    return await env.client.execute_workflow(
        PostInOrder.run,
        posts,
        id=f"post-{uuid.uuid4().hex[:8]}",
        task_queue=settings.incident_task_queue,
        execution_timeout=timedelta(seconds=30),
    )


async def test_post_accepted_then_attempt_killed_is_not_posted_twice(
    dev_env: WorkflowEnvironment, settings: Settings, slack: FakeSlack
):
    channel = slack.add_channel("inc-1")
    # Slack records the message, then answers after the attempt's 2 s start_to_close_timeout.
    slack.hold_answer("chat.postMessage", 4)

    async with worker(dev_env, settings, slack):
        [result] = await post_in_order(
            dev_env, settings, [ChatPost(channel=channel.id, text="Investigating", idempotency_key="INC-1:update:1")]
        )

    assert [m["text"] for m in channel.messages] == ["Investigating"]
    assert result.ts == channel.messages[0]["ts"]
    assert len(slack.calls("chat.postMessage")) == 1
    assert len(slack.calls("conversations.history")) == 1


async def test_slack_at_429_for_a_while_every_message_arrives_in_order(
    dev_env: WorkflowEnvironment, settings: Settings, slack: FakeSlack
):
    channels = [slack.add_channel("inc-1"), slack.add_channel("inc-2")]
    slack.rate_limit_for(2.5)

    async with worker(dev_env, settings, slack):
        await asyncio.gather(
            *(
                post_in_order(
                    dev_env,
                    settings,
                    [
                        ChatPost(channel=channel.id, text=f"update {n}", idempotency_key=f"{channel.name}:{n}")
                        for n in range(5)
                    ],
                )
                for channel in channels
            )
        )

    for channel in channels:
        assert [m["text"] for m in channel.messages] == [f"update {n}" for n in range(5)]
    assert len(slack.calls("chat.postMessage")) > 10  # some of them were answered 429
