"""Moving in: each source's API export (written from its API reference, with DST changes, several layers,
restrictions and overrides) becomes a policy fragment that `policy check` accepts once appended, names every
item it could not carry over, and pages whoever the source itself says is on call: the expected person comes
from the export's own rendering of the schedule (PagerDuty's final schedule, OpsGenie's timeline, Grafana
OnCall's final shifts), asked of `incidentctl oncall` after the `# run:` override commands were run."""

from __future__ import annotations

import asyncio
import json
import shlex
import shutil
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment
from typer.testing import CliRunner

from policy_file import load_policy
from settings import ROOT, Settings
from starter.cli.main import app
from tests.api import decision_api

DATA = Path(__file__).parent / "data"
Moment = tuple[datetime, str]  # an instant at which the source says this address is on call ("" nobody)


def pagerduty_answer(export: Path) -> list[Moment]:
    """Every handoff of PagerDuty's final schedule (GET /schedules/{id}?since&until), and who it hands to."""
    users = {u["id"]: u["email"] for u in json.loads((export / "users.json").read_text())["users"]}
    schedule = json.loads((export / "schedules" / "PSCHED1.json").read_text())["schedule"]
    entries = schedule["final_schedule"]["rendered_schedule_entries"]
    return [(datetime.fromisoformat(e["start"]), users[e["user"]["id"]]) for e in entries]


def opsgenie_answer(export: Path) -> list[Moment]:
    """Every start and end of a period in OpsGenie's final timeline (GET /v2/schedules/{id}/timeline), and who is
    on call then: where rotations overlap OpsGenie notifies each; here the last rotation's person is paged."""
    timeline = json.loads((export / "schedules" / "d875alp4-9b4e-4219-a803-0c26936d18de.timeline.json").read_text())
    data = timeline["data"]
    periods = [
        (
            rotation["order"],
            datetime.fromisoformat(p["startDate"]),
            datetime.fromisoformat(p["endDate"]),
            p["recipient"]["name"],
        )
        for rotation in data["finalTimeline"]["rotations"]
        for p in rotation["periods"]
    ]
    end = datetime.fromisoformat(data["endDate"])
    moments = sorted({at for _, start, stop, _ in periods for at in (start, stop) if at < end})
    return [(at, max(((o, who) for o, a, b, who in periods if a <= at < b), default=(0, ""))[1]) for at in moments]


def grafana_answer(export: Path) -> list[Moment]:
    """Every start of Grafana OnCall's final shifts (GET /api/v1/schedules/{id}/final_shifts)."""
    shifts = json.loads((export / "final_shifts" / "SBM7DV7BKFUYU.json").read_text())["results"]
    return [(datetime.fromisoformat(s["shift_start"]), s["user_email"]) for s in shifts]


@dataclass
class Source:
    command: str
    export: Path
    escalation: str
    schedule: str
    answer: Callable[[Path], list[Moment]] | None = None  # the source's own rendering, where the export has it


SOURCES = {
    "opsgenie": Source("opsgenie", DATA / "opsgenie", "Checkout_escalation", "checkout-on-call", opsgenie_answer),
    "pagerduty": Source("pagerduty", DATA / "pagerduty", "Checkout", "checkout-primary", pagerduty_answer),
    "grafana-oncall": Source("grafana-oncall", DATA / "grafana-oncall", "Payments", "payments-on-call", grafana_answer),
}


@pytest.fixture
def base_policy(tmp_path: Path) -> Path:
    """The example policy without its escalation ladder: the import brings one."""
    text = (ROOT / "examples" / "policy.toml").read_text()
    path = tmp_path / "base.toml"
    path.write_text(text[: text.index("# Escalation ladder")] + text[text.index("# On-call schedules") :])
    return path


def imported(source: Source, base: Path) -> tuple[Path, str, str]:
    """The base policy with the fragment appended, the fragment, and what the command said on stderr."""
    env = {"INCIDENT_POLICY": str(base)}
    result = CliRunner().invoke(
        app, ["import", source.command, str(source.export), "--escalation", source.escalation], env=env
    )
    assert result.exit_code == 0, result.output
    merged = base.with_name("policy.toml")
    merged.write_text(base.read_text() + "\n" + result.stdout)
    return merged, result.stdout, result.stderr


@pytest.mark.parametrize("name", SOURCES)
def test_imported_fragment_passes_policy_check(base_policy: Path, name: str) -> None:
    merged, _, _ = imported(SOURCES[name], base_policy)
    check = CliRunner().invoke(app, ["policy", "check", str(merged)])
    assert check.exit_code == 0 and check.stdout.strip().endswith(": ok"), check.output


