"""The Slack endpoint: a correctly signed request acts as the mapped person through the same Updates as
the CLI; a bad or stale signature is 401 and changes nothing; an unmapped user is refused; a request Slack
sends again is applied once."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from urllib.parse import urlencode

import httpx
import pytest
from aiohttp import web
from pydantic import SecretStr
from temporalio.testing import WorkflowEnvironment

from client.decide import incident_decision, query_state, send_decision
from policy_file import load_policy
from settings import ROOT, Settings
from starter.http.app import create_app
from starter.http.slack import sign
from tests.conftest import run_under
from tests.fakes.peer import FakePeer
from tests.workflows.helpers import outbox
from workflows.contracts.policy import Policy
from workflows.contracts.vocabulary import IncidentKind
from workflows.incident.model import AssignTask, Classify, IncidentState, ProgressNote, TriggerBusinessIncident

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"


@pytest.fixture
async def slack(
    dev_env: WorkflowEnvironment, settings: Settings, example_policy: Policy, worker: None
) -> AsyncIterator[httpx.AsyncClient]:
    signed = settings.model_copy(update={"slack_signing_secret": SecretStr(SECRET)})
    app = create_app(signed, client=dev_env.client, policy=example_policy)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://webhook") as client:
        yield client


@pytest.fixture
async def response_url() -> AsyncIterator[FakePeer]:
    """Stands in for Slack's response_url: records what the endpoint posts back."""

    async def accept(_: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    peer = FakePeer()
    peer.app.router.add_post("/response", accept)
    async with peer:
        yield peer


def signed_post(body: bytes, *, timestamp: int | None = None, secret: str = SECRET) -> dict[str, str]:
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    return {
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": sign(secret, stamp, body),
        "Content-Type": "application/x-www-form-urlencoded",
    }


def command(text: str, user: str = "U0BOB", response_url: str = "", trigger_id: str = "") -> bytes:
    return urlencode(
        {
            "command": "/incident",
            "text": text,
            "user_id": user,
            "response_url": response_url,
            "trigger_id": trigger_id or uuid.uuid4().hex,
        }
    ).encode()


async def open_incident(slack: httpx.AsyncClient) -> str:
    alert = {"dedup_key": uuid.uuid4().hex, "title": "Checkout is failing", "severity": "SEV2", "service": "checkout"}
    answer = await slack.post("/alerts/generic", json=alert)
    assert answer.status_code == 202
    incident_id: str = answer.json()["incidents"][0]
    return incident_id


async def state_of(env: WorkflowEnvironment, incident_id: str) -> IncidentState:
    return await query_state(env.client, incident_id)


async def test_signed_slash_command_acknowledges_as_the_mapped_person(
    slack: httpx.AsyncClient, dev_env: WorkflowEnvironment
) -> None:
    incident_id = await open_incident(slack)
    body = command(f"ack {incident_id} looking at it")
    answer = await slack.post("/slack/commands", content=body, headers=signed_post(body))
    assert answer.status_code == 200
    assert answer.json()["response_type"] == "in_channel" and incident_id in answer.json()["text"]
    assert (await state_of(dev_env, incident_id)).acknowledged_by == "bob"


@pytest.mark.parametrize("case", ["bad_signature", "stale", "replayed_with_other_body", "unsigned"])
async def test_bad_or_stale_signature_is_401_and_changes_nothing(
    slack: httpx.AsyncClient, dev_env: WorkflowEnvironment, case: str
) -> None:
    incident_id = await open_incident(slack)
    body = command(f"ack {incident_id}")
    headers = {
        "bad_signature": signed_post(body, secret="not-the-secret"),
        "stale": signed_post(body, timestamp=int(time.time()) - 6 * 60),
        "replayed_with_other_body": signed_post(command(f"ack {incident_id} something else")),
        "unsigned": {"Content-Type": "application/x-www-form-urlencoded"},
    }[case]
    for path in ("/slack/commands", "/slack/interactions"):
        answer = await slack.post(path, content=body, headers=headers)
        assert answer.status_code == 401, (path, answer.text)
    assert (await state_of(dev_env, incident_id)).acknowledged_by is None


async def test_unmapped_slack_user_is_refused_with_an_ephemeral_message(
    slack: httpx.AsyncClient, dev_env: WorkflowEnvironment
) -> None:
    incident_id = await open_incident(slack)
    body = command(f"ack {incident_id}", user="U0STRANGER")
    answer = await slack.post("/slack/commands", content=body, headers=signed_post(body))
    assert answer.status_code == 200 and answer.json()["response_type"] == "ephemeral"
    assert "not a person in the incident policy" in answer.json()["text"]
    assert (await state_of(dev_env, incident_id)).acknowledged_by is None


async def test_validator_refusal_comes_back_only_to_the_user(slack: httpx.AsyncClient) -> None:
    incident_id = await open_incident(slack)
    body = command(f"resolve {incident_id} checkout back | rolled back deploy | canary checks", user="U0GINA")
    answer = await slack.post("/slack/commands", content=body, headers=signed_post(body))
    assert answer.status_code == 200 and answer.json()["response_type"] == "ephemeral"
    assert "gina" in answer.json()["text"]


async def test_unknown_incident_and_bad_grammar_are_explained(slack: httpx.AsyncClient) -> None:
    for text, expected in (
        ("ack INC-NOSUCH1", "no incident INC-NOSUCH1"),
        ("frobnicate", "unknown command"),
        ("phase INC-AAAAAAAA sideways", "unknown phase"),
        ("help", "Usage"),
    ):
        body = command(text)
        answer = await slack.post("/slack/commands", content=body, headers=signed_post(body))
        assert answer.status_code == 200 and expected in answer.json()["text"], (text, answer.json())


async def test_declare_opens_an_incident_reported_by_the_person(
    slack: httpx.AsyncClient, dev_env: WorkflowEnvironment
) -> None:
    body = command("declare Checkout <!channel> is down", user="U0ALICE")
    answer = await slack.post("/slack/commands", content=body, headers=signed_post(body))
    text = answer.json()["text"]
    assert text.startswith("alice declared INC-") and "&lt;!channel&gt;" in text
    incident_id = text.split()[2].rstrip(":")
    state = await state_of(dev_env, incident_id)
    assert state.source == "manual" and state.title == "Checkout <!channel> is down"


async def test_button_click_acts_and_reports_on_response_url(
    slack: httpx.AsyncClient, dev_env: WorkflowEnvironment, response_url: FakePeer
) -> None:
    incident_id = await open_incident(slack)
    payload = {
        "type": "block_actions",
        "user": {"id": "U0ALICE"},
        "response_url": f"{response_url.url}/response",
        "actions": [{"action_id": "acknowledge", "value": json.dumps({"incident_id": incident_id, "note": "on it"})}],
    }
    body = urlencode({"payload": json.dumps(payload)}).encode()
    answer = await slack.post("/slack/interactions", content=body, headers=signed_post(body))
    assert answer.status_code == 200
    state = await state_of(dev_env, incident_id)
    assert state.acknowledged_by == "alice"
    (posted,) = response_url.calls("/response")
    assert incident_id in posted.params["text"]


async def click(
    slack: httpx.AsyncClient,
    response_url: FakePeer,
    user: str,
    action_id: str,
    value: dict[str, str],
    *,
    action_ts: str = "",
    retry: int = 0,
) -> str:
    """A signed button click (`retry`: Slack sending it again); the text the endpoint posted to response_url."""
    before = len(response_url.calls("/response"))
    action = {"action_id": action_id, "value": json.dumps(value), "action_ts": action_ts or f"{time.time():.6f}"}
    payload = {
        "type": "block_actions",
        "user": {"id": user},
        "response_url": f"{response_url.url}/response",
        "trigger_id": uuid.uuid4().hex,
        "actions": [action],
    }
    body = urlencode({"payload": json.dumps(payload)}).encode()
    headers = signed_post(body) | (
        {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"} if retry else {}
    )
    answer = await slack.post("/slack/interactions", content=body, headers=headers)
    assert answer.status_code == 200
    posted = response_url.calls("/response")[before:]
    assert len(posted) == 1
    text: str = posted[0].params["text"]
    return text


async def test_message_loop_buttons_reach_the_comms_workflow(
    slack: httpx.AsyncClient, dev_env: WorkflowEnvironment, response_url: FakePeer
) -> None:
    incident_id = await open_incident(slack)
    step = {"incident_id": incident_id, "message_id": "investigation/internal_stakeholders"}
    refused = await click(slack, response_url, "U0ALICE", "approve_send", step)
    assert f"{incident_id} is not a business incident" in refused, refused
    await send_decision(dev_env.client, incident_id, Classify(actor="alice", kind=IncidentKind.INCIDENT))
    for _ in range(50):  # confirmation (channel, pages, investigation) runs in the incident's main loop
        if (await state_of(dev_env, incident_id)).confirmed:
            break
        await asyncio.sleep(0.1)
    await send_decision(dev_env.client, incident_id, TriggerBusinessIncident(actor="alice"))
    # The incident names its loop now: the step reaches it and its validator answers (nothing is drafted yet).
    for _ in range(50):
        text = await click(slack, response_url, "U0ALICE", "approve_send", step)
        if "not a business incident" not in text and "not running yet" not in text:
            break
        await asyncio.sleep(0.1)
    assert "business incident" not in text and "went wrong" not in text, text


NOTE = incident_decision(ProgressNote)  # the timeline records a decision under its name


def progress_notes(state: IncidentState) -> list[str]:
    return [e.text for e in state.timeline if e.kind == NOTE]


async def test_a_click_slack_sends_again_is_applied_once(
    slack: httpx.AsyncClient, dev_env: WorkflowEnvironment, response_url: FakePeer
) -> None:
    incident_id = await open_incident(slack)
    note = {"incident_id": incident_id, "text": "rolled back the deploy"}
    first = await click(slack, response_url, "U0BOB", NOTE, note, action_ts="1700000000.000100")
    again = await click(slack, response_url, "U0BOB", NOTE, note, action_ts="1700000000.000100", retry=1)
    assert first == again and "bob" in first
    assert len(progress_notes(await state_of(dev_env, incident_id))) == 1
    await click(slack, response_url, "U0BOB", NOTE, note, action_ts="1700000009.000200")  # a second click
    assert len(progress_notes(await state_of(dev_env, incident_id))) == 2


async def test_a_slash_command_slack_sends_again_is_applied_once(
    slack: httpx.AsyncClient, dev_env: WorkflowEnvironment
) -> None:
    incident_id = await open_incident(slack)
    body = command(f"note {incident_id} rolled back the deploy", trigger_id="13345224609.738474920.8088930838d88")
    answers = [
        await slack.post(
            "/slack/commands", content=body, headers=signed_post(body) | ({"X-Slack-Retry-Num": "1"} if retry else {})
        )
        for retry in (False, True)
    ]
    assert [a.json()["response_type"] for a in answers] == ["in_channel", "in_channel"]
    assert len(progress_notes(await state_of(dev_env, incident_id))) == 1


async def test_seed000_an_extra_channel_asked_for_in_slack_exists_only_once_the_incident_commander_approves(
    slack: httpx.AsyncClient, dev_env: WorkflowEnvironment, response_url: FakePeer, settings: Settings
) -> None:
    incident_id = await open_incident(slack)
    body = command(f"channel {incident_id} db-forensics long log analysis away from the main channel")
    answer = await slack.post("/slack/commands", content=body, headers=signed_post(body))
    assert answer.status_code == 200 and "C1" in answer.json()["text"]
    s = await state_of(dev_env, incident_id)
    assert any("extra channel db-forensics (C1)" in w for w in s.waiting_on)
    request = {"incident_id": incident_id, "request_id": "C1"}
    refused = await click(slack, response_url, "U0BOB", "approve_channel", request)
    assert "only the incident commander or communications lead" in refused
    await click(slack, response_url, "U0ALICE", "approve_channel", request)
    made: list[str] = []
    for _ in range(100):  # the workflow makes it after the approval's answer
        made = [e["payload"]["name"] for e in outbox(settings, "slack", "channel") if "forens" in e["payload"]["name"]]
        if made:
            break
        await asyncio.sleep(0.1)
    assert made == [f"inc-{incident_id.lower()[4:]}-db-forensics"]
    assert (await state_of(dev_env, incident_id)).channel_requests[0].decided_by == "alice"


async def test_seed001_the_owner_answers_an_evaluation_point_by_button_and_by_command(
    dev_env: WorkflowEnvironment, settings: Settings, worker: None, response_url: FakePeer
) -> None:
    """Seed 001's evaluation point, answered in Slack: the Customer Service Manager owns the local incident."""
    policy = run_under(settings, load_policy(ROOT / "examples" / "policies" / "001-process-flow.toml"))
    signed = settings.model_copy(update={"slack_signing_secret": SecretStr(SECRET)})
    app = create_app(signed, client=dev_env.client, policy=policy)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://webhook") as slack:
        alert = {"dedup_key": uuid.uuid4().hex, "title": "Portal slow", "severity": "SEV3", "service": "portal"}
        incident_id = (await slack.post("/alerts/generic", json=alert)).json()["incidents"][0]
        await click(slack, response_url, "U01ANA", "classify", {"incident_id": incident_id, "kind": "incident"})
        body = command(f"clients {incident_id} later only slowness so far", user="U01SARA")
        answer = await slack.post("/slack/commands", content=body, headers=signed_post(body))
        assert "clients are not told now: only slowness so far" in answer.json()["text"]
        now = {"incident_id": incident_id, "tell": True, "reason": "it lasts"}
        assert "only the incident commander" in await click(slack, response_url, "U01TEO", "evaluate_clients", now)
        told = await click(slack, response_url, "U01SARA", "evaluate_clients", now)
        assert "tell clients now (all_customers): it lasts" in told
    s = await state_of(dev_env, incident_id)
    assert [(e.tell, e.decided_by, e.reason) for e in s.evaluations] == [
        (False, "sara", "only slowness so far"),
        (True, "sara", "it lasts"),
    ]


async def test_seed003_a_tasks_owner_answers_the_plan_from_slack(
    slack: httpx.AsyncClient, dev_env: WorkflowEnvironment
) -> None:
    incident_id = await open_incident(slack)
    await send_decision(dev_env.client, incident_id, AssignTask(actor="alice", title="restore replica", assignee="bob"))
    for text in (f"task {incident_id} update t1 replica at 40 %", f"task {incident_id} done T1 replica restored"):
        body = command(text)
        answer = await slack.post("/slack/commands", content=body, headers=signed_post(body))
        assert answer.status_code == 200 and "T1" in answer.json()["text"], answer.text
    [task] = (await state_of(dev_env, incident_id)).tasks
    assert task.done and [n.text for n in task.notes] == ["replica at 40 %", "replica restored"]
    body = command(f"task {incident_id} finish T1")
    assert "needs update or done" in (await slack.post("/slack/commands", content=body, headers=signed_post(body))).text
