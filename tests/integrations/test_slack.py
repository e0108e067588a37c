"""The Slack adapter against a fake Slack that speaks the Web API's wire format."""

from __future__ import annotations

from datetime import timedelta

import pytest
from temporalio.exceptions import ApplicationError

from activities.chat.slack import SlackActivities, channel_name
from activities.outbox import Outbox
from settings import Settings
from starter.http.slack import parse_action
from tests.fakes.slack import FakeSlack
from tests.integrations.helpers import attempt
from workflows.contracts.activity_io import (
    ChatArchive,
    ChatButton,
    ChatChannelRequest,
    ChatDirectMessage,
    ChatPost,
    FirstPost,
)
from workflows.incident.model import Acknowledge


def slack_activities(settings: Settings, slack: FakeSlack) -> SlackActivities:
    return SlackActivities(slack.configure(settings), Outbox(settings.outbox_path))


def channel_request(**changes: object) -> ChatChannelRequest:
    fields: dict[str, object] = {
        "incident_id": "INC-7F3K",
        "title": "Checkout is failing",
        "topic": "SEV1 checkout",
        "purpose": "Incident INC-7F3K",
        "invite_user_ids": ["U0ALICE", "U0BOB"],
        "bookmarks": {"Conference": "https://zoom.example/j/1", "Runbook": "https://wiki.example/rb"},
    }
    return ChatChannelRequest.model_validate(fields | changes)


async def test_ensure_channel_creates_describes_invites_and_bookmarks(settings: Settings, slack: FakeSlack):
    result = await attempt().run(slack_activities(settings, slack).slack_ensure_channel, channel_request())

    channel = slack.channels[result.channel_id]
    assert (result.name, result.delivered_to) == ("inc-7f3k-checkout-is-failing", "slack")
    assert (channel.topic, channel.purpose) == ("SEV1 checkout", "Incident INC-7F3K")
    assert {"U0ALICE", "U0BOB"} <= channel.members
    assert [(b["title"], b["link"]) for b in channel.bookmarks] == [
        ("Conference", "https://zoom.example/j/1"),
        ("Runbook", "https://wiki.example/rb"),
    ]


async def test_ensure_channel_twice_reuses_the_channel_without_repeating_anything(settings: Settings, slack: FakeSlack):
    slack.page_size = 2  # the existing channel is only found by following conversations.list's cursor
    for n in range(5):
        slack.add_channel(f"other-{n}")
    activities = slack_activities(settings, slack)
    first = await attempt().run(activities.slack_ensure_channel, channel_request())
    restarted = SlackActivities(activities.settings, activities.outbox)  # a new worker: no channel ids known
    again = await attempt().run(restarted.slack_ensure_channel, channel_request())

    assert again.channel_id == first.channel_id
    assert len(slack.calls("conversations.setTopic")) == 1
    assert len(slack.channels[first.channel_id].bookmarks) == 2
    assert len(slack.calls("conversations.list")) >= 3


async def test_the_channel_opens_with_its_welcome_once_however_often_it_is_opened(settings: Settings, slack: FakeSlack):
    """The welcome is the channel's first message; a later call opening the same channel (the incident trying again
    after a failed call, a new worker) finds it by its key and posts nothing."""
    welcome = FirstPost(text="SEV1 INC-7F3K: checkout <is> failing", idempotency_key="INC-7F3K:welcome")
    request = channel_request(first_post=welcome.model_copy(update={"mention_user_ids": ["U0ALICE"]}))
    activities = slack_activities(settings, slack)
    first = await attempt().run(activities.slack_ensure_channel, request)
    again = await attempt().run(SlackActivities(activities.settings, activities.outbox).slack_ensure_channel, request)

    assert again.channel_id == first.channel_id and again.first_post_failure == ""
    [message] = slack.channels[first.channel_id].messages
    assert message["text"] == "<@U0ALICE> SEV1 INC-7F3K: checkout &lt;is&gt; failing"
    assert message["metadata"]["event_payload"]["idempotency_key"] == "INC-7F3K:welcome"


async def test_a_welcome_slack_refuses_for_good_leaves_the_channel_open_and_says_why(
    settings: Settings, slack: FakeSlack
):
    slack.add_channel(channel_name("INC-7F3K", "Checkout is failing"), members=set())  # the bot was removed from it
    welcome = FirstPost(text="SEV1 INC-7F3K", idempotency_key="INC-7F3K:welcome")

    result = await attempt().run(
        slack_activities(settings, slack).slack_ensure_channel, channel_request(first_post=welcome)
    )

    assert result.channel_id and result.first_post_failure == "slack chat_postMessage: not_in_channel"


async def test_ensure_channel_skips_users_who_cannot_be_invited(settings: Settings, slack: FakeSlack):
    request = channel_request(invite_user_ids=["U0ALICE", "U0NOBODY", "bad id"])
    result = await attempt().run(slack_activities(settings, slack).slack_ensure_channel, request)

    assert "U0ALICE" in slack.channels[result.channel_id].members
    assert slack.calls("conversations.invite")[0].params["users"] == "U0ALICE,U0NOBODY"


