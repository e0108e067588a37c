"""An organisation on Slack and Teams: a Teams outage delays only what goes to Teams. The incident's Slack
channel opens and is posted to while Teams answers 503; once Teams is back, its channel opens and gets the same
posts, each once."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

from temporalio.testing import WorkflowEnvironment

from client.alerts import send_alert
from client.decide import query_state
from settings import Settings
from tests.conftest import run_under
from tests.fakes.slack import FakeSlack
from tests.fakes.teams import FakeTeams
from worker import build_worker
from workflows.contracts.policy import Policy
from workflows.contracts.temporal.ids import incident_id_for
from workflows.contracts.vocabulary import Channel, Severity
from workflows.incident.model import AlertEvent


def on_slack_and_teams(policy: Policy) -> Policy:
    raw = policy.model_dump(mode="json")
    for person_id, person in raw["people"].items():
        person["teams_user_id"] = f"aad-{person_id}"
    raw["response"]["chats"] = ["teams", "slack"]  # Teams first: the Slack channel must not wait behind it
    return Policy.model_validate(raw)


async def until(condition: Callable[[], bool], what: str, within: float = 60) -> None:
    for _ in range(int(within / 0.1)):
        if condition():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{what} did not happen within {within:.0f} s")


async def test_a_teams_outage_delays_only_the_teams_channel_and_its_posts(
    dev_env: WorkflowEnvironment, settings: Settings, example_policy: Policy, slack: FakeSlack
) -> None:
    policy = on_slack_and_teams(example_policy)
    users = {p.teams_user_id for p in policy.people.values()}
    slack.users |= {p.slack_user_id for p in policy.people.values() if p.slack_user_id}
    async with FakeTeams(users=users) as teams:
        teams.fail("/", 503, "<html>Service Unavailable</html>", times=10**6)  # the token endpoint too
        configured = teams.configure(slack.configure(settings))
        run_under(settings, policy)
        event = AlertEvent(
            source="outage-test",
            dedup_key=uuid.uuid4().hex,
            title="Checkout is down",
            severity=Severity.SEV1,
            service="checkout",
        )
        incident_id = incident_id_for(event.source, event.dedup_key)
        async with build_worker(dev_env.client, configured):
            await send_alert(dev_env.client, configured, policy, event)

            def welcomed(messages: list[str]) -> bool:
                return any(k.endswith(":channel:welcome") for k in messages)

            def slack_keys() -> list[str]:
                return [
                    (m.get("metadata") or {}).get("event_payload", {}).get("idempotency_key", "")
                    for c in slack.channels.values()
                    if incident_id.lower() in c.name
                    for m in c.messages
                ]

            await until(lambda: welcomed(slack_keys()), "the Slack channel's welcome")
            assert not teams.channels, "Teams is down: no channel there yet"
            state = await query_state(dev_env.client, incident_id)
            assert Channel.TEAMS not in state.chat_channels and state.chat_channels[Channel.SLACK]

            teams.faults.clear()  # Teams is back: its retries go through

            def teams_keys() -> list[str]:
                return [m.key() for c in teams.channels.values() if incident_id.lower() in c.name for m in c.messages]

            await until(lambda: welcomed(teams_keys()), "the Teams channel's welcome once Teams is back")
            await until(lambda: set(teams_keys()) >= set(slack_keys()), "Teams catching up with Slack's posts")

        assert len(teams_keys()) == len(set(teams_keys())), "each post once"
        assert len([c for c in teams.channels.values() if incident_id.lower() in c.name]) == 1
