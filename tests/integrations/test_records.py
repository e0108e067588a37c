"""The incident record in Jira, ServiceNow or Confluence: one per incident, kept current, its history the timeline's.

A real worker on the dev server (real time) against the fake peers. Each SEV1 runs from its alert to its
close through people's decisions; then the peer holds exactly one record, whose history is the incident's
timeline but its alert lines: each decision with who took it, the status update, the tasks, the resolution.
"""

from __future__ import annotations

import asyncio
import html
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from activities.outbox import Outbox
from activities.registers.confluence import ConfluenceActivities
from activities.registers.jira import JiraActivities
from activities.registers.linear import LinearActivities
from activities.registers.servicenow import ServiceNowActivities
from settings import Settings
from tests.fakes.confluence import FakeConfluence
from tests.fakes.jira import FakeJira
from tests.fakes.linear import TEAM, FakeLinear
from tests.fakes.servicenow import FakeServiceNow
from tests.integrations.helpers import attempt
from tests.workflows.helpers import alert, make_policy, open_incident, state
from worker import build_worker
from workflows.contracts.activity_io import (
    FollowUpRequest,
    RecordEntry,
    RecordInput,
    RecordSynced,
    RecordWrite,
    record_history,
)
from workflows.contracts.policy import FollowUps, Policy, Records
from workflows.contracts.temporal.ids import record_workflow_id
from workflows.contracts.vocabulary import IncidentKind, RecordHome, Severity, Status
from workflows.incident.model import (
    Acknowledge,
    AddActionItem,
    ApproveStatement,
    AssignTask,
    Classify,
    CloseIncident,
    CompleteTask,
    Decision,
    IncidentState,
    ProgressNote,
    PublishPostmortem,
    Resolve,
    ReviewHeld,
    StatusUpdate,
)
from workflows.records.writer import RecordWorkflow

OUTAGE = "<html><body><h1>503 Service Unavailable</h1></body></html>"
NOT_YET = (
    "is not drafted yet",
    "documentation incomplete",
    "is not confirmed",
    "wait for the Communications Lead",
    "issue yet",
)
LIFE: list[Decision] = [
    Acknowledge(actor="bob"),
    AssignTask(actor="alice", title="Roll back release 42", assignee="bob", business_impact=Severity.SEV1),
    StatusUpdate(actor="alice", text="Rolling back release 42"),
    ApproveStatement(actor="carol", statement_id="S1"),
    CompleteTask(actor="bob", task_id="T1"),
    Resolve(actor="alice", overview="Checkout answered 500", how_resolved="Rolled back", prevention="Canary deploys"),
    ApproveStatement(actor="carol", statement_id="S2"),
    ReviewHeld(actor="alice", notes="Held with the team", root_cause="A bad deploy"),
    PublishPostmortem(actor="alice", url="https://wiki.example.com/pm/checkout"),
    CloseIncident(actor="alice"),
]


async def until(condition: Callable[[], Any], *, within: float = 90) -> None:
    """Wait for what the peers received; `within` only stops a broken build from hanging."""
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        await asyncio.sleep(0.05)


async def decide(handle: WorkflowHandle[Any, IncidentState], decision: Decision) -> None:
    """As a person does: ahead of the incident (the postmortem not drafted yet), again a moment later."""
    name = {
        "Acknowledge": "acknowledge",
        "AssignTask": "assign_task",
        "StatusUpdate": "status_update",
        "ApproveStatement": "approve_statement",
        "CompleteTask": "complete_task",
        "Resolve": "resolve",
        "ReviewHeld": "review_held",
        "PublishPostmortem": "publish_postmortem",
        "CloseIncident": "close",
        "ProgressNote": "progress_note",
        "AddActionItem": "add_action_item",
        "Classify": "classify",
    }[type(decision).__name__]
    deadline = time.monotonic() + 60
    while True:
        try:
            await handle.execute_update(name, decision)
            return
        except WorkflowUpdateFailedError as failed:
            cause = failed.cause.message if isinstance(failed.cause, ApplicationError) else str(failed.cause)
            if not any(reason in cause for reason in NOT_YET) or time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.3)