async def test_ensure_channel_moves_past_a_name_held_by_an_archived_channel(settings: Settings, slack: FakeSlack):
    name = channel_name("INC-7F3K", "Checkout is failing")
    slack.add_channel(name, is_archived=True)

    result = await attempt().run(slack_activities(settings, slack).slack_ensure_channel, channel_request())

    assert result.name == f"{name}-2"


async def test_post_escapes_alert_text_and_adds_only_requested_mentions(settings: Settings, slack: FakeSlack):
    channel = slack.add_channel("inc-1")
    post = ChatPost(
        channel="#inc-1",
        text="<!channel> disk > 90% & <@U0BOB> <https://evil|click>",
        idempotency_key="INC-1:update:1",
        mention_user_ids=["U0ALICE", "<!here>"],
    )

    result = await attempt().run(slack_activities(settings, slack).slack_post, post)

    [message] = channel.messages
    assert (result.channel, result.ts) == (channel.id, message["ts"])
    assert message["text"] == (
        "<@U0ALICE> &lt;!channel&gt; disk &gt; 90% &amp; &lt;@U0BOB&gt; &lt;https://evil|click&gt;"
    )
    assert message["metadata"] == {
        "event_type": "incident_orchestrator",
        "event_payload": {"idempotency_key": "INC-1:update:1"},
    }


async def test_a_posts_buttons_are_clicks_the_slack_endpoint_reads_as_their_decision(
    settings: Settings, slack: FakeSlack
):
    channel = slack.add_channel("inc-1")
    ack = ChatButton(label="Acknowledge", decision="acknowledge", fields={"incident_id": "INC-7F3KQ2MA"})

    post = ChatPost(channel=channel.id, text="a < b", idempotency_key="k", buttons=[ack])
    await attempt().run(slack_activities(settings, slack).slack_post, post)

    section, actions = channel.messages[0]["blocks"]
    assert section["text"]["text"] == channel.messages[0]["text"] == "a &lt; b"
    (button,) = actions["elements"]
    clicked = parse_action(button, "bob")
    assert (clicked.incident_id, clicked.decision) == ("INC-7F3KQ2MA", Acknowledge(actor="bob"))


async def test_retried_post_finds_the_first_attempts_message_by_metadata(settings: Settings, slack: FakeSlack):
    channel = slack.add_channel("inc-1")
    activities = slack_activities(settings, slack)
    post = ChatPost(channel="#inc-1", text="update", idempotency_key="INC-1:update:2")
    first = await attempt().run(activities.slack_post, post)

    restarted = SlackActivities(activities.settings, activities.outbox)  # the retry may run on another worker
    again = await attempt(2).run(restarted.slack_post, post)

    assert again.ts == first.ts
    assert len(channel.messages) == 1
    assert slack.calls("conversations.history")[0].params["include_all_metadata"] == "1"


async def test_retried_post_that_never_arrived_is_posted(settings: Settings, slack: FakeSlack):
    channel = slack.add_channel("inc-1")
    post = ChatPost(channel=channel.id, text="update", idempotency_key="INC-1:update:3")

    await attempt(2).run(slack_activities(settings, slack).slack_post, post)

    assert [m["text"] for m in channel.messages] == ["update"]


async def test_direct_message_opens_the_conversation_and_posts_once(settings: Settings, slack: FakeSlack):
    activities = slack_activities(settings, slack)
    dm = ChatDirectMessage(
        recipients={"alice": "U0ALICE"}, text="You are paged for <INC-1>", idempotency_key="INC-1:dm"
    )

    first = await attempt().run(activities.slack_direct_message, dm)
    again = await attempt(2).run(activities.slack_direct_message, dm)

    assert first.failures == again.failures == {}
    assert [m["text"] for m in slack.channel_named("dm-U0ALICE").messages] == ["You are paged for &lt;INC-1&gt;"]


async def test_one_direct_message_reaches_each_person_once_and_reports_who_slack_refused(
    settings: Settings, slack: FakeSlack
):
    activities = slack_activities(settings, slack)
    dm = ChatDirectMessage(
        recipients={"alice": "U0ALICE", "ghost": "U0GHOST", "bob": "U0BOB"}, text="Paged", idempotency_key="INC-1:t1"
    )

    first = await attempt().run(activities.slack_direct_message, dm)
    again = await attempt(2).run(activities.slack_direct_message, dm)  # a retry after a lost answer

    assert first.failures == again.failures == {"ghost": "slack conversations_open: user_not_found"}
    for user in ("U0ALICE", "U0BOB"):
        messages = slack.channel_named(f"dm-{user}").messages
        assert [m["metadata"]["event_payload"]["idempotency_key"] for m in messages] == [
            f"INC-1:t1:{'alice' if user == 'U0ALICE' else 'bob'}"
        ]


