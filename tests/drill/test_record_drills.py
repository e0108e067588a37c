"""The drills keep the record where seeds 002 and 003 keep it: the agency's Confluence page, made from its
template, and the ServiceNow incident of the disaster-recovery team, kept current as the incident moves.
With no credential in a drill, each system's adapter leaves what it would have sent in the drill's outbox."""

from __future__ import annotations

import json

from starter.drill.report import DrillReport
from tests.drill.helpers import drill_seed
from workflows.contracts.activity_io import RecordEntry, RecordWrite
from workflows.records.keeper import history

DRILL_BUDGET_SECONDS = 10


def record_writes(report: DrillReport, system: str) -> list[RecordWrite]:
    lines = [json.loads(line) for line in report.documents.get("outbox.jsonl", "").splitlines()]
    return [RecordWrite.model_validate(line["payload"]) for line in lines if line["system"] == system]


def expected(report: DrillReport) -> list[RecordEntry]:
    s = report.incident
    return [RecordEntry(number=n, **e.model_dump()) for n, e in enumerate(history(s), 1)]


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
    assert final.fields["status"] == report.incident.status.value
    assert report.wall_seconds < DRILL_BUDGET_SECONDS