def policy_for(home: RecordHome, **records: Any) -> Policy:
    policy = make_policy()
    people = dict(policy.people)
    people["alice"] = people["alice"].model_copy(
        update={"jira_account_id": "5b10ac8d82e05b22cc7d4ef5", "servicenow_user": "alice.a"}
    )
    return policy.model_copy(update={"people": people, "records": Records(home=home, project="OPS", **records)})


async def live_through(env: Any, settings: Settings, policy: Policy) -> IncidentState:
    async with build_worker(env.client, settings):
        handle = await open_incident(env, settings, policy, alert(severity=Severity.SEV1))
        for decision in LIFE:
            await decide(handle, decision)
        s = await handle.result()
        await record_written(env, s)
    assert s.status is Status.CLOSED
    return s


async def record_written(env: Any, s: IncidentState) -> RecordSynced:
    """The record's writer finishes once it has written the closed incident."""
    synced: RecordSynced = await env.client.get_workflow_handle(
        record_workflow_id(s.occurrence), result_type=RecordSynced
    ).result()
    return synced


def expected_history(s: IncidentState) -> list[str]:
    """The record's history as the incident's timeline says it: every entry but the alert lines, in order."""
    return [entry.line(s.occurrence) for entry in record_history(s.timeline)]


def assert_the_timeline_is_there(s: IncidentState, written: list[str]) -> None:
    assert written == expected_history(s)
    said = "\n".join(written)
    for fragment in (
        "acknowledge · bob",
        "assign_task · alice",
        "Rolling back release 42",
        "complete_task · bob",
        "resolve · alice",
        "review_held · alice",
        "close · alice",
    ):
        assert fragment in said, f"{fragment!r} is not in the record's history"


async def test_jira_sev1_from_alert_to_close_leaves_one_issue_with_the_timeline(dev_env, settings, jira: FakeJira):
    jira.fail("/comment", 429, {"errorMessages": ["Rate limit exceeded"]}, headers={"Retry-After": "1"})
    jira.fail("/rest/api/2/issue", 502, OUTAGE)
    configured = jira.configure(settings)

    s = await live_through(dev_env, configured, policy_for(RecordHome.JIRA))

    assert len(jira.issues) == 1
    (issue,) = jira.issues.values()
    assert s.record.record_id == issue["key"] and s.record.url.endswith(f"/browse/{issue['key']}")
    assert_the_timeline_is_there(s, jira.comments(issue["key"]))
    fields = issue["fields"]
    assert fields["status"]["name"] == "Closed" and fields["priority"]["name"] == "Highest"
    assert fields["assignee"] == {"accountId": "5b10ac8d82e05b22cc7d4ef5"}
    assert "*how_resolved*: Rolled back" in fields["description"]
    assert "T1 Roll back release 42 from bob: done" in fields["description"]


async def test_servicenow_sev1_from_alert_to_close_leaves_one_incident_with_the_timeline(
    dev_env, settings, servicenow: FakeServiceNow
):
    servicenow.fail(
        "/api/now/table/incident", 429, {"error": {"message": "Too many requests"}}, headers={"Retry-After": "1"}
    )
    configured = servicenow.configure(settings)

    s = await live_through(dev_env, configured, policy_for(RecordHome.SERVICENOW))

    assert len(servicenow.rows) == 1
    (row,) = servicenow.rows.values()
    assert row["correlation_id"] == s.occurrence and row["state"] == "7"
    assert (row["impact"], row["urgency"], row["assigned_to"]) == ("1", "1", "alice.a")
    assert_the_timeline_is_there(s, servicenow.work_notes(row["sys_id"]))


