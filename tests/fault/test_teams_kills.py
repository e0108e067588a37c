"""A SEV1 on a Teams organisation, from its alert to its close, with every decision a Teams card's action sent to
the HTTP service, while worker processes are killed at random: one channel per incident, archived at the close,
no post or direct message twice (by key), every decision applied once.

The workers are real processes (`python -m worker`, as tests/fault/test_worker_kills.py starts them) against a
fake Teams; the HTTP service runs in this process and is sent what Teams would send, each card action with a
Bot Framework token the fake signs. A person whose action got no answer in time sends it again (Teams delivers
the same activity again); one ahead of the incident clicks again a moment later.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
import uuid
from collections import Counter
from typing import Any

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from client.alerts import send_alert
from settings import Settings
from starter.http.app import create_app
from tests.conftest import run_under
from tests.fakes.teams import FakeTeams
from tests.fault.test_worker_kills import NOT_YET, Workers, drill_policy, environment, kill_at_random, snapshot, until
from tests.signing import write_keys_file
from workflows.contracts.policy import Policy, Tier
from workflows.contracts.temporal.ids import incident_id_for
from workflows.contracts.vocabulary import Channel, Severity
from workflows.incident.model import AlertEvent, IncidentState

pytestmark = pytest.mark.fault

INCIDENTS = 2
WORKERS = 2
PACE = (1.0, 3.0)  # seconds between one person's clicks, at random
# Each card: who clicks it, its verb (a decision's name in the registry) and its data.
CARDS: list[tuple[str, str, dict[str, Any]]] = [
    ("bob", "acknowledge", {}),
    ("alice", "status_update", {"text": "Rolling back release 42"}),
    ("carol", "approve_statement", {"statement_id": "S1"}),
    (
        "alice",
        "resolve",
        {"overview": "Checkout answered 500", "how_resolved": "Rolled back release 42", "prevention": "Canary"},
    ),
    ("carol", "approve_statement", {"statement_id": "S2"}),
    ("alice", "review_held", {"notes": "Held with the team", "root_cause": "A bad deploy"}),
    ("alice", "publish_postmortem", {"url": "https://wiki.example.com/pm/checkout"}),
    ("alice", "close", {}),
]
NO_ANSWER = ("got no answer from Temporal", "did not confirm the decision")


def teams_policy() -> Policy:
    """The fault test's policy, on Teams: every person has a Teams id, the chat is Teams, tiers reach by it."""
    raw = drill_policy().model_dump(mode="json")
    for person_id, person in raw["people"].items():
        person["teams_user_id"] = f"aad-{person_id}"
    raw["response"]["chats"] = [Channel.TEAMS.value]
    raw["escalation"]["tiers"] = [
        Tier(notify=["role:responder"], channels=[Channel.PAGE, Channel.TEAMS], wait_minutes=600).model_dump(),
        Tier(notify=["role:cto"], channels=[Channel.PAGE, Channel.TEAMS], wait_minutes=600).model_dump(),
    ]
    return Policy.model_validate(raw)


async def answer_to(teams: FakeTeams, activity_id: str) -> str:
    """The bot's answer to an activity, once it has posted it in the conversation."""
    await until(lambda: any(r["reply_to"] == activity_id for r in teams.replies), "the bot's answer", 240)
    reply = next(r for r in reversed(teams.replies) if r["reply_to"] == activity_id)
    return str(reply["attachments"][0]["content"]["body"][0]["text"])


async def click(
    http: httpx.AsyncClient, teams: FakeTeams, person: str, verb: str, data: dict[str, Any], incident_id: str
) -> str:
    """A person clicks a card's button until the incident takes the decision; what the bot answered last."""
    action = {"type": "Action.Execute", "verb": verb, "data": {"incident_id": incident_id, **data}}
    activity = teams.activity(f"aad-{person}", invoke="adaptiveCard/action", value={"action": action})
    deadline = time.monotonic() + 240
    while True:
        answer = await http.post(
            "/teams/messages", json=activity, headers={"Authorization": f"Bearer {teams.token_for()}"}
        )
        assert answer.status_code == 200, answer.text
        said = str(answer.json()["value"])
        if said == "Working on it…":
            said = await answer_to(teams, str(activity["id"]))
        if said.startswith(f"{person}: "):
            return said
        assert time.monotonic() < deadline, f"{verb} on {incident_id}: {said}"
        if any(reason in said for reason in NO_ANSWER):
            continue  # Teams delivers the same activity again: the same update id
        assert any(reason in said for reason in NOT_YET), f"{verb} on {incident_id}: {said}"
        await asyncio.sleep(0.5)
        activity = teams.activity(f"aad-{person}", invoke="adaptiveCard/action", value={"action": action})


