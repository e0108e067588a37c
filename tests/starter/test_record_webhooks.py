"""A resolve or a reassignment in the Jira issue (or the ServiceNow incident) of an incident comes back as that
person's decision, through a verified webhook, and is refused like any other when they may not take it."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import httpx
from pydantic import SecretStr
from temporalio.testing import WorkflowEnvironment

from client.decide import query_state
from settings import Settings
from starter.http.app import create_app
from starter.http.registers import jira_signature
from tests.conftest import run_under
from tests.fakes.jira import SERVICE_ACCOUNT, FakeJira
from tests.fakes.servicenow import FakeServiceNow
from tests.workflows.helpers import alert, make_policy, open_incident
from worker import build_worker
from workflows.contracts.policy import Policy, Records
from workflows.contracts.vocabulary import RecordHome, Role, Severity, Status

SECRET = "jira-webhook-secret"
TOKEN = "servicenow-webhook-token"
ACCOUNTS = {"alice": "acc-alice", "bob": "acc-bob"}


def policy(home: RecordHome) -> Policy:
    base = make_policy()
    people = dict(base.people)
    for name, account in ACCOUNTS.items():
        people[name] = people[name].model_copy(update={"jira_account_id": account, "servicenow_user": name})
    return base.model_copy(update={"people": people, "records": Records(home=home, project="OPS")})


def jira_event(label: str, account: str, *items: dict[str, str]) -> bytes:
    return json.dumps(
        {
            "webhookEvent": "jira:issue_updated",
            "user": {"accountId": account},
            "issue": {"key": "OPS-1", "fields": {"labels": [label], "resolution": {"name": "Done"}}},
            "changelog": {"items": list(items)},
        }
    ).encode()


def signed(body: bytes, secret: str = SECRET) -> dict[str, str]:
    return {
        "X-Hub-Signature": jira_signature(secret, body),
        "X-Atlassian-Webhook-Identifier": uuid.uuid4().hex,
        "Content-Type": "application/json",
    }


async def until(condition: Any, within: float = 60) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        await asyncio.sleep(0.05)


async def test_a_resolve_made_in_jira_comes_back_as_that_persons_decision(
    dev_env: WorkflowEnvironment, settings: Settings
):
    """Alice resolves the issue in Jira with her own account; Jira's webhook brings it back as her decision. The
    orchestrator's own changes to the issue come back too, and are ignored."""
    async with FakeJira() as jira:
        configured = jira.configure(settings).model_copy(update={"jira_webhook_secret": SecretStr(SECRET)})
        chosen = run_under(configured, policy(RecordHome.JIRA))
        app = create_app(configured, client=dev_env.client, policy=chosen)
        async with (
            build_worker(dev_env.client, configured),
            httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://webhook") as http,
        ):

            async def deliver(body: bytes, headers: dict[str, str]) -> int:
                return (await http.post("/records/jira", content=body, headers=headers)).status_code

            jira.subscribe(deliver, SECRET)
            handle = await open_incident(dev_env, configured, chosen, alert(severity=Severity.SEV1))
            await until(lambda: any(i["fields"]["status"]["name"] == "In Progress" for i in jira.issues.values()))
            (issue,) = jira.issues.values()
            path = f"/rest/api/2/issue/{issue['key']}/transitions"
            async with httpx.AsyncClient(
                base_url=jira.url, headers=jira.person("alice@example.com", "a", "acc-alice")
            ) as alice:
                offered = (await alice.get(path)).json()["transitions"]
                resolve = next(t["id"] for t in offered if t["to"]["name"] == "Resolved")
                moved = await alice.post(
                    path, json={"transition": {"id": resolve}, "fields": {"resolution": {"name": "Fixed"}}}
                )
            await until(lambda: any(account == "acc-alice" for account, _ in jira.delivered))  # answered: decided
            s = await query_state(dev_env.client, handle.id)
            await jira.settled()
            await handle.terminate("test over")

    assert moved.status_code == 204
    assert (s.status, s.resolved_by) == (Status.RESOLVED, "alice")
    assert s.resolution["how_resolved"] == "Fixed"
    assert [e.actor for e in s.timeline if e.kind == "resolve"] == ["alice"]
    assert ("acc-alice", 200) in jira.delivered
    ours = [status for account, status in jira.delivered if account == SERVICE_ACCOUNT]
    assert ours and set(ours) == {202}