def test_pagerduty_rules_urgencies_delays_and_what_is_not_carried_over(base_policy: Path) -> None:
    merged, fragment, stderr = imported(SOURCES["pagerduty"], base_policy)
    policy = load_policy(merged)
    priya = policy.people["priya"]
    assert priya.phone == "+14155550134" and priya.pager_id == "priya@example.com"
    assert priya.notification_rules is not None
    assert [(s.channel.value, s.after_minutes) for s in priya.notification_rules.high] == [("sms", 0), ("voice", 2)]
    assert [(s.channel.value, s.after_minutes) for s in priya.notification_rules.low] == [("email", 0), ("sms", 30)]
    bob = policy.people["bob"]  # already in the policy, matched by e-mail: his rules are added to him
    assert bob.notification_rules is not None and [s.channel.value for s in bob.notification_rules.low] == ["email"]
    assert [(t.notify, t.wait_minutes) for t in policy.escalation.tiers] == [
        (["schedule:checkout-primary"], 10),
        (["tom"], 15),
    ]
    assert policy.escalation.repeat == 2
    for named in (
        'people.bob.phone: bob is in the policy already: set phone = "+12125550101"',
        "bob@example.com's PagerDuty app: push goes through ntfy here",
        "priya@example.com's number +14155550199: a person has one phone number here",
        "priya@example.com's high-urgency rule (phone_contact_method after 10 min): it calls +14155550199",
        "escalation policy 'Checkout' rule 2: Platform Secondary: a schedule_reference not in the export",
        "escalation policy 'Platform': a policy has one ladder",
    ):
        assert f"# not carried over: {named}" in fragment
        assert f"not carried over: {named}" in stderr
    assert fragment.count("# not carried over:") == stderr.count("not carried over:")


@pytest.fixture
async def incidentctl(
    dev_env: WorkflowEnvironment, settings: Settings, worker: None, base_policy: Path
) -> AsyncIterator[Callable[..., Any]]:
    async def run(policy: Path, *args: str) -> Any:
        async with decision_api(dev_env.client, settings, load_policy(policy)) as api_env:
            env = {
                "TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host,
                "INCIDENT_TASK_QUEUE": settings.incident_task_queue,
                "INCIDENT_POLICY": str(policy),
                "INCIDENTCTL_USER": "alice",
                **api_env,
            }
            results = []
            for command in args:
                argv = shlex.split(command)
                results.append(await asyncio.to_thread(CliRunner().invoke, app, argv, env=env))
            return results

    yield run


@pytest.mark.parametrize("name", [name for name, source in SOURCES.items() if source.answer])
async def test_oncall_agrees_with_the_source_at_every_handoff(
    incidentctl: Callable[..., Any], base_policy: Path, name: str
) -> None:
    source = SOURCES[name]
    merged, fragment, _ = imported(source, base_policy)
    overrides = [
        line.removeprefix("# run: incidentctl ") for line in fragment.splitlines() if line.startswith("# run: ")
    ]
    assert overrides, "the export's overrides become commands"
    assert source.answer is not None
    moments = source.answer(source.export)
    assert len(moments) >= 12
    asks = [f"oncall --schedule {source.schedule} --at {at.isoformat()} --json" for at, _ in moments]
    results = await incidentctl(merged, *overrides, *asks)
    for result in results:
        assert result.exit_code == 0, result.output
    policy = load_policy(merged)
    people = {p.email: person_id for person_id, p in policy.people.items()}
    found = [
        (at, json.loads(r.stdout)[0]["on call"]) for (at, _), r in zip(moments, results[len(overrides) :], strict=True)
    ]
    assert found == [(at, people.get(address, "nobody")) for at, address in moments]


def test_grafana_oncall_policies_chains_and_what_is_not_carried_over(base_policy: Path) -> None:
    merged, fragment, _ = imported(SOURCES["grafana-oncall"], base_policy)
    policy = load_policy(merged)
    ines = policy.people["ines"]
    assert ines.slack_user_id == "U02INES" and ines.notification_rules is not None
    assert [(s.channel.value, s.after_minutes) for s in ines.notification_rules.low] == [("slack", 0), ("email", 15)]
    assert [(s.channel.value, s.after_minutes) for s in ines.notification_rules.high] == [("slack", 0)]
    assert [(t.notify, t.wait_minutes) for t in policy.escalation.tiers] == [
        (["schedule:payments-on-call"], 10),
        (["jonas"], 15),
    ]
    assert policy.escalation.repeat == 5
    assert [layer.name for layer in policy.schedules["payments-on-call"].layers] == [
        "Weekly",
        "Office hours",
        "Weekend days",
    ]
    for named in (
        "ines's important notification rule notify_by_mobile_app_critical after 0 min: ines has no ntfy_topic here",
        "ines's important notification rule notify_by_phone_call after 5 min: ines has no phone here",
        "schedule data-platform: an iCal schedule has no rotations to read",
        "escalation chain 'Payments' step 4 (trigger_webhook): no equivalent here",
        "escalation chain 'Data': a policy has one ladder",
    ):
        assert f"# not carried over: {named}" in fragment


