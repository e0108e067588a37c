"""The Teams endpoint: an activity with a valid Bot Framework token acts as the mapped person through the same
Updates as the CLI; a forged, expired or misdirected token is 401 and decides nothing; an unmapped user is
refused; an activity Teams delivers again is applied once."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from temporalio.testing import WorkflowEnvironment

from client.decide import incident_decision, query_state
from settings import Settings
from starter.http.app import create_app
from tests.conftest import run_under
from tests.fakes.teams import FakeTeams
from worker import build_worker
from workflows.contracts.policy import Policy
from workflows.incident.model import IncidentState, ProgressNote

# The example policy's people with a Teams id each: the service maps Teams users by it.
TEAMS_IDS = {"alice": "aad-alice", "bob": "aad-bob", "gina": "aad-gina"}


def on_teams(policy: Policy) -> Policy:
    raw = policy.model_dump()
    for person, teams_id in TEAMS_IDS.items():
        raw["people"][person]["teams_user_id"] = teams_id
    return Policy.model_validate(raw)


@pytest.fixture
async def teams() -> AsyncIterator[FakeTeams]:
    async with FakeTeams() as fake:
        yield fake


@pytest.fixture
async def service(
    dev_env: WorkflowEnvironment, settings: Settings, example_policy: Policy, teams: FakeTeams
) -> AsyncIterator[httpx.AsyncClient]:
    policy = run_under(settings, on_teams(example_policy))  # the workers run only what their policy file holds
    app = create_app(teams.configure(settings), client=dev_env.client, policy=policy)
    async with (
        build_worker(dev_env.client, settings),
        httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://webhook") as client,
    ):
        yield client


async def send(service: httpx.AsyncClient, teams: FakeTeams, activity: dict[str, Any]) -> httpx.Response:
    headers = {"Authorization": f"Bearer {teams.token_for()}"}
    return await service.post("/teams/messages", json=activity, headers=headers)


def card_action(teams: FakeTeams, user: str, verb: str, **data: Any) -> dict[str, Any]:
    """Action.Execute on an Adaptive Card, as Teams sends it (invoke adaptiveCard/action)."""
    action = {"type": "Action.Execute", "verb": verb, "data": data}
    return teams.activity(user, invoke="adaptiveCard/action", value={"action": action})


async def open_incident(service: httpx.AsyncClient) -> str:
    alert = {"dedup_key": uuid.uuid4().hex, "title": "Checkout is failing", "severity": "SEV2", "service": "checkout"}
    answer = await service.post("/alerts/generic", json=alert)
    assert answer.status_code == 202
    incident_id: str = answer.json()["incidents"][0]
    return incident_id


async def state_of(env: WorkflowEnvironment, incident_id: str) -> IncidentState:
    return await query_state(env.client, incident_id)


async def test_a_card_action_acknowledges_as_the_mapped_person(
    service: httpx.AsyncClient, teams: FakeTeams, dev_env: WorkflowEnvironment
) -> None:
    incident_id = await open_incident(service)

    answer = await send(service, teams, card_action(teams, "aad-bob", "acknowledge", incident_id=incident_id))

    assert answer.status_code == 200 and answer.json()["statusCode"] == 200
    assert incident_id in answer.json()["value"]
    assert (await state_of(dev_env, incident_id)).acknowledged_by == "bob"


@pytest.mark.parametrize("case", ["forged", "expired", "other_app", "unknown_key", "none"])
async def test_a_card_action_with_a_bad_token_is_401_and_decides_nothing(
    service: httpx.AsyncClient, teams: FakeTeams, dev_env: WorkflowEnvironment, case: str
) -> None:
    incident_id = await open_incident(service)
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = {
        "forged": teams.token_for(key=other_key),  # the published key's id, another key's signature
        "expired": teams.token_for(expires_in=-600),
        "other_app": teams.token_for(audience="someone-elses-bot"),
        "unknown_key": teams.token_for(key=other_key, kid="not-published"),
        "none": "",
    }[case]
    activity = card_action(teams, "aad-bob", "acknowledge", incident_id=incident_id)

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    answer = await service.post("/teams/messages", json=activity, headers=headers)

    assert answer.status_code == 401, answer.text
    assert (await state_of(dev_env, incident_id)).acknowledged_by is None


async def test_declare_in_a_channel_opens_an_incident_and_the_bot_answers(
    service: httpx.AsyncClient, teams: FakeTeams
) -> None:
    activity = teams.activity(
        "aad-alice",
        text="<at>incidents</at> declare Checkout pages are blank",
        entities=[{"type": "mention", "text": "<at>incidents</at>", "mentioned": {"id": "28:bot"}}],
    )

    answer = await send(service, teams, activity)

    assert answer.status_code == 200
    for _ in range(100):  # the answer goes out after the response, as Teams wants
        if teams.replies:
            break
        await asyncio.sleep(0.05)
    (reply,) = teams.replies
    assert reply["reply_to"] == activity["id"] and reply["conversation"] == activity["conversation"]["id"]
    shown = reply["attachments"][0]["content"]["body"][0]["text"]
    assert "alice declared INC-" in shown and "Checkout pages are blank" in shown


async def test_an_unmapped_teams_user_is_refused(
    service: httpx.AsyncClient, teams: FakeTeams, dev_env: WorkflowEnvironment
) -> None:
    incident_id = await open_incident(service)

    answer = await send(service, teams, card_action(teams, "aad-stranger", "acknowledge", incident_id=incident_id))

    assert "not a person in the incident policy" in answer.json()["value"]
    assert (await state_of(dev_env, incident_id)).acknowledged_by is None


async def test_the_rules_refuse_as_for_the_cli(service: httpx.AsyncClient, teams: FakeTeams) -> None:
    incident_id = await open_incident(service)
    resolve = {"overview": "back", "how_resolved": "rolled back", "prevention": "canary"}

    answer = await send(service, teams, card_action(teams, "aad-gina", "resolve", incident_id=incident_id, **resolve))

    assert "gina" in answer.json()["value"]


async def test_an_activity_teams_delivers_again_is_applied_once(
    service: httpx.AsyncClient, teams: FakeTeams, dev_env: WorkflowEnvironment
) -> None:
    incident_id = await open_incident(service)
    submit = teams.activity(
        "aad-bob", value={"decision": "progress_note", "incident_id": incident_id, "text": "rolled back the deploy"}
    )

    for _ in range(2):
        assert (await send(service, teams, submit)).status_code == 200
    await asyncio.sleep(0.5)

    state = await state_of(dev_env, incident_id)
    notes = [e.text for e in state.timeline if e.kind == incident_decision(ProgressNote)]
    assert len(notes) == 1 and "rolled back the deploy" in notes[0]


async def test_the_acknowledge_button_on_a_teams_page_acknowledges_as_whoever_clicks_it(
    dev_env: WorkflowEnvironment, settings: Settings, example_policy: Policy, teams: FakeTeams
) -> None:
    raw = on_teams(example_policy).model_dump(mode="json")
    raw["response"]["chats"] = ["teams"]
    for tier in raw["escalation"]["tiers"]:
        tier["channels"] = ["page", "teams"]
    policy = run_under(settings, Policy.model_validate(raw))
    on_teams_settings = teams.configure(settings)
    app = create_app(on_teams_settings, client=dev_env.client, policy=policy)
    async with (
        build_worker(dev_env.client, on_teams_settings),
        httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://webhook") as service,
    ):
        alert = {"dedup_key": uuid.uuid4().hex, "title": "Checkout is down", "severity": "SEV1", "service": "checkout"}
        incident_id = (await service.post("/alerts/generic", json=alert)).json()["incidents"][0]
        paged = await until_paged(teams)
        (person,) = [p for p, aad in TEAMS_IDS.items() if aad == paged]
        (button,) = [b for m in teams.dms(paged) for b in m.buttons()]
        assert (button["verb"], button["data"]) == ("acknowledge", {"incident_id": incident_id, "via": "Teams"})

        clicked = teams.activity(paged, invoke="adaptiveCard/action", value={"action": button})
        answer = await send(service, teams, clicked)

        assert answer.json()["value"].startswith(f"{person}: ")
        assert (await state_of(dev_env, incident_id)).acknowledged_by == person


async def until_paged(teams: FakeTeams) -> str:
    """The Teams user whose chat with the bot got the first tier's page."""
    for _ in range(200):
        for user in TEAMS_IDS.values():
            if any(m.buttons() for m in teams.dms(user)):
                return user
        await asyncio.sleep(0.05)
    raise AssertionError(f"no page with a button reached Teams: {teams.chats}")


async def test_a_message_loop_card_reaches_the_comms_workflow(
    service: httpx.AsyncClient, teams: FakeTeams, dev_env: WorkflowEnvironment
) -> None:
    incident_id = await open_incident(service)
    step = {"incident_id": incident_id, "message_id": "investigation/internal_stakeholders"}
    refused = await send(service, teams, card_action(teams, "aad-alice", "approve_send", **step))
    assert f"{incident_id} is not a business incident" in refused.json()["value"]
    await send(service, teams, card_action(teams, "aad-alice", "classify", incident_id=incident_id, kind="incident"))
    for _ in range(50):  # confirmation runs in the incident's main loop
        if (await state_of(dev_env, incident_id)).confirmed:
            break
        await asyncio.sleep(0.1)
    await send(service, teams, card_action(teams, "aad-alice", "trigger_business_incident", incident_id=incident_id))
    # The incident names its loop now: the step reaches it and its validator answers (nothing is drafted yet).
    for _ in range(50):
        said = (await send(service, teams, card_action(teams, "aad-alice", "approve_send", **step))).json()["value"]
        if "not a business incident" not in said and "not running yet" not in said:
            break
        await asyncio.sleep(0.1)
    assert "business incident" not in said and "went wrong" not in said, said