async def test_a_revised_post_replaces_the_text_under_its_key_once(settings: Settings, slack: FakeSlack):
    """The welcome written before the bridge existed is brought up to date, not posted twice."""
    channel = slack.add_channel("inc-1")
    activities = slack_activities(settings, slack)
    welcome = ChatPost(channel=channel.id, text="SEV1 incident INC-1", idempotency_key="INC-1:channel:welcome")
    revised = welcome.model_copy(update={"text": "SEV1 incident INC-1\nConference: https://meet.example/1"})

    await attempt().run(activities.slack_post, welcome)
    await attempt().run(activities.slack_post, revised.model_copy(update={"revises": True}))
    await attempt(2).run(activities.slack_post, revised.model_copy(update={"revises": True}))  # a retry

    assert [m["text"] for m in channel.messages] == ["SEV1 incident INC-1\nConference: https://meet.example/1"]


async def test_archive_is_idempotent(settings: Settings, slack: FakeSlack):
    channel = slack.add_channel("inc-1")
    activities = slack_activities(settings, slack)

    await attempt().run(activities.slack_archive_channel, ChatArchive(channel="#inc-1"))
    await attempt().run(activities.slack_archive_channel, ChatArchive(channel=channel.id))

    assert channel.is_archived


async def test_rate_limit_waits_retry_after_inside_the_attempt(settings: Settings, slack: FakeSlack):
    channel = slack.add_channel("inc-1")
    slack.rate_limit_for(0.5)

    await attempt().run(
        slack_activities(settings, slack).slack_post, ChatPost(channel=channel.id, text="hi", idempotency_key="k")
    )

    assert [m["text"] for m in channel.messages] == ["hi"]
    assert len(slack.calls("chat.postMessage")) == 2


async def test_long_rate_limit_hands_the_wait_to_temporal(settings: Settings, slack: FakeSlack):
    channel = slack.add_channel("inc-1")
    slack.retry_after_seconds = 120
    slack.rate_limit_for(5)

    with pytest.raises(ApplicationError) as raised:
        await attempt().run(
            slack_activities(settings, slack).slack_post, ChatPost(channel=channel.id, text="hi", idempotency_key="k")
        )

    assert (raised.value.type, raised.value.non_retryable) == ("slack:ratelimited", False)
    assert raised.value.next_retry_delay == timedelta(seconds=120)


@pytest.mark.parametrize("error", ["channel_not_found", "not_in_channel", "is_archived", "invalid_auth"])
async def test_business_errors_are_not_retried(settings: Settings, slack: FakeSlack, error: str):
    slack.add_channel("inc-1")
    slack.fail("chat.postMessage", 200, {"ok": False, "error": error})

    with pytest.raises(ApplicationError) as raised:
        await attempt().run(
            slack_activities(settings, slack).slack_post, ChatPost(channel="#inc-1", text="hi", idempotency_key="k")
        )

    assert (raised.value.type, raised.value.non_retryable) == (f"slack:{error}", True)


@pytest.mark.parametrize(
    ("status", "body", "expected_type"),
    [
        (200, {"ok": False, "error": "internal_error"}, "slack:internal_error"),
        (200, {"ok": False, "error": "service_unavailable"}, "slack:service_unavailable"),
        (503, "<html>Service Unavailable</html>", "slack:http_503"),
        (500, {"ok": False, "error": "fatal_error"}, "slack:fatal_error"),
    ],
)
async def test_slack_outages_are_retried(
    settings: Settings, slack: FakeSlack, status: int, body: object, expected_type: str
):
    slack.add_channel("inc-1")
    slack.fail("chat.postMessage", status, body)

    with pytest.raises(ApplicationError) as raised:
        await attempt().run(
            slack_activities(settings, slack).slack_post, ChatPost(channel="#inc-1", text="hi", idempotency_key="k")
        )

    assert (raised.value.type, raised.value.non_retryable) == (expected_type, False)


async def test_unconfigured_slack_writes_the_outbox(settings: Settings):
    activities = SlackActivities(settings, Outbox(settings.outbox_path))

    result = await attempt().run(activities.slack_post, ChatPost(channel="#inc-1", text="hi", idempotency_key="k"))

    assert result.delivered_to == "outbox"
    assert [entry["key"] for entry in Outbox(settings.outbox_path).read()] == ["k"]


async def test_a_page_by_dm_carries_an_acknowledge_button_that_the_endpoint_takes_as_whoever_clicks(
    settings: Settings, slack: FakeSlack
):
    dm = ChatDirectMessage(
        recipients={"bob": "U0BOB"},
        text="[SEV1] INC-7F3K needs an acknowledgement",
        idempotency_key="k",
        buttons=[
            ChatButton(label="Acknowledge", decision="acknowledge", fields={"incident_id": "INC-7F3K", "via": "Slack"})
        ],
    )
    await attempt().run(slack_activities(settings, slack).slack_direct_message, dm)

    [message] = slack.channel_named("dm-U0BOB").messages
    [button] = message["blocks"][1]["elements"]
    decided = parse_action(button, "bob")
    assert decided.incident_id == "INC-7F3K"
    assert decided.decision == Acknowledge(actor="bob", via="Slack")