async def test_confluence_sev1_from_alert_to_close_leaves_one_page_from_the_template(
    dev_env, settings, confluence: FakeConfluence
):
    confluence.templates["4521"] = "<h1>Project incident log</h1><p>Owner: the project manager</p>"
    confluence.fail("/content", 503, OUTAGE)
    configured = confluence.configure(settings)

    s = await live_through(dev_env, configured, policy_for(RecordHome.CONFLUENCE, template_id="4521"))

    assert len(confluence.pages) == 1
    (page,) = confluence.pages.values()
    assert page["body"].startswith("<h1>Project incident log</h1><p>Owner: the project manager</p>")
    items = page["body"].partition("<h2>History</h2><ul>")[2].removesuffix("</ul>")
    written = [html.unescape(item) for item in items.removeprefix("<li>").removesuffix("</li>").split("</li><li>")]
    assert_the_timeline_is_there(s, written)
    assert "<th>status</th><td>closed</td>" in page["body"]


def edits(jira: FakeJira) -> list[Any]:
    """One per write of the record (its fields), failed or not."""
    return [c for c in jira.received if c.method == "PUT" and c.path == "/rest/api/2/issue/OPS-1"]


async def test_a_peer_down_delays_only_the_record_and_a_burst_becomes_one_write(dev_env, settings, jira: FakeJira):
    configured = jira.configure(settings)
    policy = policy_for(RecordHome.JIRA)
    async with build_worker(dev_env.client, configured):
        handle = await open_incident(dev_env, configured, policy, alert(severity=Severity.SEV1))
        await until(lambda: jira.issues and jira.comments("OPS-1"))
        jira.fail("/rest/api/2/issue/OPS-1", 503, OUTAGE, times=10**6)
        await decide(handle, Acknowledge(actor="bob"))
        for n in range(10):
            await decide(handle, ProgressNote(actor="alice", text=f"step {n}"))
        s = await state(handle)
        assert s.acknowledged_by == "bob" and not s.escalation_active  # the decisions took effect at once
        writes_before = len(edits(jira))
        jira.faults.clear()
        await until(lambda: any("step 9" in c for c in jira.comments("OPS-1")))
        writes = len(edits(jira)) - writes_before
        await handle.terminate("test over")
    said = "\n".join(jira.comments("OPS-1"))
    assert [said.count(f"step {n} ") for n in range(10)] == [1] * 10
    assert said.index("acknowledge · bob") < said.index("step 0") < said.index("step 9")
    assert writes <= 2, f"eleven decisions took {writes} writes once Jira was back"


async def test_a_long_incidents_writer_continues_as_new_and_writes_each_entry_once(dev_env, settings, jira: FakeJira):
    """The writer's history is bounded: past its limit it goes on in a new run that knows the record."""
    configured = jira.configure(settings)
    async with build_worker(dev_env.client, configured):
        handle = await open_incident(dev_env, configured, policy_for(RecordHome.JIRA), alert(severity=Severity.SEV2))
        occurrence = (await state(handle)).occurrence
        writer = await dev_env.client.start_workflow(  # as the incident would, with a limit a test reaches
            RecordWorkflow.run,
            RecordInput(incident_id=handle.id, occurrence=occurrence, history_limit=30),
            id=record_workflow_id(occurrence),
            task_queue=configured.incident_task_queue,
        )
        await decide(handle, Classify(actor="alice", kind=IncidentKind.INCIDENT))
        for n in range(12):
            await decide(handle, ProgressNote(actor="alice", text=f"step {n}"))
            await until(lambda: any(f"step {n} " in c for c in jira.comments("OPS-1")))  # noqa: B023
        for decision in (
            Resolve(actor="alice", overview="Checkout answered 500", how_resolved="Rolled back", prevention="Canary"),
            ApproveStatement(actor="carol", statement_id="S1"),
            ReviewHeld(actor="alice", notes="Held with the team", root_cause="A bad deploy"),
            PublishPostmortem(actor="alice", url="https://wiki.example.com/pm/checkout"),
            CloseIncident(actor="alice"),
        ):
            await decide(handle, decision)
        s = await handle.result()
        await record_written(dev_env, s)
    runs = [w async for w in dev_env.client.list_workflows(f"WorkflowId = '{writer.id}'")]
    assert len(runs) > 1, "the writer never continued as new"
    assert len(jira.issues) == 1
    assert jira.comments("OPS-1") == expected_history(s)


