"""incidentctl against the dev server: commands reach the incident, every refusal is one line and exit 1."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Awaitable, Callable

import pytest
from temporalio.testing import WorkflowEnvironment
from typer.testing import CliRunner, Result

from settings import Settings
from starter.cli import app

Run = Callable[..., Awaitable[Result]]


@pytest.fixture
def incidentctl(dev_env: WorkflowEnvironment, settings: Settings, worker: None) -> Run:
    """Run incidentctl in a thread (it runs its own event loop) pointed at the dev server."""
    env: dict[str, str | None] = {"TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host,
           "INCIDENT_TASK_QUEUE": settings.incident_task_queue, "INCIDENTCTL_USER": None}

    async def run(*args: str, **extra_env: str) -> Result:
        def invoke() -> Result:
            return CliRunner().invoke(app, list(args), env={**env, **extra_env})

        return await asyncio.to_thread(invoke)

    return run


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


async def test_decisions_reach_the_incident(incidentctl: Run) -> None:
    incident_id = await declared(incidentctl)
    for args in (("ack", incident_id, "--note", "on it", "--as", "bob"),
                 ("phase", incident_id, "investigation", "--as", "bob"),
                 ("note", incident_id, "rolled back the deploy", "--as", "bob"),
                 ("task", "add", incident_id, "restore replica", "--assignee", "bob", "--as", "alice")):
        result = await incidentctl(*args)
        assert result.exit_code == 0, (args, result.output)
        assert result.stdout.strip() and not result.stderr
    state = json.loads((await incidentctl("show", incident_id, "--json")).stdout)
    assert state["acknowledged_by"] == "bob" and state["phase"] == "investigation"
    assert [t["title"] for t in state["tasks"]] == ["restore replica"]


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
    wrong_role = one_line_refusal(await incidentctl("resolve", incident_id, "--overview", "o", "--how", "h",
                                                    "--prevention", "p", "--as", "gina"))
    assert "gina" in wrong_role
    wrong_state = one_line_refusal(await incidentctl("reopen", incident_id, "--reason", "x", "--as", "alice"))
    assert incident_id in wrong_state or "resolved" in wrong_state
    assert "who is acting" in one_line_refusal(await incidentctl("ack", incident_id))
    assert "not a person" in one_line_refusal(await incidentctl("ack", incident_id, "--as", "mallory"))


async def test_unreachable_server_is_one_line(incidentctl: Run) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for args in (("list",), ("ack", "INC-AAAAAAAA", "--as", "bob"), ("declare", "x", "--as", "bob")):
        line = one_line_refusal(await incidentctl(*args, TEMPORAL_ADDRESS=f"127.0.0.1:{port}"))
        assert line.startswith(f"incidentctl: cannot reach Temporal at 127.0.0.1:{port}"), line
