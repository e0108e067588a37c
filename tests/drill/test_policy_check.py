"""`incidentctl policy check`: clean policies pass; each kind of dangling reference is named by its field."""

from __future__ import annotations

import copy
import json
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from settings import ROOT
from starter.cli.main import app
from starter.cli.policy_check import check_policy
from tests.drill.helpers import POLICIES, SEEDS
from workflows.contracts.policy import Policy

EXAMPLE: dict[str, Any] = tomllib.loads((ROOT / "examples" / "policy.toml").read_text())


def problems_after(change: Callable[[dict[str, Any]], None]) -> dict[str, str]:
    """Field path -> message of every problem in the example policy after `change`."""
    raw = copy.deepcopy(EXAMPLE)
    change(raw)
    return {p.path: p.message for p in check_policy(Policy.model_validate(raw))}


@pytest.mark.parametrize(
    "path",
    [
        ROOT / "examples" / "policy.toml",
        *(POLICIES / f"{s}.toml" for s in SEEDS),
        POLICIES / "003-disaster-recovery-teams.toml",
    ],
    ids=lambda p: p.stem,
)
def test_shipped_policies_are_clean(path: Path) -> None:
    result = CliRunner().invoke(app, ["policy", "check", str(path)])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"{path}: ok"


def test_a_role_the_process_uses_held_by_nobody_names_each_use() -> None:
    found = problems_after(lambda raw: raw["roles"].pop("cto"))
    assert "role cto is held by nobody" in found["response.tag_roles[1]"]
    assert "response.call_roles[1]" in found
    assert "role:cto is held by nobody" in found["escalation.tiers[1].notify[0]"]
    assert "business_hours.out_of_hours_notify[0]" in found and "cadence.leads[0]" in found


def test_incident_commander_pmo_and_message_loop_roles_held_by_nobody() -> None:
    def change(raw: dict[str, Any]) -> None:
        for role in ("incident_commander", "project_manager", "pmo", "legal_officer", "elt_approver"):
            raw["roles"].pop(role)

    found = problems_after(change)
    assert "roles.incident_commander" in found
    assert "role pmo" in found["post_incident.notify_pmo"]
    assert "role legal_officer" in found["comms.reviewers[1]"]
    assert any(path.startswith("comms (message loop: authorizes release") for path in found)
    assert "only incident_commander, project_manager (the default) may close" in found["permissions.close"]


def test_message_loop_roles_are_not_required_when_the_loop_never_runs() -> None:
    def change(raw: dict[str, Any]) -> None:
        for role in ("business_lead", "technical_slt", "legal_officer", "elt_approver", "distributor"):
            raw["roles"].pop(role)
        raw["comms"]["auto_trigger_severities"] = []

    assert problems_after(change) == {}


def test_a_channel_without_the_persons_contact() -> None:
    def change(raw: dict[str, Any]) -> None:
        raw["escalation"]["tiers"][1]["notify"] = ["carol"]  # reached by page: carol has no pager_id
        raw["business_hours"]["out_of_hours_notify"] = ["role:cto", "bob"]  # Telegram: bob has none
        del raw["people"]["erin"]["slack_user_id"]  # the message loop DMs its Messaging Officer

    found = problems_after(change)
    assert found["people.carol.pager_id"] == (
        "carol is reached by page (escalation.tiers[1].notify) but has no pager_id"
    )
    assert "business_hours.out_of_hours_notify" in found["people.bob.telegram_chat_id"]
    assert "(comms)" in found["people.erin.slack_user_id"]


def test_audiences_services_and_slack_users() -> None:
    def change(raw: dict[str, Any]) -> None:
        raw["comms"]["recipients"]["strategic_customers"] = [{"name": "Big Biller Ltd", "contacts": []}]
        raw["comms"]["recipients"]["internal_slack_channel"] = ""
        raw["comms"]["recipients"]["internal_email"] = []
        raw["services"]["checkout"]["owner"] = ""
        raw["slack_users"] = {"U0GHOST": "ghost"}

    found = problems_after(change)
    assert "internal_stakeholders has no recipients" in found["comms.audience_order[0]"]
    assert "Big Biller Ltd has no contact" in found["comms.recipients.strategic_customers[0].contacts"]
    assert "no owner" in found["services.checkout.owner"]
    assert found["slack_users.U0GHOST"] == "unknown person 'ghost'"


def test_problems_exit_1_one_line_each_and_json(tmp_path: Path) -> None:
    text = (ROOT / "examples" / "policy.toml").read_text().replace('pmo = ["pmo"]', "pmo = []")
    path = tmp_path / "policy.toml"
    path.write_text(text)
    result = CliRunner().invoke(app, ["policy", "check", str(path)])
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        f"{path}: post_incident.notify_pmo: role pmo is held by nobody (add a person to roles.pmo)",
        f"{path}: 1 problem(s)",
    ]
    as_json = json.loads(CliRunner().invoke(app, ["policy", "check", str(path), "--json"]).stdout)
    assert as_json == {
        "file": str(path),
        "ok": False,
        "problems": [
            {"path": "post_incident.notify_pmo", "message": "role pmo is held by nobody (add a person to roles.pmo)"}
        ],
    }


def test_a_policy_that_does_not_load_is_one_line_naming_file_and_field(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(
        (ROOT / "examples" / "policy.toml").read_text().replace('name = "Bob Ortiz"', 'name = "Bob Ortiz"\nslak = "x"')
    )
    result = CliRunner().invoke(app, ["policy", "check", str(path)])
    assert result.exit_code == 1
    assert result.stderr.strip() == f"incidentctl: {path}: people.bob.slak: Extra inputs are not permitted"


def all_problems_after(change: Callable[[dict[str, Any]], None]) -> list[str]:
    raw = copy.deepcopy(EXAMPLE)
    change(raw)
    return [str(p) for p in check_policy(Policy.model_validate(raw))]


def test_direct_paging_refuses_a_rule_or_tier_channel_the_person_has_no_address_for() -> None:
    def change(raw: dict[str, Any]) -> None:
        raw["paging_provider"] = "direct"
        raw["notification_rules"] = {"high": [{"channel": "push"}, {"channel": "sms", "after_minutes": 2}]}
        raw["people"]["bob"] |= {"ntfy_topic": "bob-pages"}  # bob has a push topic, no phone
        raw["escalation"]["tiers"][1]["channels"] = ["page", "voice"]

    found = all_problems_after(change)
    assert (
        "notification_rules.high[1].channel: bob is paged by sms "
        '(escalation.tiers[0].notify, paging_provider = "direct") but has no phone'
    ) in found
    assert not [p for p in found if p.startswith("notification_rules.high[0]") and "bob" in p], "bob has a topic"
    assert not [p for p in found if "pager_id" in p], "paged directly, nobody needs a pager id"
    assert "people.oleh.phone: oleh is reached by voice (escalation.tiers[1].notify) but has no phone" in found


def test_direct_paging_refuses_a_person_without_any_notification_rules() -> None:
    found = all_problems_after(lambda raw: raw.update(paging_provider="direct"))
    assert (
        "notification_rules: bob is paged directly (escalation.tiers[0].notify) but has no notification rules" in found
    )