async def test_an_incident_read_as_it_starts_replays_on_a_restarted_worker(dev_env, settings, jira: FakeJira):
    """Where the record is kept outside, each task that writes the timeline marks itself (deliveries.py). Read as it
    starts, the incident gets its policy check's answer in a later task than a replay does: the marks must agree."""
    configured = jira.configure(settings)
    async with build_worker(dev_env.client, configured):
        handle = await open_incident(dev_env, configured, policy_for(RecordHome.JIRA), alert(severity=Severity.SEV2))
        await state(handle)  # while the start's policy check runs
        await decide(handle, Classify(actor="alice", kind=IncidentKind.INCIDENT))
        await decide(handle, ProgressNote(actor="alice", text="step 1"))
        before = [(e.kind, e.text) for e in (await state(handle)).timeline]
    async with build_worker(dev_env.client, configured):  # a new worker replays the incident from its history
        after = [(e.kind, e.text) for e in (await state(handle)).timeline]
        await decide(handle, ProgressNote(actor="alice", text="step 2"))
    assert after == before


async def test_a_record_home_without_its_project_is_refused():
    with pytest.raises(ValueError, match=r"records\.project"):
        Records(home=RecordHome.JIRA)


# --- each write once, by the key stored in the peer: a retry after the peer took the write but its answer was lost


def write(home: RecordHome, *numbers: int, record_id: str = "") -> RecordWrite:
    at = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
    return RecordWrite(
        key="INC-7F3K@20261207T120000",
        incident_id="INC-7F3K",
        record_id=record_id,
        fields={"title": "Checkout errors", "status": "open", "severity": "SEV1", "phase": "investigation"},
        entries=[RecordEntry(number=n, at=at, kind="progress_note", text=f"step {n}", actor="alice") for n in numbers],
        records=Records(home=home, project="OPS"),
    )


async def test_each_register_finds_the_record_a_lost_answer_created_and_writes_each_entry_once(
    settings: Settings, jira: FakeJira, servicenow: FakeServiceNow, confluence: FakeConfluence
):
    outbox = Outbox(settings.outbox_path)
    registers = [
        (RecordHome.JIRA, JiraActivities(jira.configure(settings), outbox).jira_write_record),
        (RecordHome.SERVICENOW, ServiceNowActivities(servicenow.configure(settings), outbox).servicenow_write_record),
        (RecordHome.CONFLUENCE, ConfluenceActivities(confluence.configure(settings), outbox).confluence_write_record),
    ]
    for home, write_record in registers:
        first = await attempt().run(write_record, write(home, 1, 2, 3))
        # the worker died before the answer came back: the retry knows no record id and carries the same entries
        again = await attempt(2).run(write_record, write(home, 1, 2, 3))
        later = await attempt().run(write_record, write(home, 4, record_id=again.record_id))
        assert first.record_id == again.record_id == later.record_id, home

    (issue,) = jira.issues.values()
    (row,) = servicenow.rows.values()
    (page,) = confluence.pages.values()
    for written in (jira.comments(issue["key"]), servicenow.work_notes(row["sys_id"]), page["body"].split("<li>")[1:]):
        assert [sum(f"step {n} " in w for w in written) for n in (1, 2, 3, 4)] == [1, 1, 1, 1]


async def test_a_refused_credential_is_final_and_an_outage_is_retried(settings: Settings, jira: FakeJira):
    refused = JiraActivities(
        settings.model_copy(update={"jira_url": jira.url, "jira_api_token": SecretStr("x")}),
        Outbox(settings.outbox_path),
    )
    with pytest.raises(ApplicationError) as wrong:
        await attempt().run(refused.jira_write_record, write(RecordHome.JIRA, 1))
    jira.fail("/rest/api/2/search", 503, OUTAGE)
    with pytest.raises(ApplicationError) as outage:
        await attempt().run(
            JiraActivities(jira.configure(settings), Outbox(settings.outbox_path)).jira_write_record,
            write(RecordHome.JIRA, 1),
        )
    assert (wrong.value.type, wrong.value.non_retryable) == ("jira:401", True)
    assert (outage.value.type, outage.value.non_retryable) == ("jira:503", False)


