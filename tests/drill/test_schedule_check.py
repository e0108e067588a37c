"""`incidentctl policy check` on schedules: a bad member, time zone or weekday is refused when the file
loads; a schedule with times nobody is on call is reported with the first such time."""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from settings import ROOT
from starter.cli.main import app
from starter.cli.policy_check import check_policy
from workflows.contracts.policy import Policy
from workflows.oncall.rotation import first_gap

EXAMPLE = (ROOT / "examples" / "policy.toml").read_text()
OFFICE = '[schedules.office]\ntimezone = "Europe/London"\n\n[[schedules.office.layers]]\nmembers = ["bob"]\n'


def policy_with(tmp_path: Path, extra: str) -> Path:
    path = tmp_path / "policy.toml"
    path.write_text(EXAMPLE + "\n" + extra)
    return path


def check(path: Path) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["policy", "check", str(path)])
    return result.exit_code, result.output + result.stderr


def test_schedule_with_gaps_is_reported_with_its_first_gap(tmp_path: Path) -> None:
    path = policy_with(tmp_path, OFFICE + 'restrictions = [{ start = "09:00", end = "17:00" }]\n')
    code, output = check(path)
    assert code == 1 and "schedules.office: nobody is on call from " in output
    policy = Policy.model_validate(tomllib.loads(path.read_text()))
    monday_morning = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)  # 10:00 BST
    assert first_gap(policy.schedules["office"], monday_morning) == datetime(2026, 6, 1, 16, 0, tzinfo=UTC)
    assert first_gap(policy.schedules["office"], monday_morning.replace(hour=20)) == monday_morning.replace(hour=20)


def test_round_the_clock_schedule_has_no_gap(example_policy: Policy) -> None:
    assert not [p for p in check_policy(example_policy) if p.path.startswith("schedules")]


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (OFFICE.replace('"bob"', '"zed"'), "schedules.office: unknown person 'zed'"),
        (OFFICE.replace("Europe/London", "Europe/Atlantis"), "unknown time zone 'Europe/Atlantis'"),
        (OFFICE + 'handoff_day = "funday"\n', "handoff_day"),
        (OFFICE + '\n[[escalation.tiers]]\nnotify = ["schedule:nope"]\nwait_minutes = 5\n', "unknown schedule 'nope'"),
    ],
)
def test_bad_schedules_are_refused_naming_the_field(tmp_path: Path, extra: str, says: str) -> None:
    code, output = check(policy_with(tmp_path, extra))
    assert code != 0 and says in output, output


def test_schedule_members_need_the_contact_their_tier_pages_with(tmp_path: Path) -> None:
    extra = OFFICE.replace('"bob"', '"carol"')  # carol has no pager id
    text = EXAMPLE.replace('notify = ["role:responder"]', 'notify = ["schedule:office"]') + "\n" + extra
    path = tmp_path / "policy.toml"
    path.write_text(text)
    code, output = check(path)
    assert code == 1 and "people.carol.pager_id: carol is reached by page (escalation.tiers[0].notify)" in output


def test_roles_held_by_a_schedule_count_as_held_except_in_the_message_loop(tmp_path: Path) -> None:
    text = EXAMPLE.replace('incident_commander = ["alice"]', 'incident_commander = ["schedule:office"]')
    text = text.replace('legal_officer = ["dana"]', 'legal_officer = ["schedule:office"]')
    path = tmp_path / "policy.toml"
    path.write_text(text + "\n" + OFFICE)
    code, output = check(path)
    assert "incident_commander is held by nobody" not in output
    assert code == 1 and "roles.legal_officer: the message loop cannot page schedule:office" in output
