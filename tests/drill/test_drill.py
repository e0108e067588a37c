"""`incidentctl drill`: invalid files are refused with the field that is wrong; a refused step is part of
the story; the recorders stand in for every activity the worker runs; the start time is honoured."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from typer.testing import CliRunner

from settings import ROOT
from starter.cli.main import app
from starter.drill.report import DrillReport, render_text
from starter.drill.scenario import load_scenario
from tests.drill.helpers import POLICIES, SCENARIOS, drill, drill_seed, events
from workflows.contracts.policy import Policy
from workflows.contracts.vocabulary import Status

EXAMPLE_POLICY = ROOT / "examples" / "policy.toml"
ALERT = "- at: 0\n  alert: {title: Checkout is failing, severity: SEV2, service: checkout}\n"


def refusal(*args: str) -> str:
    result = CliRunner().invoke(app, ["drill", *args])
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("incidentctl: "), result.stderr
    return lines[0]


def scenario_file(tmp_path: Path, text: str, name: str = "scenario.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "wrong"),
    [
        (
            ALERT + "- {at: 5, as: dana, do: review, message: investigation/internal_stakeholders, verdict: maybe}",
            "steps[1].verdict: Input should be 'approve' or 'object'",
        ),
        (ALERT + "- {at: 5, as: zed, do: acknowledge}", "steps[1].as: 'zed' is not a person in the policy"),
        (ALERT + "- {at: 5, as: bob, do: ack}", "steps[1].do: no step 'ack'; known: accept_edit, acknowledge, "),
        (ALERT + "- {at: 5, as: bob, do: draft}", "steps[1].message: draft is a step on one message"),
        (
            ALERT + "- {at: 5, as: bob, do: set_phase, phase: identification, urgency: high}",
            "steps[1]: set_phase has no field urgency; it takes note, phase",
        ),
        (ALERT + "- {at: 5, as: bob, do: estimate, minutes: 0}", "steps[1].minutes: Input should be greater than 0"),
        (ALERT + "- {at: 5, do: acknowledge}", "steps[1]: Value error, who does acknowledge? add `as: PERSON`"),
        (
            ALERT + "- {at: 3, as: bob, do: acknowledge}\n- {at: 2, as: bob, do: acknowledge}",
            "steps[2] at minute 2 comes before steps[1] at minute 3",
        ),
        ("- {at: 0, as: bob, do: acknowledge}", "steps[0] must be an `alert`"),
        (
            "start: 2026-11-23T03:00:00\nsteps:\n" + ALERT.replace("- ", "  - ", 1).replace("\n  alert", "\n    alert"),
            "start: Value error, give the start a UTC offset",
        ),
        ("steps: [\n", "not valid YAML"),
    ],
)
def test_an_invalid_scenario_is_refused_with_the_field(tmp_path: Path, text: str, wrong: str) -> None:
    path = scenario_file(tmp_path, text)
    line = refusal("--policy", str(EXAMPLE_POLICY), "--scenario", str(path))
    assert line.startswith(f"incidentctl: {path}: ") and wrong in line, line


def test_an_invalid_policy_is_refused_with_the_field(tmp_path: Path) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text(EXAMPLE_POLICY.read_text().replace("wait_minutes = 5", "wait_minutes = 0"))
    line = refusal("--policy", str(policy), "--scenario", str(SCENARIOS / "002-agency.yaml"))
    assert line == f"incidentctl: {policy}: escalation.tiers.0.wait_minutes: Input should be greater than 0"
    assert "no such scenario file" in refusal("--policy", str(EXAMPLE_POLICY), "--scenario", "/nonexistent.yaml")


async def test_a_refused_step_is_on_the_timeline_and_the_drill_goes_on(tmp_path: Path) -> None:
    path = scenario_file(
        tmp_path,
        ALERT + "- {at: 2, as: carol, do: acknowledge}\n"
        "- {at: 3, as: bob, do: resolve, overview: a, how_resolved: b, prevention: c}\n"
        "- {at: 4, as: alice, do: classify, kind: incident}\n"
        "- {at: 5, as: alice, do: acknowledge}\n",
    )
    report = await drill(EXAMPLE_POLICY, path)
    resolve, acknowledge = events(report, "refused")
    assert resolve.kind == "resolve" and resolve.actor == "bob" and acknowledge.kind == "acknowledge"
    assert "only the incident commander or communications lead can resolve" in resolve.text
    assert [s.accepted for s in report.steps] == [True, True, False, True, False]
    assert "already acknowledged by carol" in report.steps[4].answer
    assert any("status update from alice" in line for line in report.unanswered)
    assert "refused.resolve" in render_text(report) and "Unanswered at +0:05:05" in render_text(report)


async def test_seed001_a_disturbance_is_owned_followed_up_and_completed_without_paging(tmp_path: Path) -> None:
    path = scenario_file(
        tmp_path,
        "- at: 0\n  alert: {title: One user cannot print an invoice, service: billing}\n"
        "- {at: 4, as: ana, do: classify, kind: disturbance}\n"
        "- {at: 1500, as: sara, do: close, stakeholders_satisfied: true, preventive_measures: driver pinned}\n",
    )
    report = await drill(POLICIES / "001-process-flow.toml", path)
    assert report.incident.status is Status.CLOSED and not report.sent("page_open")
    [told] = [e for e in report.sent("slack_direct_message") if "yours to follow up" in e.text]
    assert told.to == ["sara"] and round(told.minute) == 4  # the owner by scope: a local disturbance is the CSM's
    [reminded] = [e for e in report.sent("slack_direct_message") if "Follow up the disturbance" in e.text]
    assert round(reminded.minute) == 4 + 24 * 60
    assert [e.data["fields"]["event"] for e in report.sent("append_incident_log")] == ["disturbance", "closed"]
    assert "projects/billing-incident-log.md" in report.documents


async def test_a_past_start_keeps_its_weekday_and_time_and_says_so(tmp_path: Path) -> None:
    path = scenario_file(
        tmp_path,
        "start: 2020-01-06T03:00:00+02:00\nuntil: 1\nsteps:\n"
        "  - at: 0\n    alert: {title: Checkout down, severity: SEV1, service: shop}\n",
    )
    report = await drill(POLICIES / "002-agency.toml", path)
    local = report.started_at.astimezone(ZoneInfo("Europe/Kyiv"))
    assert (local.weekday(), local.hour, local.minute) == (0, 3, 0)  # a Monday, 03:00 in Kyiv
    assert report.started_at > datetime.now(local.tzinfo) - timedelta(days=1)
    assert "week(s) later" in report.start_note
    assert report.sent("send_telegram"), "03:00 is out of hours: Telegram"


def test_json_output_is_the_report() -> None:
    result = CliRunner().invoke(
        app,
        [
            "drill",
            "--policy",
            str(POLICIES / "000-payments.toml"),
            "--scenario",
            str(SCENARIOS / "000-payments.yaml"),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["incident"]["status"] == "closed" and report["unanswered"] == []
    assert {e["source"] for e in report["events"]} == {"incident", "comms", "sent", "refused"}
    assert all(event["minute"] >= 0 for event in report["events"])


def test_every_seed_scenario_loads_under_its_policy() -> None:
    from policy_file import load_policy

    for scenario in sorted(SCENARIOS.glob("*.yaml")):
        policy: Policy = load_policy(POLICIES / f"{scenario.stem}.toml")
        _, actions = load_scenario(scenario, policy)
        assert actions[0].workflow == "alert", scenario


async def test_the_report_reads_on_the_policys_clock_and_counts_deliveries_apart_from_messages() -> None:
    """Agency's policy runs on Europe/Kyiv: the workflows write "check-back at 06:16 EET (04:16 UTC)", and
    51 deliveries of an incident without a business incident are not "0 messages sent"."""
    report = await drill_seed("002-agency")
    text = render_text(report)
    assert "; times in Europe/Kyiv; " in text.splitlines()[1]
    estimate = next(e for e in report.events if e.kind == "estimate" and e.actor == "dmytro")
    minutes = int(estimate.text.split(" estimates ")[1].split()[0])
    check_back = (estimate.at + timedelta(minutes=minutes)).astimezone(ZoneInfo("Europe/Kyiv"))
    assert f"check-back at {check_back:%H:%M} EET ({check_back.astimezone(UTC):%H:%M} UTC)" in text
    # the record's syncs (the agency keeps its log in Confluence) vary with how many entries each one gathers
    deliveries, *rest = text.splitlines()[-3:]
    syncs = f"sync_record {len(report.sent('sync_record'))}, "
    assert syncs in deliveries
    assert [deliveries.replace(syncs, ""), *rest] == [
        f"Deliveries: {len(report.sent())} recorded, none sent (slack_direct_message 13, send_email 9, slack_post 9, "
        "append_incident_log 4, write_postmortem 2, send_telegram 1, slack_archive_channel 1, slack_ensure_channel 1)",
        "Stakeholder messages: none (not a business incident)",
        "Steps: 11 taken, 0 refused",
    ]


def test_the_cli_reports_the_drills_whole_wall_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loading the workflows counts: the report's wall time is the command's, not only the run's."""
    import starter.drill.runner

    real = starter.drill.runner.run_drill

    async def slow_to_start(*args: Any, **kwargs: Any) -> DrillReport:
        await asyncio.sleep(1.5)  # before run_drill's own clock starts, as loading the workflows is
        return await real(*args, **kwargs)

    monkeypatch.setattr(starter.drill.runner, "run_drill", slow_to_start)
    result = CliRunner().invoke(
        app,
        [
            "drill",
            "--policy",
            str(POLICIES / "000-payments.toml"),
            "--scenario",
            str(SCENARIOS / "000-payments.yaml"),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["wall_seconds"] >= 1.5