# --- follow-ups: the postmortem's action items as issues, once each, linked both ways


async def test_follow_ups_become_jira_issues_once_each_linked_both_ways_before_the_close(
    dev_env, settings, jira: FakeJira
):
    configured = jira.configure(settings)
    policy = policy_for(RecordHome.JIRA).model_copy(update={"follow_ups": FollowUps(home="jira", project="OPS")})
    items = [
        AddActionItem(actor="alice", title="Canary every deploy", owner="alice", due=date(2026, 12, 21)),
        AddActionItem(actor="alice", title="Alert on 500 rate", owner="bob"),
    ]
    life = LIFE[:7] + items + LIFE[7:]  # added after the resolution, before the review
    async with build_worker(dev_env.client, configured):
        handle = await open_incident(dev_env, configured, policy, alert(severity=Severity.SEV1))
        for decision in life:
            await decide(handle, decision)
        s = await handle.result()
        await record_written(dev_env, s)

    record = jira.issues[s.record.record_id]
    follow_ups = [i for i in jira.issues.values() if i is not record]
    assert [i["fields"]["summary"] for i in follow_ups] == ["Canary every deploy", "Alert on 500 rate"]
    assert [a.issue for a in s.action_items] == [i["key"] for i in follow_ups]
    first = follow_ups[0]
    assert first["fields"]["duedate"] == "2026-12-21"
    assert first["fields"]["assignee"] == {"accountId": "5b10ac8d82e05b22cc7d4ef5"}
    for issue in follow_ups:  # back to the incident
        assert list(issue["links"].values()) == [{"url": s.record.url, "title": f"Incident {s.incident_id}"}]
    postmortem = Path(s.postmortem_location).read_text()
    for issue in follow_ups:  # and forth from the postmortem and the record
        assert f"{issue['key']} {configured.jira_url}/browse/{issue['key']}" in postmortem
        assert f"{issue['key']} {configured.jira_url}/browse/{issue['key']}" in record["fields"]["description"]


async def test_linear_follow_up_is_found_again_after_a_lost_answer_and_rate_limits_are_retried(
    settings: Settings, linear: FakeLinear
):
    activities = LinearActivities(linear.configure(settings), Outbox(settings.outbox_path))
    request = FollowUpRequest(
        key="INC-7F3K@20261207T120000/A1",
        incident_id="INC-7F3K",
        title="Canary every deploy",
        description="Follow-up A1 of incident INC-7F3K",
        due=date(2026, 12, 21),
        follow_ups=FollowUps(home="linear", team_id=TEAM),
    )
    first = await attempt().run(activities.linear_create_follow_up, request)
    again = await attempt(2).run(activities.linear_create_follow_up, request)
    linear.rate_limited = 1
    with pytest.raises(ApplicationError) as limited:
        await attempt(3).run(activities.linear_create_follow_up, request)

    assert first == again and len(linear.issues) == 1
    assert linear.issues[0]["dueDate"] == "2026-12-21"
    assert (limited.value.type, limited.value.non_retryable) == ("linear:ratelimited", False)
    assert limited.value.next_retry_delay is not None


async def test_jira_follow_up_is_found_again_after_a_lost_answer(settings: Settings, jira: FakeJira):
    activities = JiraActivities(jira.configure(settings), Outbox(settings.outbox_path))
    request = FollowUpRequest(
        key="INC-7F3K@20261207T120000/A1",
        incident_id="INC-7F3K",
        title="Canary every deploy",
        description="Follow-up A1 of incident INC-7F3K",
        incident_url="https://jira.example/browse/OPS-1",
        follow_ups=FollowUps(home="jira", project="OPS"),
    )
    first = await attempt().run(activities.jira_create_follow_up, request)
    again = await attempt(2).run(activities.jira_create_follow_up, request)

    assert first == again and len(jira.issues) == 1
    assert len(jira.issues[first.issue]["links"]) == 1