async def test_seed003_sev1_on_teams_through_cards_delivers_once_across_30_worker_kills(
    dev_env: WorkflowEnvironment, tmp_path: Any
) -> None:
    rng = random.Random(29)
    policy = teams_policy()
    users = {person.teams_user_id for person in policy.people.values()}
    async with FakeTeams(users=users) as teams:
        data, code = tmp_path / "run", tmp_path / "code"
        data.mkdir()
        code.mkdir()
        settings = teams.configure(
            Settings(
                _env_file=None,
                temporal_address=dev_env.client.service_client.config.target_host,
                temporal_namespace=dev_env.client.namespace,
                incident_task_queue=f"teams-fault-{uuid.uuid4().hex[:8]}",
                outbox_path=data / "outbox.jsonl",
                outbox_delivery=True,  # pages and e-mail: the outbox; this test is about Teams
                incident_log_dir=data / "logs",
                decision_keys=write_keys_file(data / "decision-keys"),
                decision_signing_key=data / "decision-signing-key.pem",
                incident_policy=data / "policy.json",
            )
        )
        policy = run_under(settings, policy)
        app = create_app(settings, client=dev_env.client, policy=policy)  # its signing key joins decision-keys
        workers = Workers(environment(settings, snapshot(code)), data)
        workers.start(WORKERS)
        driven = asyncio.Event()
        killer = asyncio.create_task(kill_at_random(workers, rng, driven))
        incidents: list[str] = []
        try:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://service") as http:

                async def live_through(n: int) -> str:
                    await asyncio.sleep(n * 3)
                    event = AlertEvent(
                        source="teams-fault",
                        dedup_key=f"checkout-{n}",
                        fingerprint=f"checkout-{n}",
                        title=f"Checkout drill {n}",
                        severity=Severity.SEV1,
                        service="checkout",
                    )
                    incident_id = incident_id_for(event.source, event.dedup_key)
                    await send_alert(dev_env.client, settings, policy, event)
                    await until(
                        lambda: any(incident_id.lower() in c.name for c in teams.channels.values()),
                        f"the Teams channel of {incident_id}",
                        within=240,
                    )
                    for person, verb, fields in CARDS:
                        await asyncio.sleep(rng.uniform(*PACE))
                        await click(http, teams, person, verb, fields, incident_id)
                    return incident_id

                incidents = list(await asyncio.gather(*(live_through(n) for n in range(INCIDENTS))))
            driven.set()
            await killer
            states = {
                incident: await asyncio.wait_for(
                    dev_env.client.get_workflow_handle(incident, result_type=IncidentState).result(), timeout=240
                )
                for incident in incidents
            }
            assert not workers.crashed(), workers.crashed()
        finally:
            killer.cancel()
            await workers.stop()

        assert len(workers.kills) >= 30
        for incident, state in states.items():
            channels = [c for c in teams.channels.values() if re.search(incident.lower(), c.name)]
            assert len(channels) == 1, f"{incident}: {[c.name for c in channels]}"
            (channel,) = channels
            assert channel.archived and channel.members and channel.members <= users
            keys = [m.key() for m in channel.messages]
            assert all(keys) and not [k for k, n in Counter(keys).items() if n > 1], keys
            assert any(k.endswith(":channel:welcome") for k in keys)
            expected = Counter(verb for _, verb, _ in CARDS)
            assert {name: state.decisions_taken.get(name, 0) for name in expected} == dict(expected), incident
        for chat, messages in teams.chats.items():
            keys = [m.key() for m in messages]
            assert not [k for k, n in Counter(keys).items() if n > 1], f"{chat}: {keys}"
        assert any(teams.chats.values()), "people were told in their Teams chats"
