"""incidentctl against the dev server: commands reach the incident, every refusal is one line and exit 1, a
decision whose answer is lost is sent again under its one update id and applied once."""

from __future__ import annotations

import asyncio
import json
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
from google.protobuf.duration_pb2 import Duration
from pydantic import ValidationError
from temporalio.api.workflowservice.v1 import RegisterNamespaceRequest
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from typer.testing import CliRunner, Result

from client import decide
from client.alerts import manual_alert, send_alert
from client.decide import incident_decision, query_state, send_decision
from policy_file import load_policy
from settings import ROOT, Settings, describe_validation_error
from starter.cli.main import app
from starter.http import decisions as decisions_api
from tests.api import decision_api
from tests.conftest import run_under
from worker import build_worker
from workflows.contracts.policy import Policy
from workflows.contracts.temporal.ids import incident_id_for
from workflows.contracts.vocabulary import Severity
from workflows.incident.model import IncidentState, ProgressNote

Run = Callable[..., Awaitable[Result]]


@pytest.fixture
async def incidentctl(dev_env: WorkflowEnvironment, settings: Settings, worker: None) -> AsyncIterator[Run]:
    """Run incidentctl in a thread (it runs its own event loop) pointed at the dev server and the HTTP service,
    with a personal token for every person of the policy."""
    async with decision_api(dev_env.client, settings) as api_env:
        env: dict[str, str | None] = {
            "TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host,
            "INCIDENT_TASK_QUEUE": settings.incident_task_queue,
            "INCIDENTCTL_USER": None,
            "INCIDENTCTL_TOKEN": None,
            **api_env,
        }

        async def run(*args: str, **extra_env: str) -> Result:
            def invoke() -> Result:
                return CliRunner().invoke(app, list(args), env={**env, **extra_env})

            return await asyncio.to_thread(invoke)

        yield run


def one_line_refusal(result: Result) -> str:
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("incidentctl: "), result.stderr
    return lines[0]


async def declared(incidentctl: Run, title: str = "Checkout is failing") -> str:
    result = await incidentctl("declare", title, "--severity", "sev2", "--service", "checkout", "--as", "alice")
    assert result.exit_code == 0, result.output
    incident_id = result.stdout.split(":")[0]
    assert incident_id.startswith("INC-")
    return incident_id


async def test_declare_then_show_and_list(incidentctl: Run) -> None:
    incident_id = await declared(incidentctl, "Checkout [red]is failing")
    shown = json.loads((await incidentctl("show", incident_id.lower(), "--json")).stdout)
    assert shown["title"] == "Checkout [red]is failing" and shown["severity"] == "SEV2"
    assert shown["source"] == "manual" and "alice" in shown["timeline"][0]["text"]
    readable = (await incidentctl("show", incident_id)).stdout
    assert "Checkout [red]is failing" in readable and "Timeline" in readable
    for _ in range(50):  # visibility follows the workflow's search attributes shortly after
        listed = json.loads((await incidentctl("list", "--json", "--severity", "SEV2")).stdout)
        mine = [row for row in listed if row["id"] == incident_id]
        if mine and mine[0]["status"] == "open":
            break
        await asyncio.sleep(0.1)
    assert mine and mine[0]["title"] == "Checkout [red]is failing" and mine[0]["service"] == "checkout"


async def test_decisions_reach_the_incident(incidentctl: Run, dev_env: WorkflowEnvironment) -> None:
    incident_id = await declared(incidentctl)
    decisions = (
        ("ack", incident_id, "--note", "on it", "--as", "bob"),
        ("classify", incident_id, "--kind", "incident", "--as", "alice"),
        ("phase", incident_id, "identification", "--as", "bob"),
        ("note", incident_id, "rolled back the deploy", "--as", "bob"),
        ("task", "add", incident_id, "restore replica", "--assignee", "bob", "--as", "alice"),
    )
    for args in decisions:
        if args[0] == "phase":  # a phase moves once the incident is confirmed (in investigation), by its main loop
            for _ in range(50):
                if (await query_state(dev_env.client, incident_id)).confirmed:
                    break
                await asyncio.sleep(0.1)
        result = await incidentctl(*args)
        assert result.exit_code == 0, (args, result.output)
        assert result.stdout.strip() and not result.stderr
    state = json.loads((await incidentctl("show", incident_id, "--json")).stdout)
    assert state["acknowledged_by"] == "bob" and state["phase"] == "identification"
    assert [t["title"] for t in state["tasks"]] == ["restore replica"]