def test_opsgenie_rules_contacts_escalation_and_what_is_not_carried_over(base_policy: Path) -> None:
    merged, fragment, _ = imported(SOURCES["opsgenie"], base_policy)
    policy = load_policy(merged)
    dara = policy.people["dara"]
    assert dara.phone == "+447700900123" and dara.notification_rules is not None
    assert [(s.channel.value, s.after_minutes) for s in dara.notification_rules.high] == [("sms", 2), ("voice", 5)]
    assert [(s.channel.value, s.after_minutes) for s in dara.notification_rules.low] == [("email", 0)]
    assert policy.schedules["checkout-on-call"].layers[0].members == ["bob", "dara"]
    assert [(t.notify, t.wait_minutes) for t in policy.escalation.tiers] == [
        (["schedule:checkout-on-call"], 10),
        (["oleh"], 15),
    ]
    assert policy.escalation.repeat == 2
    assert "# run: incidentctl override add checkout-on-call --who dara --from 2030-03-30T20:00Z" in fragment
    for named in (
        "dara@example.com's OpsGenie app: push goes through ntfy here",
        "dara@example.com's notification rule 'New alert' step 2 (sms after 30 min): disabled in OpsGenie",
        "dara@example.com's notification rule 'Acked': only new-alert rules page here",
        "override 'ovr-2' of checkout-on-call: a team cannot be on call here",
        "escalation 'Checkout_escalation' rule 3: notifies 'all'",
        "escalation 'Platform_escalation': a policy has one ladder",
    ):
        assert f"# not carried over: {named}" in fragment


def test_grafana_oncall_names_shifts_and_waits_it_cannot_carry(base_policy: Path, tmp_path: Path) -> None:
    export = tmp_path / "grafana-oncall"
    shutil.copytree(SOURCES["grafana-oncall"].export, export)
    shifts = json.loads((export / "on_call_shifts.json").read_text())
    shifts["results"][2]["by_monthday"] = [1, 15]
    (export / "on_call_shifts.json").write_text(json.dumps(shifts))
    steps = json.loads((export / "escalation_policies.json").read_text())
    steps["results"].insert(
        0, {"id": "E0", "escalation_chain_id": "F5JU6KJET33FE", "position": -1, "type": "wait", "duration": 300}
    )
    (export / "escalation_policies.json").write_text(json.dumps(steps))

    _, fragment, _ = imported(Source("grafana-oncall", export, "Payments", "payments-on-call"), base_policy)

    assert "# not carried over: schedule payments-on-call shift 'Weekend days': a shift on some months" in fragment
    assert (
        "# not carried over: escalation chain 'Payments' step 0 (wait): here the first tier is paged at once"
        in fragment
    )


@pytest.mark.parametrize(
    ("change", "refusal"),
    [
        (lambda export: shutil.rmtree(export), "is not a directory; export into one first"),
        (lambda export: (export / "users.json").write_text("<html>"), "users.json: not JSON"),
        (lambda export: (export / "users.json").write_text('{"users": {}}'), "expected PagerDuty's list answer"),
        (lambda export: (export / "users.json").write_text('{"users": [{"id": 7}]}'), "has neither an e-mail"),
        (
            lambda export: (export / "schedules" / "X.json").write_text(
                '{"schedule": {"schedule_layers": [{"rotation_turn_length_seconds": 86400}]}}'
            ),
            "not what the API exports",
        ),
        (lambda export: None, "no escalation policy 'Nope' in escalation_policies.json"),
    ],
)
def test_an_export_that_cannot_be_read_is_refused_in_one_line(
    base_policy: Path, tmp_path: Path, change: Callable[[Path], None], refusal: str
) -> None:
    export = tmp_path / "pagerduty"
    shutil.copytree(SOURCES["pagerduty"].export, export)
    change(export)
    env = {"INCIDENT_POLICY": str(base_policy)}
    result = CliRunner().invoke(app, ["import", "pagerduty", str(export), "--escalation", "Nope"], env=env)
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("incidentctl: "), result.stderr
    assert refusal in result.stderr


def test_a_name_with_a_line_break_stays_inside_its_report_line(base_policy: Path, tmp_path: Path) -> None:
    export = tmp_path / "pagerduty"
    shutil.copytree(SOURCES["pagerduty"].export, export)
    found = json.loads((export / "escalation_policies.json").read_text())
    found["escalation_policies"][1]["name"] = 'Platform\n[people.mallory]\nname = "Mallory"'
    (export / "escalation_policies.json").write_text(json.dumps(found))

    merged, fragment, _ = imported(Source("pagerduty", export, "Checkout", "checkout-primary"), base_policy)

    assert "mallory" not in load_policy(merged).people
    assert "# not carried over: escalation policy 'Platform\\n[people.mallory]" in fragment
