"""The drills keep the record where seeds 002 and 003 keep it: the agency's Confluence page, made from its
template, and the ServiceNow incident of the disaster-recovery team, kept current as the incident moves.
With no credential in a drill, each system's adapter leaves what it would have sent in the drill's outbox."""

from __future__ import annotations

import json

from policy_file import load_policy
from starter.drill.report import DrillReport
from starter.drill.runner import run_drill
from starter.drill.scenario import load_scenario
from tests.drill.helpers import POLICIES, SCENARIOS, drill_seed
from workflows.contracts.activity_io import LOOP, RecordEntry, RecordWrite, record_history
from workflows.contracts.policy import Records
from workflows.contracts.vocabulary import RecordHome
from workflows.incident.model import EvaluateClients

DRILL_BUDGET_SECONDS = 10


def record_writes(report: DrillReport, system: str) -> list[RecordWrite]:
    lines = [json.loads(line) for line in report.documents.get("outbox.jsonl", "").splitlines()]
    return [RecordWrite.model_validate(line["payload"]) for line in lines if line["system"] == system]


def expected(report: DrillReport) -> list[RecordEntry]:
    s = report.incident
    return record_history(s.timeline, report.comms.log if report.comms else None)


async def test_seed002_drill_writes_the_project_log_page_from_the_agencys_template() -> None:
    report = await drill_seed("002-agency")

    written = record_writes(report, "confluence")
    assert written and {w.records.template_id for w in written} == {"project-incident-log"}
    assert {w.key for w in written} == {report.incident.occurrence}
    final = written[-1]
    assert final.entries == expected(report)  # the record's history is the incident's timeline
    assert final.fields["status"] == report.incident.status.value and final.fields["how_resolved"]
    assert len(written) < len(final.entries), "each entry should not cost a write of its own"
    assert report.wall_seconds < DRILL_BUDGET_SECONDS


async def test_seed003_drill_keeps_the_servicenow_incident_current() -> None:
    report = await drill_seed("003-disaster-recovery")

    written = record_writes(report, "servicenow")
    assert written and written[0].fields["status"] == "open" and written[0].fields["severity"] == "SEV1"
    final = written[-1]
    assert final.entries == expected(report)
    said = " ".join(e.text for e in final.entries)
    assert "task T1" in said and "data loss" in said
    assert "task T1 is past due" in said and "task T1 escalated" in said  # the recovery plan's chase, too
    assert final.fields["status"] == report.incident.status.value
    assert report.wall_seconds < DRILL_BUDGET_SECONDS


async def test_seed004_business_incident_record_holds_the_message_loops_reviews() -> None:
    """A business incident's record holds its message loop's log beside the timeline: the Customer Liaison's
    suggested wording and the Technical SLT's answer to it come back to the record, each entry once."""
    policy = load_policy(POLICIES / "004-pagerduty-business.toml")
    policy = policy.model_copy(update={"records": Records(home=RecordHome.JIRA, project="BIZ")})
    scenario, actions = load_scenario(SCENARIOS / "004-pagerduty-business.yaml", policy)
    report = await run_drill(policy, scenario, actions)

    final = record_writes(report, "jira")[-1]
    assert final.entries == expected(report)
    loop = [e for e in final.entries if e.log == LOOP]
    assert loop and [e.number for e in loop] == list(range(1, len(loop) + 1))
    assert any(e.actor == "cleo" for e in loop), "the Customer Liaison's review is not in the record"
    assert any(e.actor == "tariq" and "suggestion" in e.text for e in loop)
    assert report.wall_seconds < DRILL_BUDGET_SECONDS


async def test_seed001_record_holds_each_evaluation_points_answer() -> None:
    """Seed 001's register: the owner's answer at each evaluation point, whether the clients are told, is in the
    record with who gave it."""
    policy = load_policy(POLICIES / "001-process-flow.toml")
    policy = policy.model_copy(update={"records": Records(home=RecordHome.SERVICENOW)})
    scenario, actions = load_scenario(SCENARIOS / "001-process-flow.yaml", policy)
    report = await run_drill(policy, scenario, actions)

    final = record_writes(report, "servicenow")[-1]
    assert final.entries == expected(report)
    answers = [e for e in final.entries if e.kind == "evaluate_clients"]
    asked = [a.payload for a in actions if isinstance(a.payload, EvaluateClients)]
    assert len(asked) == 4
    assert [(e.actor, "not told now" in e.text) for e in answers] == [(a.actor, not a.tell) for a in asked]
    assert report.wall_seconds < DRILL_BUDGET_SECONDS