async def test_seed003_the_recovery_plan_from_the_terminal(incidentctl: Run, dev_env: WorkflowEnvironment) -> None:
    incident_id = await declared(incidentctl)
    steps = (
        ("task", "add", incident_id, "restore replica", "--assignee", "bob", "--systems", "checkout", "--as", "alice"),
        ("task", "add", incident_id, "tidy runbook", "--assignee", "bob", "--due", "240", "--as", "alice"),
        ("task", "assign", incident_id, "T2", "carol", "--reason", "bob restores", "--as", "alice"),
        ("task", "reprioritise", incident_id, "T2", "--impact", "sev1", "--reason", "auditors", "--as", "alice"),
        ("task", "update", incident_id, "T1", "replica at 40 %", "--status", "in_progress", "--as", "bob"),
        ("task", "escalate", incident_id, "T1", "--recommendation", "add a DBA", "--as", "alice"),
        ("task", "done", incident_id, "T2", "--note", "runbook tidied", "--as", "carol"),
    )
    for args in steps:
        result = await incidentctl(*args)
        assert result.exit_code == 0, (args, result.output)
    state = json.loads((await incidentctl("show", incident_id, "--json")).stdout)
    assert [(t["task_id"], t["assignee"], t["status"]) for t in state["tasks"]] == [
        ("T1", "bob", "in_progress"),  # the checkout's 60-minute RTO ranks it; the finished task goes last
        ("T2", "carol", "done"),
    ]
    assert state["tasks"][0]["notes"][-1]["text"] == "replica at 40 %"
    readable = (await incidentctl("show", incident_id)).stdout
    assert "Recovery plan" in readable and "RTO 60 min" in readable
    # refused before it reaches the incident: a title over its limit (incidentctl's main prints it in one line),
    # a system the policy does not know
    too_long = await incidentctl("task", "add", incident_id, "x" * 201, "--assignee", "bob", "--as", "alice")
    assert isinstance(too_long.exception, ValidationError)
    assert describe_validation_error(too_long.exception).startswith("title:")
    assert "unknown systems payroll" in one_line_refusal(
        await incidentctl("task", "add", incident_id, "x", "--assignee", "bob", "--systems", "payroll", "--as", "alice")
    )


async def test_acting_person_comes_from_the_environment(incidentctl: Run) -> None:
    incident_id = await declared(incidentctl)
    assert (await incidentctl("ack", incident_id, INCIDENTCTL_USER="carol")).exit_code == 0
    state = json.loads((await incidentctl("show", incident_id, "--json")).stdout)
    assert state["acknowledged_by"] == "carol"


async def test_refusals_are_one_line_and_exit_1(incidentctl: Run) -> None:
    incident_id = await declared(incidentctl)
    line = one_line_refusal(await incidentctl("ack", "INC-NOSUCH01", "--as", "bob"))
    assert line == "incidentctl: no incident INC-NOSUCH01 (incidentctl list shows open ones)"
    one_line_refusal(await incidentctl("show", "INC-NOSUCH01"))
    wrong_role = one_line_refusal(
        await incidentctl("resolve", incident_id, "--overview", "o", "--how", "h", "--prevention", "p", "--as", "gina")
    )
    assert "gina" in wrong_role
    wrong_state = one_line_refusal(await incidentctl("reopen", incident_id, "--reason", "x", "--as", "alice"))
    assert incident_id in wrong_state or "resolved" in wrong_state
    assert "who is acting" in one_line_refusal(await incidentctl("ack", incident_id))
    assert "not a person" in one_line_refusal(await incidentctl("ack", incident_id, "--as", "mallory"))


async def test_unreachable_server_is_one_line(incidentctl: Run) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    line = one_line_refusal(await incidentctl("list", TEMPORAL_ADDRESS=f"127.0.0.1:{port}"))
    assert line.startswith(f"incidentctl: cannot reach Temporal at 127.0.0.1:{port}"), line
    for args in (("ack", "INC-AAAAAAAA", "--as", "bob"), ("declare", "x", "--as", "bob")):
        line = one_line_refusal(await incidentctl(*args, INCIDENT_API_URL=f"http://127.0.0.1:{port}"))
        assert line.startswith(f"incidentctl: cannot reach the incident service at http://127.0.0.1:{port}"), line


async def test_declare_links_to_the_configured_ui(incidentctl: Run) -> None:
    result = await incidentctl(
        "declare", "Checkout is failing", "--as", "alice", TEMPORAL_UI_URL="https://temporal.example.com/"
    )
    incident_id = result.stdout.split(":")[0]
    assert result.stdout.strip() == (
        f"{incident_id}: declared by alice (https://temporal.example.com/namespaces/default/workflows/{incident_id})"
    )


