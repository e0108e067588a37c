"""The Teams adapter against a fake Teams speaking Graph's, the Bot Framework connector's and Entra ID's wire
formats."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from temporalio.exceptions import ApplicationError

from activities.chat.teams import TeamsActivities
from activities.outbox import Outbox
from settings import Settings
from tests.fakes.teams import FakeTeams
from tests.integrations.helpers import attempt
from workflows.contracts.activity_io import ChatArchive, ChatChannelRequest, ChatDirectMessage, ChatPost, FirstPost
from workflows.contracts.people import CONTACT_FIELD
from workflows.contracts.vocabulary import CHATS
from workflows.delivery.reach import CHAT_ACTIVITIES, SENDERS


@pytest.fixture
async def teams() -> AsyncIterator[FakeTeams]:
    async with FakeTeams() as fake:
        yield fake


def teams_activities(settings: Settings, teams: FakeTeams) -> TeamsActivities:
    return TeamsActivities(teams.configure(settings), Outbox(settings.outbox_path))


def channel_request(**changes: object) -> ChatChannelRequest:
    fields: dict[str, object] = {
        "incident_id": "INC-7F3K",
        "title": "Checkout is failing",
        "purpose": "All communication about INC-7F3K happens here.",
        "invite_user_ids": ["aad-alice", "aad-bob"],
        "bookmarks": {"Conference": "https://zoom.example/j/1", "Runbook": "https://wiki.example/rb"},
    }
    return ChatChannelRequest.model_validate(fields | changes)


async def test_ensure_channel_creates_a_private_channel_with_members_and_tabs(settings: Settings, teams: FakeTeams):
    result = await attempt().run(teams_activities(settings, teams).teams_ensure_channel, channel_request())

    channel = teams.channels[result.channel_id]
    assert (result.name, result.delivered_to) == ("inc-7f3k-checkout-is-failing", "teams")
    assert channel.membership == "private" and channel.members == {"aad-alice", "aad-bob"}
    assert "INC-7F3K" in channel.description
    assert [(t["displayName"], t["configuration"]["websiteUrl"]) for t in channel.tabs] == [
        ("Conference", "https://zoom.example/j/1"),
        ("Runbook", "https://wiki.example/rb"),
    ]
    token_requests = teams.calls("/oauth2/v2.0/token")
    assert {r.params["grant_type"] for r in token_requests} == {"client_credentials"}


async def test_channel_is_found_before_it_is_made_so_a_new_worker_makes_no_second(settings: Settings, teams: FakeTeams):
    teams.page_size = 2  # the channel is only found by following @odata.nextLink
    activities = teams_activities(settings, teams)
    for n in range(4):
        await attempt().run(activities.teams_ensure_channel, channel_request(incident_id=f"INC-{n}", title="other"))
    first = await attempt().run(activities.teams_ensure_channel, channel_request())
    restarted = TeamsActivities(activities.settings, activities.outbox)  # a new worker
    again = await attempt(2).run(restarted.teams_ensure_channel, channel_request())

    assert again.channel_id == first.channel_id
    assert len([c for c in teams.channels.values() if c.name == first.name]) == 1
    assert len(teams.channels[first.channel_id].tabs) == 2


async def test_an_archived_channel_of_that_name_is_left_as_it_was(settings: Settings, teams: FakeTeams):
    activities = teams_activities(settings, teams)
    first = await attempt().run(activities.teams_ensure_channel, channel_request())
    await attempt().run(activities.teams_archive_channel, ChatArchive(channel=first.channel_id))
    again = await attempt().run(activities.teams_archive_channel, ChatArchive(channel=first.channel_id))

    reopened = await attempt().run(activities.teams_ensure_channel, channel_request())

    assert teams.channels[first.channel_id].archived and again.delivered_to == "teams"
    assert reopened.name == f"{first.name}-2"


async def test_post_is_one_card_per_key_when_the_retry_follows_an_accepted_post(settings: Settings, teams: FakeTeams):
    activities = teams_activities(settings, teams)
    channel = await attempt().run(activities.teams_ensure_channel, channel_request())
    post = ChatPost(
        channel=channel.channel_id, text="[click](https://evil.example) *now*", idempotency_key="occ:welcome"
    )

    first = await attempt().run(activities.teams_post, post)
    retried = await attempt(2).run(activities.teams_post, post)  # the first attempt's answer was lost

    messages = teams.channels[channel.channel_id].messages
    assert len(messages) == 1 and retried.ts == first.ts == messages[0].id
    assert messages[0].key() == "occ:welcome"
    assert messages[0].shown() == "\\[click\\]\\(https://evil.example\\) \\*now\\*"


async def test_the_channel_opens_with_its_welcome_once_however_often_it_is_opened(settings: Settings, teams: FakeTeams):
    activities = teams_activities(settings, teams)
    welcome = FirstPost(text="SEV1 INC-7F3K: checkout is failing", idempotency_key="occ:welcome")
    first = await attempt().run(activities.teams_ensure_channel, channel_request(first_post=welcome))
    restarted = TeamsActivities(
        activities.settings, activities.outbox
    )  # the incident opening it again, on a new worker
    again = await attempt().run(restarted.teams_ensure_channel, channel_request(first_post=welcome))

    assert again.channel_id == first.channel_id and again.first_post_failure == ""
    [message] = teams.channels[first.channel_id].messages
    assert (message.key(), message.shown()) == ("occ:welcome", "SEV1 INC-7F3K: checkout is failing")


async def test_a_revised_post_replaces_the_text_under_its_key(settings: Settings, teams: FakeTeams):
    activities = teams_activities(settings, teams)
    channel = await attempt().run(activities.teams_ensure_channel, channel_request())
    await attempt().run(activities.teams_post, ChatPost(channel=channel.channel_id, text="v1", idempotency_key="k"))
    revised = ChatPost(channel=channel.channel_id, text="v2", idempotency_key="k", revises=True)

    await attempt().run(activities.teams_post, revised)

    assert [m.shown() for m in teams.channels[channel.channel_id].messages] == ["v2"]


async def test_throttling_waits_retry_after_and_then_posts(settings: Settings, teams: FakeTeams):
    activities = teams_activities(settings, teams)
    channel = await attempt().run(activities.teams_ensure_channel, channel_request())
    teams.throttle_for(0.5)

    await attempt().run(activities.teams_post, ChatPost(channel=channel.channel_id, text="hi", idempotency_key="k"))

    assert [r.path for r in teams.received].count("/bot/v3/conversations") == 2  # throttled, then taken
    assert len(teams.channels[channel.channel_id].messages) == 1


async def test_a_long_retry_after_is_left_to_temporal(settings: Settings, teams: FakeTeams):
    activities = teams_activities(settings, teams)
    teams.retry_after_seconds = 120
    teams.throttle_for(60)

    with pytest.raises(ApplicationError) as raised:
        await attempt().run(activities.teams_ensure_channel, channel_request())

    assert not raised.value.non_retryable and raised.value.next_retry_delay is not None
    assert raised.value.next_retry_delay.total_seconds() == 120


async def test_an_outage_is_retryable_and_a_refusal_is_not(settings: Settings, teams: FakeTeams):
    activities = teams_activities(settings, teams)
    teams.fail("/graph/", 503, "<html>Service Unavailable</html>", times=100)
    with pytest.raises(ApplicationError) as outage:
        await attempt().run(activities.teams_ensure_channel, channel_request())
    teams.faults.clear()
    teams.fail("/graph/", 403, {"error": {"code": "Forbidden", "message": "Missing role"}})
    with pytest.raises(ApplicationError) as refusal:
        await attempt().run(activities.teams_ensure_channel, channel_request())

    assert not outage.value.non_retryable and refusal.value.non_retryable


async def test_direct_messages_each_once_and_an_unknown_person_is_their_own_failure(
    settings: Settings, teams: FakeTeams
):
    activities = teams_activities(settings, teams)
    message = ChatDirectMessage(
        recipients={"alice": "aad-alice", "zed": "aad-nobody"}, text="Take it: INC-7F3K", idempotency_key="occ:ask"
    )

    delivered = await attempt().run(activities.teams_direct_message, message)
    await attempt(2).run(activities.teams_direct_message, message)

    assert [m.shown() for m in teams.dms("aad-alice")] == ["Take it: INC-7F3K"]
    assert [m.key() for m in teams.dms("aad-alice")] == ["occ:ask:alice"]
    assert list(delivered.failures) == ["zed"]


async def test_without_an_app_registration_everything_goes_to_the_outbox(settings: Settings):
    activities = TeamsActivities(settings, Outbox(settings.outbox_path))

    result = await attempt().run(activities.teams_ensure_channel, channel_request())

    assert result.delivered_to == "outbox" and '"teams"' in settings.outbox_path.read_text()


def test_every_chat_a_policy_may_choose_has_its_activities_its_sender_and_its_contact() -> None:
    assert set(CHAT_ACTIVITIES) == set(CHATS)
    assert set(CHATS) <= set(SENDERS) and set(CHATS) <= set(CONTACT_FIELD)
