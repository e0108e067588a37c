"""The on-call ways in against the dev server: incidentctl's oncall, override and silence commands, and the
HTTP service's heartbeats and calendar feed. Every refusal is one line (CLI) or a clear 4xx (HTTP)."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from icalendar import Calendar
from pydantic import SecretStr
from temporalio.testing import WorkflowEnvironment
from typer.testing import CliRunner, Result

from client import oncall as oncall_client
from policy_file import load_policy
from settings import ROOT, Settings
from starter.cli.main import app
from starter.http.app import create_app
from tests.api import decision_api
from workflows.contracts.policy import Policy

Run = Callable[..., Awaitable[Result]]


@pytest.fixture
def schedule() -> str:
    """A name of this test's own: the dev server, and so the schedule's workflow id, is shared."""
    return f"s{uuid.uuid4().hex[:8]}"


@pytest.fixture
def policy_file(tmp_path: Path, schedule: str) -> Path:
    path = tmp_path / "policy.toml"
    path.write_text(
        (ROOT / "examples" / "policy.toml").read_text()
        + f'\n[schedules.{schedule}]\ntimezone = "America/New_York"\n\n[[schedules.{schedule}.layers]]\n'
        'members = ["bob", "alice"]\nhandoff_day = "monday"\n'
        f"\n[heartbeats.{schedule}-beat]\ninterval_minutes = 5\n"
    )
    return path


@pytest.fixture
async def incidentctl(
    dev_env: WorkflowEnvironment, settings: Settings, worker: None, policy_file: Path
) -> AsyncIterator[Run]:
    async with decision_api(dev_env.client, settings, load_policy(policy_file)) as api_env:
        env = {
            "TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host,
            "INCIDENT_TASK_QUEUE": settings.incident_task_queue,
            "INCIDENT_POLICY": str(policy_file),
            "INCIDENTCTL_USER": "alice",
            **api_env,
        }

        async def run(*args: str) -> Result:
            return await asyncio.to_thread(lambda: CliRunner().invoke(app, list(args), env=env))

        yield run


def refusal(result: Result) -> str:
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("incidentctl: "), result.stderr
    return lines[0]


async def test_override_add_list_oncall_and_remove(incidentctl: Run, schedule: str) -> None:
    async def on_call(*at: str) -> dict[str, Any]:
        answer = await incidentctl("oncall", "--schedule", schedule, *at, "--json")
        found: dict[str, Any] = json.loads(answer.stdout)[0]
        return found

    before, in_2h, in_3h = await on_call(), await on_call("--at", "+2h"), await on_call("--at", "+3h")
    assert before["on call"] in ("bob", "alice") and len(before["next handoffs"]) == 3
    added = await incidentctl("override", "add", schedule, "--who", "oleh", "--until", "+2h", "--reason", "swap")
    assert added.exit_code == 0 and added.stdout.startswith(f"{schedule} O1: oleh on call from "), added.output
    # in the team's time zone (the policy's Europe/Kyiv), UTC beside it, as the incidents say times
    assert re.search(r"from \d{4}-\d\d-\d\d \d\d:\d\d EES?T \(\d\d:\d\d UTC\) until", added.stdout), added.stdout
    now = await on_call()
    # the override ends in 2 h, handing back to whoever the rotation has then (whatever the time of day)
    assert now["on call"] == "oleh" and now["next handoffs"][0]["to"] == in_2h["on call"]
    assert (await on_call("--at", "+3h"))["on call"] == in_3h["on call"]
    listed = json.loads((await incidentctl("override", "list", schedule, "--json")).stdout)
    assert [(o["id"], o["who"], o["by"]) for o in listed] == [("O1", "oleh", "alice")]
    assert (await incidentctl("override", "remove", schedule, "O1")).exit_code == 0
    assert json.loads((await incidentctl("override", "list", schedule, "--json")).stdout) == []


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["override", "add", "nope", "--who", "oleh", "--until", "+1h"], "no schedule 'nope' in the policy; known:"),
        (["override", "add", "{s}", "--who", "zed", "--until", "+1h"], "'zed' is not a person in the policy"),
        (["override", "add", "{s}", "--who", "oleh", "--until", "tomorrow"], "--until 'tomorrow' is not a time"),
        (["override", "add", "{s}", "--who", "oleh", "--until", "2030-01-01T09:00"], "has no UTC offset"),
        (["override", "add", "{s}", "--who", "oleh", "--from", "+2h", "--until", "+1h"], "must end after it starts"),
        (["override", "remove", "{s}", "O99"], "has no override O99"),
        (["oncall", "--schedule", "nope"], "no schedule 'nope'"),
        (["silence", "--service", "nope", "--until", "+1h", "--reason", "x"], "no service 'nope' in the policy"),
        (["silence", "--service", "checkout", "--until", "+1h", "--matcher", "region"], "is not label=value"),
    ],
)
async def test_bad_input_is_refused_in_one_line(incidentctl: Run, schedule: str, args: list[str], says: str) -> None:
    if args[:2] == ["override", "remove"]:
        await incidentctl("override", "add", schedule, "--who", "oleh", "--until", "+1h")  # the schedule's workflow
    assert says in refusal(await incidentctl(*[a.format(s=schedule) for a in args]))


# --- HTTP ----------------------------------------------------------------------------------------


@pytest.fixture
async def http(
    dev_env: WorkflowEnvironment, settings: Settings, policy_file: Path, worker: None
) -> AsyncIterator[httpx.AsyncClient]:
    policy = load_policy(policy_file)
    beats = {name: SecretStr("s3cret") for name in [*policy.heartbeats, "nope"]}
    secured = settings.model_copy(update={"heartbeat_tokens": beats, "calendar_token": SecretStr("read-only")})
    app_ = create_app(secured, client=dev_env.client, policy=policy)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app_), base_url="http://webhook") as client:
        yield client


AUTH = {"Authorization": "Bearer s3cret"}


async def test_heartbeat_endpoint_refuses_bad_token_and_unknown_names_and_records_a_beat(
    http: httpx.AsyncClient, dev_env: WorkflowEnvironment, schedule: str
) -> None:
    name = f"{schedule}-beat"
    assert (await http.post(f"/heartbeats/{name}")).status_code == 401
    unknown = await http.post("/heartbeats/nope", headers=AUTH)
    assert unknown.status_code == 404 and name in unknown.json()["error"]
    answer = await http.post(f"/heartbeats/{name}", headers=AUTH)
    assert answer.status_code == 202 and answer.json() == {"heartbeat": name, "due_within_minutes": 5.0}
    await http.post(f"/heartbeats/{name}", headers=AUTH)
    state = await oncall_client.heartbeat_state(dev_env.client, name)
    assert state.beats == 2 and state.missed_since is None and state.due is not None


async def test_calendar_feed_lists_each_shift_with_overrides(
    http: httpx.AsyncClient, dev_env: WorkflowEnvironment, settings: Settings, schedule: str, example_policy: Policy
) -> None:
    assert (await http.get(f"/schedules/{schedule}.ics")).status_code == 401
    assert (await http.get(f"/schedules/{schedule}.ics?token=wrong")).status_code == 401
    assert (await http.get(f"/schedules/{schedule}.ics?token=s3cret")).status_code == 401, "a heartbeat's token"
    assert (await http.get("/schedules/nope.ics", headers={"Authorization": "Bearer read-only"})).status_code == 404
    feed = await http.get(f"/schedules/{schedule}.ics?token=read-only")
    assert feed.status_code == 200 and feed.headers["content-type"].startswith("text/calendar")
    events = Calendar.from_ical(feed.content).walk("VEVENT")
    assert len(events) >= 12, "a week back and twelve weeks ahead of weekly shifts"
    people = {str(e["SUMMARY"]) for e in events}
    assert people == {f"On call ({schedule}): Bob Ortiz", f"On call ({schedule}): Alice Ng"}
    assert len({str(e["UID"]) for e in events}) == len(events)