async def test_jira_resolve_comes_back_as_the_persons_decision_and_is_refused_for_one_who_may_not(
    dev_env: WorkflowEnvironment, settings: Settings
):
    async with FakeJira() as jira:
        configured = jira.configure(settings).model_copy(update={"jira_webhook_secret": SecretStr(SECRET)})
        chosen = run_under(configured, policy(RecordHome.JIRA))
        app = create_app(configured, client=dev_env.client, policy=chosen)
        async with (
            build_worker(dev_env.client, configured),
            httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://webhook") as http,
        ):
            handle = await open_incident(dev_env, configured, chosen, alert(severity=Severity.SEV1))
            await until(lambda: bool(jira.issues))
            (issue,) = jira.issues.values()
            label = issue["fields"]["labels"][0]
            resolved = {"field": "status", "fromString": "In Progress", "toString": "Resolved"}

            forged = jira_event(label, "acc-alice", resolved)
            unsigned = await http.post("/records/jira", content=forged, headers=signed(forged, "guessed"))
            by_bob = jira_event(label, "acc-bob", resolved)  # a responder: only the IC or comms lead resolves
            refused = await http.post("/records/jira", content=by_bob, headers=signed(by_bob))
            s = await query_state(dev_env.client, handle.id)
            assert s.status is Status.OPEN

            reassigned = jira_event(label, "acc-alice", {"field": "assignee", "to": "acc-bob"})
            assigned = await http.post("/records/jira", content=reassigned, headers=signed(reassigned))
            again = jira_event(label, "acc-bob", resolved)  # bob is the Incident Commander now
            taken = await http.post("/records/jira", content=again, headers=signed(again))
            s = await query_state(dev_env.client, handle.id)
            await handle.terminate("test over")

    assert unsigned.status_code == 401
    assert refused.status_code == 409 and "bob" in refused.json()["error"]
    assert assigned.status_code == 200 and s.assigned[Role.INCIDENT_COMMANDER] == "bob"
    assert taken.status_code == 200, taken.text
    assert (s.status, s.resolved_by) == (Status.RESOLVED, "bob")
    assert any(e.kind == "resolve" and e.actor == "bob" for e in s.timeline)
    assert s.resolution["overview"] == "Resolved in Jira (OPS-1)"


async def test_servicenow_resolve_comes_back_with_its_token_and_only_with_it(
    dev_env: WorkflowEnvironment, settings: Settings
):
    async with FakeServiceNow() as servicenow:
        configured = servicenow.configure(settings).model_copy(update={"servicenow_webhook_token": SecretStr(TOKEN)})
        chosen = run_under(configured, policy(RecordHome.SERVICENOW))
        app = create_app(configured, client=dev_env.client, policy=chosen)
        async with (
            build_worker(dev_env.client, configured),
            httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://webhook") as http,
        ):
            handle = await open_incident(dev_env, configured, chosen, alert(severity=Severity.SEV1))
            await until(lambda: bool(servicenow.rows))
            (row,) = servicenow.rows.values()

            def change(user: str) -> dict[str, Any]:
                return {
                    "correlation_id": row["correlation_id"],
                    "number": row["number"],
                    "updated_by": user,
                    "state": "6",
                    "close_notes": "Restarted the pool",
                    "changes": ["state"],
                    "sys_mod_count": uuid.uuid4().hex,
                }

            wrong = await http.post("/records/servicenow", json=change("alice"), headers={"Authorization": "Bearer x"})
            bearer = {"Authorization": f"Bearer {TOKEN}"}
            refused = await http.post("/records/servicenow", json=change("bob"), headers=bearer)
            taken = await http.post("/records/servicenow", json=change("alice"), headers=bearer)
            s = await query_state(dev_env.client, handle.id)
            await handle.terminate("test over")

    assert wrong.status_code == 401
    assert refused.status_code == 409 and "bob" in refused.json()["error"]
    assert taken.status_code == 200, taken.text
    assert (s.status, s.resolved_by, s.resolution["how_resolved"]) == (Status.RESOLVED, "alice", "Restarted the pool")
