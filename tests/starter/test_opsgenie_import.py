"""`incidentctl import opsgenie-schedule`: OpsGenie's Schedule API JSON (written from its public API
reference) becomes the policy's schedule; what has no equivalent is refused by name."""

from __future__ import annotations

import json
import tomllib
from datetime import UTC, date, datetime, time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from settings import ROOT
from starter.cli.main import app
from starter.importers.fragment import ImportRefused, schedule_toml
from starter.importers.opsgenie import schedule_from_opsgenie
from workflows.contracts.policy import Policy
from workflows.oncall.rotation import Restriction, Rotation, Schedule, Weekday, on_call

FILE = Path(__file__).parent / "data" / "opsgenie-schedule.json"


def test_rotations_become_layers_with_handoff_weekday_length_end_and_restrictions(example_policy: Policy) -> None:
    name, schedule = schedule_from_opsgenie(FILE.read_text(), example_policy)
    assert name == "checkout-on-call" and schedule.timezone == "Europe/London"
    weekly, nights, weekend = schedule.layers
    assert (weekly.members, weekly.rotation, weekly.handoff_day, weekly.handoff, weekly.starts) == (
        ["bob", "alice"],  # usernames matched to people by e-mail, whatever their case
        Rotation.WEEKLY,
        Weekday.MONDAY,
        time(9, 0),
        date(2026, 1, 5),
    )
    assert (nights.members, nights.rotation, nights.length) == (["oleh", ""], Rotation.DAILY, 2)
    assert nights.ends == datetime(2027, 1, 4, 22, 0, tzinfo=UTC)
    assert nights.restrictions == [Restriction(start=time(22), end=time(6, 30))]
    assert weekend.restrictions == [Restriction(start_day="saturday", start=time(8), end_day="sunday", end=time(20))]


def test_imported_schedule_pages_like_opsgenie(example_policy: Policy) -> None:
    _, schedule = schedule_from_opsgenie(FILE.read_text(), example_policy)
    assert on_call(schedule, [], datetime(2026, 1, 6, 12, 0, tzinfo=UTC)) == "bob"  # Tuesday, week 1
    assert on_call(schedule, [], datetime(2026, 1, 13, 12, 0, tzinfo=UTC)) == "alice"  # week 2
    assert on_call(schedule, [], datetime(2026, 1, 5, 23, 0, tzinfo=UTC)) == "oleh"  # night, oleh's two days
    assert on_call(schedule, [], datetime(2026, 1, 7, 23, 0, tzinfo=UTC)) == "bob"  # "none"'s nights: weekly
    assert on_call(schedule, [], datetime(2026, 1, 10, 12, 0, tzinfo=UTC)) == "alice"  # the weekend layer


def test_printed_toml_is_the_same_schedule_and_a_valid_policy(example_policy: Policy) -> None:
    name, schedule = schedule_from_opsgenie(FILE.read_text(), example_policy)
    text = "\n".join(schedule_toml(name, schedule))
    assert Schedule.model_validate(tomllib.loads(text)["schedules"][name]) == schedule
    policy_text = (ROOT / "examples" / "policy.toml").read_text() + "\n" + text
    Policy.model_validate(tomllib.loads(policy_text))


@pytest.mark.parametrize(
    ("change", "refusal"),
    [
        (lambda d: d["data"].update(timezone="Mars/Olympus"), "timezone: unknown time zone 'Mars/Olympus'"),
        (
            lambda d: d["data"]["rotations"][0]["participants"].append({"type": "team", "name": "sre"}),
            "rotations[0].participants[2]: a team (sre) cannot be imported",
        ),
        (
            lambda d: d["data"]["rotations"][0]["participants"].append({"type": "user", "username": "zed@x.io"}),
            "rotations[0].participants[2]: zed@x.io is no person of the policy",
        ),
        (lambda d: d["data"]["rotations"][1].update(type="monthly"), "rotations[1]: 'monthly' is not a valid Rotation"),
        (lambda d: d["data"]["rotations"][2].pop("startDate"), "rotations[2]: missing startDate"),
        (lambda d: d["data"].update(rotations=[]), "the schedule has no rotations"),
    ],
)
def test_what_has_no_equivalent_is_refused_by_name(example_policy: Policy, change, refusal: str) -> None:
    body = json.loads(FILE.read_text())
    change(body)
    with pytest.raises(ImportRefused, match=refusal.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        schedule_from_opsgenie(json.dumps(body), example_policy)


def test_rotations_may_come_from_the_rotations_endpoint(example_policy: Policy) -> None:
    body = json.loads(FILE.read_text())
    rotations = {"data": body["data"].pop("rotations")}
    _, schedule = schedule_from_opsgenie(json.dumps(body), example_policy, json.dumps(rotations))
    assert len(schedule.layers) == 3


def test_cli_prints_toml_to_append_and_refuses_in_one_line(tmp_path: Path) -> None:
    env = {"INCIDENT_POLICY": str(ROOT / "examples" / "policy.toml")}
    result = CliRunner().invoke(app, ["import", "opsgenie-schedule", str(FILE), "--name", "checkout"], env=env)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith('[schedules.checkout]\ntimezone = "Europe/London"')
    taken = CliRunner().invoke(app, ["import", "opsgenie-schedule", str(FILE), "--name", "primary"], env=env)
    assert taken.exit_code == 1 and taken.stderr.strip().count("\n") == 0
    assert "already has a schedule 'primary'" in taken.stderr
    missing = CliRunner().invoke(app, ["import", "opsgenie-schedule", str(tmp_path / "nope.json")], env=env)
    assert missing.exit_code == 1 and "cannot read" in missing.stderr