async def test_list_on_a_temporal_without_the_incident_attributes_is_one_line(
    incidentctl: Run, dev_env: WorkflowEnvironment
) -> None:
    """Someone's own Temporal (or a new namespace) has none of the attributes `make run` registers."""
    namespace = f"bare-{uuid.uuid4().hex[:8]}"
    await dev_env.client.workflow_service.register_namespace(
        RegisterNamespaceRequest(namespace=namespace, workflow_execution_retention_period=Duration(seconds=86400))
    )
    line = one_line_refusal(await incidentctl("list", TEMPORAL_NAMESPACE=namespace))
    assert f"({namespace}) cannot list incidents: " in line and "IncidentStatus" in line, line
    assert line.endswith("use the server `make run` starts, which registers the incident search attributes")


NOTE = incident_decision(ProgressNote)  # the timeline records a decision under its name


def progress_notes(state: IncidentState) -> list[str]:
    return [e.text for e in state.timeline if e.kind == NOTE]


async def test_the_same_decision_twice_under_one_update_id_is_applied_once(
    incidentctl: Run, dev_env: WorkflowEnvironment
) -> None:
    incident_id = await declared(incidentctl)
    note = ProgressNote(actor="bob", text="rolled back the deploy")
    first = await send_decision(dev_env.client, incident_id, note, update_id="incidentctl-test-1")
    again = await send_decision(dev_env.client, incident_id, note, update_id="incidentctl-test-1")
    assert again == first  # the second send is answered with the first one's outcome
    await send_decision(dev_env.client, incident_id, note, update_id="incidentctl-test-2")
    assert len(progress_notes(await query_state(dev_env.client, incident_id))) == 2


