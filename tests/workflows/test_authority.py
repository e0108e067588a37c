"""Authorization in the policy (workflows/contracts/trust/authority.py): who may give which role (never an approver
role to oneself), who may silence or override and for how long, and whether a critical alert passes a window."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment
from typer.testing import CliRunner

from client import oncall as oncall_client
from client.windows import WindowCache
from settings import ROOT, Settings
from starter.cli.main import app
from tests.workflows.helpers import alert, make_policy
from tests.workflows.test_rules import confirmed
from workflows.contracts.policy import Overrides, Silences
from workflows.contracts.refusal import Refusal
from workflows.contracts.vocabulary import Role
from workflows.incident import rules
from workflows.incident.model import AssignRole
from workflows.oncall.model import AddOverride, AddSilence


def test_self_granting_the_communications_lead_role_is_refused() -> None:
    """A customer service manager (alex) may assign roles, but not make themself the one who approves words."""
    policy = make_policy(permissions={"assign_role": [Role.CUSTOMER_SERVICE_MANAGER]}, assignments={})
    s = confirmed(policy)
    grab = AssignRole(actor="alex", role=Role.COMMUNICATIONS_LEAD, person="alex")
    with pytest.raises(Refusal, match="alex cannot make themself communications lead"):
        rules.check(s, policy, "assign_role", grab)
    rules.check(s, policy, "assign_role", grab.model_copy(update={"person": "carol"}))  # another person: fine


@pytest.mark.parametrize("role", [Role.INCIDENT_COMMANDER, Role.ELT_APPROVER, Role.LEGAL_OFFICER])
def test_no_approver_role_is_given_to_oneself(role: Role) -> None:
    policy = make_policy()
    with pytest.raises(Refusal, match="cannot make themself"):
        rules.check(confirmed(policy), policy, "assign_role", AssignRole(actor="alice", role=role, person="alice"))


def test_assignments_say_which_roles_may_assign_which() -> None:
    policy = make_policy(assignments={Role.COMMUNICATIONS_LEAD: [Role.TECHNICAL_MANAGER]})
    s = confirmed(policy)
    by_alice = AssignRole(actor="alice", role=Role.COMMUNICATIONS_LEAD, person="carol")
    with pytest.raises(Refusal, match=r"only the technical manager can assign the communications lead role"):
        rules.check(s, policy, "assign_role", by_alice)
    rules.check(s, policy, "assign_role", by_alice.model_copy(update={"actor": "oleh"}))  # the technical manager
    rules.check(s, policy, "assign_role", AssignRole(actor="alice", role=Role.RESPONDER, person="bob"))


async def test_a_silence_longer_than_the_policy_allows_is_refused(
    ts_env: WorkflowEnvironment, settings: Settings, worker: None
) -> None:
    policy = make_policy(silences=Silences(longest_hours=4))
    now = await ts_env.get_current_time()

    def window(hours: int, by: str = "alice") -> AddSilence:
        return AddSilence(service="checkout", until=now + timedelta(hours=hours), reason="upgrade", by=by)

    with pytest.raises(oncall_client.OnCallRefused, match=r"longer than the policy allows \(silences.longest_hours"):
        await oncall_client.add_silence(ts_env.client, settings.incident_task_queue, policy, window(5), now)
    with pytest.raises(oncall_client.OnCallRefused, match=r"only the incident commander or .* can open a maintenance"):
        await oncall_client.add_silence(ts_env.client, settings.incident_task_queue, policy, window(1, "carol"), now)
    assert await oncall_client.silences(ts_env.client) == [], "a refused window is not opened"
    opened = await oncall_client.add_silence(ts_env.client, settings.incident_task_queue, policy, window(4), now)
    assert opened.silence_id == "S1"


async def test_an_override_longer_than_the_policy_allows_is_refused(
    ts_env: WorkflowEnvironment, settings: Settings, worker: None
) -> None:
    policy = make_policy(overrides=Overrides(longest_hours=12, who=[Role.INCIDENT_COMMANDER]))
    now = await ts_env.get_current_time()
    long = AddOverride(who="oleh", start=now, end=now + timedelta(hours=13), by="alice")
    with pytest.raises(oncall_client.OnCallRefused, match=r"overrides.longest_hours = 12"):
        await oncall_client.add_override(ts_env.client, settings.incident_task_queue, policy, "primary", long)
    short = long.model_copy(update={"end": now + timedelta(hours=12), "by": "bob"})
    with pytest.raises(oncall_client.OnCallRefused, match=r"only the incident commander can open a override"):
        await oncall_client.add_override(ts_env.client, settings.incident_task_queue, policy, "primary", short)


async def test_a_critical_alert_passes_a_window_where_the_policy_says_so(
    ts_env: WorkflowEnvironment, settings: Settings, worker: None
) -> None:
    now = await ts_env.get_current_time()
    passes, held = make_policy(), make_policy(silences=Silences(critical_passes=False))
    until = now + timedelta(hours=1)
    request = AddSilence(service="checkout", until=until, reason="upgrade", by="alice")
    await oncall_client.add_silence(ts_env.client, settings.incident_task_queue, passes, request, now)
    critical, ordinary = alert(criterion="site_down"), alert()
    windows, inside = WindowCache(ttl=timedelta(0)), now + timedelta(minutes=1)
    marked = await windows.mark(ts_env.client, passes, [critical, ordinary], inside)
    assert [e.silence is not None for e in marked] == [False, True]
    marked = await windows.mark(ts_env.client, held, [critical], inside)
    assert marked[0].silence is not None


def test_policy_check_names_the_new_keys(tmp_path: Path) -> None:
    text = (ROOT / "examples" / "policy.toml").read_text()
    bad = tmp_path / "policy.toml"
    for shipped, broken, field in (
        ('communications_lead = ["incident_commander"]', "communications_lead = []", "assignments"),
        ('communications_lead = ["incident_commander"]', 'communications_lead = ["boss"]', "assignments"),
        ("longest_hours = 24", "longest_hours = 0", "silences.longest_hours"),
        ("longest_hours = 744", "longest = 744", "overrides.longest"),
    ):
        assert shipped in text
        bad.write_text(text.replace(shipped, broken, 1))
        result = CliRunner().invoke(app, ["policy", "check", str(bad)])
        assert result.exit_code != 0 and field in result.output, (broken, result.output)