async def test_a_lost_answer_is_sent_again_under_one_id_then_said_to_be_queued(
    incidentctl: Run,
    dev_env: WorkflowEnvironment,
    settings: Settings,
    example_policy: Policy,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No worker polls this incident's task queue: every attempt goes unanswered, all under one update id."""
    idle = settings.model_copy(update={"incident_task_queue": f"{settings.incident_task_queue}-idle"})
    event = manual_alert("Checkout is failing", "alice", severity=Severity.SEV2, service="checkout")
    await send_alert(dev_env.client, idle, example_policy, event)
    incident_id = incident_id_for(event.source, event.dedup_key)
    monkeypatch.setattr(decide, "ANSWER_WITHIN", timedelta(seconds=1))
    # Room for two attempts even when one is slow to time out on a busy machine (seen taking over 3.5 s)
    monkeypatch.setattr(decisions_api, "RETRY_WITHIN", timedelta(seconds=10))
    sent: list[str | None] = []
    execute_update = WorkflowHandle.execute_update

    async def counted(handle: WorkflowHandle[Any, Any], *args: Any, **kwargs: Any) -> Any:
        sent.append(kwargs.get("id"))
        return await execute_update(handle, *args, **kwargs)

    monkeypatch.setattr(WorkflowHandle, "execute_update", counted)
    line = one_line_refusal(await incidentctl("note", incident_id, "rolled back the deploy", "--as", "bob"))
    assert line == (
        f"incidentctl: {incident_id} did not confirm the decision within 10 s; it may be queued and "
        f"apply once a worker runs (make run): check incidentctl show {incident_id} before sending it "
        "again"
    )
    assert len(sent) >= 2 and len(set(sent)) == 1, sent
    async with build_worker(dev_env.client, idle):  # the worker comes back: the queued decision applies once
        await send_decision(dev_env.client, incident_id, ProgressNote(actor="bob", text="found the bad deploy"))
        assert len(progress_notes(await query_state(dev_env.client, incident_id))) == 2


async def test_message_loop_steps_without_a_business_incident_are_refused_in_one_line(incidentctl: Run) -> None:
    incident_id = await declared(incidentctl)
    expected = (
        f"incidentctl: {incident_id} is not a business incident; start one with "
        f"incidentctl business-incident {incident_id}"
    )
    step = ("approve-send", incident_id, "investigation/internal_stakeholders", "--as", "alice")
    assert one_line_refusal(await incidentctl(*step)) == expected
    assert one_line_refusal(await incidentctl("messages", incident_id)) == expected


# --- every decision prints the incident's state after the decision took effect (issue #12) ------


async def test_an_incident_decision_prints_the_state_after_it_no_longer_owing_what_was_given(incidentctl: Run) -> None:
    incident_id = await declared(incidentctl)
    classified = await incidentctl("classify", incident_id, "--kind", "incident", "--as", "alice")
    assert classified.exit_code == 0, classified.output
    result, now = classified.stdout.strip().splitlines()
    assert result.startswith("classified incident")
    assert now.startswith(f"{incident_id} now: open, investigation; waiting on ") and "initial assessment" not in now
    assert "acknowledgement (escalating)" in now, "the confirmed incident pages: the acknowledgement is owed next"
    acked = await incidentctl("ack", incident_id, "--as", "bob")
    assert acked.exit_code == 0, acked.output
    result, now = acked.stdout.strip().splitlines()
    assert result == f"{incident_id} acknowledged by bob"
    assert "acknowledgement" not in now, now
    assert "status update from alice by " in now, now


async def test_a_message_loop_approval_prints_the_message_after_the_loop_moved_it_on(incidentctl: Run) -> None:
    """After the ELT Approver authorises, the Incident Commander's approval is owed; once she gives it, no more."""
    incident_id = await declared(incidentctl)
    message = "investigation/internal_stakeholders"
    for args in (
        ("classify", incident_id, "--kind", "incident", "--as", "alice"),
        ("business-incident", incident_id, "--reason", "customers see failed payments", "--as", "carol"),
        ("draft", incident_id, message, "--set", "impact=payments fail", "--set", "next_update=soon", "--as", "bob"),
        ("review", incident_id, message, "--approve", "--as", "erin"),
        ("review", incident_id, message, "--approve", "--as", "dana"),
    ):
        result = await incidentctl(*args)
        assert result.exit_code == 0, (args, result.output)
    authorized = await incidentctl("authorize", incident_id, message, "--as", "frank")
    assert authorized.exit_code == 0, authorized.output
    lines = authorized.stdout.strip().splitlines()
    assert lines[0].startswith(f"{incident_id} {message}: send_approval, waiting on approve sending: alice until ")
    assert "authorize" not in authorized.stdout
    sent = await incidentctl("approve-send", incident_id, message, "--as", "alice")
    assert sent.exit_code == 0, sent.output
    lines = sent.stdout.strip().splitlines()
    assert "approve sending" not in sent.stdout, sent.stdout
    assert lines[0] == f"{incident_id} {message}: distributing" or lines[0].startswith(
        f"{incident_id} {message}: confirming, waiting on confirm it reached its audience: carol until "
    ), lines


async def test_the_communications_lead_releases_a_held_status_update_from_the_command_line(incidentctl: Run) -> None:
    """`update` sends the internal copies and holds the client's; `statement approve` releases it, and `show`
    and `statement list` say who approved which words."""
    incident_id = await declared(incidentctl)
    assert (await incidentctl("classify", incident_id, "--kind", "incident", "--as", "alice")).exit_code == 0
    updated = await incidentctl("update", incident_id, "Rolling back release 42", "--as", "alice")
    assert updated.exit_code == 0 and "approval of status update S1 for client_contacts by carol" in updated.stdout
    refused = one_line_refusal(await incidentctl("statement", "approve", incident_id, "S1", "--as", "alice"))
    assert "only the communications lead can approve statement" in refused
    approved = await incidentctl(
        "statement", "approve", incident_id, "s1", "--text", "We are rolling back.", "--as", "carol"
    )
    assert approved.exit_code == 0 and "approved by carol: We are rolling back." in approved.stdout
    assert "approval of status update S1" not in approved.stdout  # the state after the approval
    listed = json.loads((await incidentctl("statement", "list", incident_id, "--json")).stdout)
    assert [(r["statement"], r["state"], r["by"], r["words"]) for r in listed] == [
        ("S1", "approved", "carol", "We are rolling back.")
    ]
    shown = (await incidentctl("show", incident_id)).stdout
    assert "Words for people outside" in shown and "EET" in shown


async def test_seed001_the_owner_answers_an_evaluation_point_from_the_command_line(
    dev_env: WorkflowEnvironment, settings: Settings, worker: None
) -> None:
    """`clients` answers the evaluation point with a reason; only the incident's owner may."""
    run_under(settings, load_policy(ROOT / "examples" / "policies" / "001-process-flow.toml"))
    async with decision_api(dev_env.client, settings) as api_env:
        env = {
            "TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host,
            "INCIDENT_TASK_QUEUE": settings.incident_task_queue,
            "INCIDENT_POLICY": str(settings.incident_policy),
            **api_env,
        }

        async def incidentctl(*args: str) -> Result:
            return await asyncio.to_thread(lambda: CliRunner().invoke(app, list(args), env=env))

        declared = await incidentctl("declare", "Portal slow", "--service", "portal", "--as", "ana")
        incident_id = declared.stdout.split(":")[0]
        assert (await incidentctl("classify", incident_id, "--kind", "incident", "--as", "ana")).exit_code == 0
        refused = one_line_refusal(await incidentctl("clients", incident_id, "--now", "--reason", "x", "--as", "teo"))
        assert "only the incident commander can evaluate clients" in refused
        answered = await incidentctl(
            "clients", incident_id, "--not-now", "--reason", "tickets answered", "--as", "sara"
        )
        assert answered.exit_code == 0, answered.output
        assert "clients are not told now: tickets answered; asked again at the next point" in answered.stdout
