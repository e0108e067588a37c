"""Each seed's policy through its scenario: the seed's steps happen, in order and on time.

The drills run the real workflows on the time-skipping server; these tests read only the drill's report:
what the recorders saw sent, the incident's timeline and the message loop's state.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from tests.drill.helpers import POLICIES, SCENARIOS, drill, drill_seed, events, minutes, step_minute
from workflows.comms.model import ApprovalKind, Step
from workflows.contracts.vocabulary import Phase, Role, Status

SUMMARY_HEADINGS = [
    "What happened",
    "How the issue was identified",
    "Root cause",
    "Steps taken (communication and technical)",
    "Key takeaways and recommendations",
]


INTERNAL_LISTS_000 = ["support-leads@payments.example", "account-management@payments.example"]
EXTERNAL_PARTIES_000 = [
    "ap@city-water.example",
    "billing@county-power.example",
    "support@printmail.example",
    "integrations@ledgersoft.example",
]


def sent_to(report, activity: str, person: str, text: str = "") -> list[float]:
    return minutes([e for e in report.sent(activity) if person in e.to and text in e.text])


async def test_seed000_assessed_then_opsgenie_zoom_one_channel_and_comms_lead_gates_external() -> None:
    report = await drill_seed("000-payments")
    confirmed = step_minute(report, "ian classify")
    # "Once the incident is confirmed, a Incident should be created through Ops Genie. Then after, a
    #  zoom call should be started, and slack channel for the incident must be created."
    pages = report.sent("page_open")
    assert pages and all(e.minute >= confirmed for e in pages), "nobody is paged before the assessment"
    assert pages[0].data["provider"] == "opsgenie" and pages[0].to == ["raj"]  # the on-call engineer
    [conference] = report.sent("conference_create")
    assert "zoom.us" in conference.text and conference.minute >= confirmed
    assert len(report.sent("slack_ensure_channel")) == 1, "one Slack channel for the incident"

    # "All external communications should be approved by the Communications Lead."
    [early] = [s for s in report.steps if not s.accepted]
    assert early.step.startswith("ian approve_send investigation/strategic_customers")
    assert "Communications Lead (cora)" in early.answer
    assert report.comms is not None
    external = next(m for m in report.comms.messages if m.message_id == "investigation/strategic_customers")
    by_kind = {a.kind: a for a in external.approvals}
    assert by_kind[ApprovalKind.EXTERNAL].by == "cora" and by_kind[ApprovalKind.SEND].by == "ian"
    assert by_kind[ApprovalKind.EXTERNAL].at < by_kind[ApprovalKind.SEND].at
    billers = [e for e in report.sent("send_email") if "ap@city-water.example" in e.to]
    assert len(billers) == 2 and billers[0].data["personal"]
    assert min(e.at for e in billers) > by_kind[ApprovalKind.SEND].at

    # "Regular updates should be provided to all relevant internal stakeholders": the leads and the support
    # leads' and account management's lists
    assert sent_to(report, "slack_direct_message", "vic", "Status update") == pytest.approx([28, 55], abs=0.5)
    for internal in INTERNAL_LISTS_000:
        updates = [e for e in report.sent("send_email") if internal in e.to and "Status update" in e.data["text"]]
        assert minutes(updates) == pytest.approx([28, 55], abs=0.5), internal
    # "Once the incident is resolved, the Communications lead should communicate this to all relevant
    #  parties": nothing leaves, internal copies included, until she sends it, in her words, each address once.
    sent = step_minute(report, "cora send_resolution")
    words = [e for e in report.sent("send_email") if e.data["text"].startswith("Payments to you were delayed")]
    addresses = sorted(a for e in words for a in e.to if "@" in a)  # the leads are reached as people
    assert addresses == sorted(EXTERNAL_PARTIES_000 + INTERNAL_LISTS_000)
    assert all(e.minute == pytest.approx(sent, abs=0.05) for e in words)
    resolution = [e for e in report.sent("slack_post") if e.text.startswith("Payments to you were delayed")]
    assert minutes(resolution) == pytest.approx([sent], abs=0.05)
    asked = [e for e in report.sent("slack_direct_message") if "send-resolution" in e.text]
    assert asked and asked[0].to == ["cora"] and "Overview:" in asked[0].text and "Prevention:" in asked[0].text
    # the review invites whom the policy names; the close waits for the plan's update
    invited = {a for e in report.sent("slack_direct_message") if "Post-incident review" in e.text for a in e.to}
    assert invited == {"ian", "cora", "vic", "raj"}
    assert report.incident.checklist["review_held"] and report.incident.checklist["plan_updated"]
    assert report.incident.status is Status.CLOSED
    assert report.unanswered == []


async def test_seed000_a_silent_communications_lead_means_nothing_leaves_and_her_approvals_stay_owed(
    tmp_path: Path,
) -> None:
    """Seed 000's drill with every step of the Communications Lead taken out: the incident runs, is paged,
    updated and resolved, yet no external party receives a word, and the drill ends owing her decisions."""
    scenario = yaml.safe_load((SCENARIOS / "000-payments.yaml").read_text())
    scenario["steps"] = [step for step in scenario["steps"] if step.get("as") != "cora"]
    silent = tmp_path / "000-silent-comms-lead.yaml"
    silent.write_text(yaml.safe_dump(scenario))
    report = await drill(POLICIES / "000-payments.toml", silent)
    assert report.sent("page_open") and step_minute(report, "ian resolve")
    outside = [e for e in report.sent("send_email") if set(e.to) & set(EXTERNAL_PARTIES_000)]
    assert outside == [], "nothing reaches billers, vendors or software providers without her"
    owed = "\n".join(report.unanswered)
    assert "the resolution message from cora" in owed
    [refused_close] = [s for s in report.steps if not s.accepted and "close" in s.step]
    assert "the Communications Lead has not sent the resolution message" in refused_close.answer


async def test_seed001_local_incident_owned_by_the_customer_service_manager_end_to_end() -> None:
    report = await drill_seed("001-process-flow")
    classified = step_minute(report, "ana classify")
    # "determining whether the issue at hand is an incident or a disturbance" is a person's decision: the
    # clock confirms nothing, the assessors are asked again
    assert not [e for e in report.sent("page_open") if e.minute < classified]
    [again] = [e for e in report.sent("slack_direct_message") if "Still unassessed" in e.text]
    assert again.minute == 20 and again.to == ["ana", "ben"]
    # local: the Customer Service Manager owns it (Incident Commander by scope)
    first, second = events(report, "incident", "confirmed")
    assert "local incident; owner of the action plan: sara" in first.text
    assert any("incident_commander sara" in e.text for e in events(report, "incident", "roles"))
    # a disturbance after all, then an incident again, each with its reason: its pages stop, then page afresh
    [down, up] = [e for e in events(report, "incident", "classify") if "graded" in e.text]
    assert "downgraded to a disturbance, owned by sara" in down.text and "proxy" in down.text
    assert "upgraded to an incident" in up.text and "two more regions" in up.text
    assert [e.minute for e in report.sent("page_resolve") if e.minute < up.minute] == [down.minute]
    assert [e.minute for e in report.sent("page_open")] == [classified, second.minute]
    # evaluation points: the owner decides whether and how clients are told, and the loop does as she says
    asked = [e for e in report.sent("slack_direct_message") if "Evaluation point" in e.text]
    assert {tuple(e.to) for e in asked} == {("sara",)}
    assert report.comms is not None
    steps = {m.message_id: m for m in report.comms.messages}
    assert steps["investigation/all_customers"].step is Step.SKIPPED
    assert steps["investigation/all_customers"].ended_reason.startswith("not now: slowness only so far")
    assert steps["investigation-2/all_customers"].step is Step.SENT  # "tell clients now" at the update
    assert steps["resolution/all_customers"].step is Step.SENT
    assert [e.to for e in report.sent("send_email") if "affected-clients@lists.services.example" in e.to]
    # "All incidents are logged in the ORMIS system": both logs, written where the policy says
    logs = report.sent("append_incident_log")
    assert {e.data["log"] for e in logs} == {"project", "global"}
    assert {e.data["log_dir"] for e in logs} == {".data/ormis"}
    assert {"projects/portal-incident-log.md", "global-incident-log.md"} <= set(report.documents)
    # "completion only when documentation is complete, stakeholders satisfied, preventive measures in place"
    refused = [s for s in report.steps if not s.accepted]
    assert [s.step for s in refused] == ["sara close", "sara close"]
    assert "missing postmortem_published" in refused[0].answer
    assert "confirm the stakeholders are satisfied" in refused[1].answer
    assert report.incident.status is Status.CLOSED
    assert report.incident.resolution["preventive_measures"].startswith("pool saturation alerts at 70 %")


async def test_seed002_tags_calls_updates_telegram_and_post_resolution_documents() -> None:
    report = await drill_seed("002-agency")
    # "the PM must tag the responsible developer, CTO (Oleh) and Account Manager (Alex / Sophia)"
    [channel] = report.sent("slack_ensure_channel")
    assert channel.to == ["dmytro", "oleh", "alex"] and channel.minute < 0.1
    welcome = channel.data["first_post"]  # the channel opens with its welcome
    assert set(welcome["mention_user_ids"]) == {"U02DMYTRO", "U02OLEH", "U02ALEX"}
    # "assign the task to the responsible developer and request an estimate"
    assert sent_to(report, "slack_direct_message", "dmytro", "give an estimate") == [0]
    # out of hours (Monday 03:00 in Kyiv): "contact Oleh, Alex, or Sophia via Telegram"
    telegrams = report.sent("send_telegram")
    assert sorted(p for e in telegrams for p in e.to) == ["alex", "oleh", "sophia"]
    assert all(e.minute < 0.1 and "Out of hours" in e.text for e in telegrams)
    # "If no progress is made within 30 min - 1 hour, the PM must organize a call"
    [call, *_] = events(report, "incident", "call")
    assert call.minute == pytest.approx(30, abs=0.05)
    assert "dmytro, oleh, alex" in call.text
    for person in ("dmytro", "oleh", "alex"):
        assert sent_to(report, "slack_direct_message", person, "join the call")[0] == pytest.approx(30, abs=0.05)
    # "update the client and leads every 30 minutes"
    for lead in ("oleh", "alex"):
        updates = sent_to(report, "slack_direct_message", lead, "Status update on")
        assert len(updates) == 3 and all(b - a <= 30 for a, b in zip([0, *updates], updates, strict=False))
    assert (
        len([e for e in report.sent("send_email") if e.to == ["it@shop-client.example"] and "Update:" in e.text]) == 3
    )
    assert not events(report, "incident", "cadence", "missed")
    # after the resolution: both incident logs, the PMO, the summary with its five headings
    resolved = step_minute(report, "paula resolve")
    after = [e for e in report.sent("append_incident_log") if e.minute >= resolved]
    assert {e.data["log"] for e in after} >= {"project", "global"}
    assert [e.minute for e in report.sent() if "pmo" in e.to and "agenda" in e.text] == [
        pytest.approx(resolved, abs=0.05)
    ]
    summary = report.sent("write_postmortem")[0]
    assert summary.minute == pytest.approx(resolved, abs=0.05)
    assert list(summary.data["sections"]) == SUMMARY_HEADINGS
    [postmortem] = [text for name, text in report.documents.items() if name.startswith("postmortems/")]
    assert all(f"## {heading}" in postmortem for heading in SUMMARY_HEADINGS)
    root_cause = postmortem.split("## Root cause", 1)[1].split("##", 1)[0]
    assert "renamed a required field" in root_cause
    # seed 002's summary: "steps taken", in the responders' own words, with who said them and when
    steps = postmortem.split("## Steps taken (communication and technical)", 1)[1].split("##", 1)[0]
    for words in (
        "dmytro: progress from dmytro: patch deployed to staging; testing a real order",
        "dmytro estimates 40 min to resolve; check-back at",
        "the payment provider changed its API; patching the client",
        "paula: status update from paula: Cause found: the payment provider's API change.",
    ):
        assert words in steps, words
    assert "| when (Europe/Kyiv) |" in postmortem
    assert report.incident.status is Status.CLOSED


async def test_seed003_poc_paged_tasks_by_priority_rto_rpo_and_every_stakeholder() -> None:
    report = await drill_seed("003-disaster-recovery")
    # Datadog's high priority is a SEV1; "the POC receives instant notifications"
    assert report.incident.severity.priority == "high"
    assert report.sent("page_open")[0].to == ["priya"] and report.sent("page_open")[0].minute < 0.1  # within seconds
    # "prioritized based on the business impact and recovery time objectives (RTO)": added reports first,
    # the plan ranks the storefront (RTO 30 min) and orders-db (60 min) before the reports (480 min)
    [ranked] = [e for e in events(report, "incident", "assign_task") if e.text.startswith("task T3")]
    assert "RTO 30 min" in ranked.text
    assert [t.task_id for t in report.incident.tasks] == ["T3", "T2", "T1"]
    assert sent_to(report, "slack_direct_message", "bo", "T1 Re-run") == pytest.approx([5], abs=0.2)
    # "Escalate Delays": the reports run late (due at 245): bo is nudged, then senior management is told
    assert sent_to(report, "slack_direct_message", "bo", "was due at") == pytest.approx([245], abs=0.1)
    assert sent_to(report, "slack_direct_message", "cecilia", "escalated (late). T1 Re-run") == pytest.approx(
        [275], abs=0.1
    )
    # "escalates issues to the appropriate decision-makers, providing relevant context and recommending actions"
    [asked] = sent_to(report, "slack_direct_message", "cecilia", "Recommendation: accept the RTO miss")
    assert asked == pytest.approx(step_minute(report, "priya escalate_task"), abs=0.05)
    # RPO 15 min: 13 min of loss is a warning; RTO 60 min: warned at 80 %, breached and escalated
    [rpo] = events(report, "incident", "rpo")
    assert "13 min" in rpo.text and rpo.minute == pytest.approx(step_minute(report, "dan report_data_loss"), abs=0.05)
    assert minutes(events(report, "incident", "rto", "RTO warning")) == [48.0]
    [breach] = events(report, "incident", "breach")
    assert breach.minute == 60.0 and "escalated to cecilia" in breach.text
    assert sent_to(report, "send_email", "cecilia")
    assert sent_to(report, "slack_direct_message", "cecilia", "RTO breached")
    # senior management, departments, vendors, customers
    emails = [e.to for e in report.sent("send_email")]
    assert any("marketing@marketplace.example" in to for to in emails)
    assert ["enterprise-support@cloudco.example"] in emails and ["support@vaultsafe.example"] in emails
    assert report.sent("statuspage_upsert") and any("sellers@lists.marketplace.example" in to for to in emails)
    # "regular updates ..., even if the situation remains unchanged": departments and vendors on the cadence;
    # the update due at 57 (30 min after 27) goes out as "no change"
    for address in ("support@marketplace.example", "sales@marketplace.example", "support@vaultsafe.example"):
        updates = [e for e in report.sent("send_email") if address in e.to and "Status update" in e.data["text"]]
        assert minutes(updates) == pytest.approx([27, 57, 62], abs=0.5), address
        assert "no change since" in updates[1].data["text"]
    # vendors part of the recovery are invited to the bridge
    invitations = [e for e in report.sent("send_email") if "Join the bridge" in e.text]
    assert sorted(a for e in invitations for a in e.to) == [
        "enterprise-support@cloudco.example",
        "support@vaultsafe.example",
    ]
    assert all("https://meet.marketplace.example/recovery-bridge" in e.data["text"] for e in invitations)
    # the debrief "with key stakeholders", and "update disaster recovery plans based on insights gathered"
    invited = {a for e in report.sent("slack_direct_message") if "Post-incident review" in e.text for a in e.to}
    assert invited == {"priya", "dan", "chen", "bo", "sue", "cecilia"}
    assert report.incident.checklist["plan_updated"] and "warm standby" in report.incident.resolution["plan_changes"]
    # the incident log, the timeline in the post-mortem, the debrief
    assert "global-incident-log.md" in report.documents
    [postmortem] = [text for name, text in report.documents.items() if name.startswith("postmortems/")]
    assert "| when (Africa/Johannesburg) | what | who |" in postmortem
    assert "## Recovery plan" in postmortem and "restore 60 % done" in postmortem
    assert report.incident.status is Status.CLOSED


async def test_seed004_nine_messages_through_the_loop_over_all_seven_phases_in_under_10s() -> None:
    began = datetime.now(UTC)
    report = await drill_seed("004-pagerduty-business")
    wall = (datetime.now(UTC) - began).total_seconds()
    assert wall < 10, f"a full SEV1 business incident drill took {wall:.1f} s"
    assert report.comms is not None
    assert report.messages_sent() == [
        f"{phase}/{audience}"
        for phase in ("investigation", "identification", "resolution")
        for audience in ("internal_stakeholders", "strategic_customers", "all_customers")
    ]
    assert all(s.accepted for s in report.steps), [s for s in report.steps if not s.accepted]
    for m in report.comms.messages:
        kinds = {a.kind: a.by for a in m.approvals}
        assert kinds == {ApprovalKind.ELT: "elliot", ApprovalKind.SEND: "ines"}, m.message_id
        sent_after = [
            e.at
            for e in report.events
            if e.kind in ("slack_post", "send_email", "statuspage_upsert")
            and f":comms:{m.message_id}:" in e.data.get("idempotency_key", "")
        ]
        send_approval = next(a.at for a in m.approvals if a.kind is ApprovalKind.SEND)
        assert sent_after and min(sent_after) > send_approval, f"{m.message_id} went out before the IC approved"
    first = report.comms.messages[0]
    assert [o.by for o in first.objections] == ["leo"] and first.objections[0].resolved_by == "tariq"
    assert len(first.versions) == 2 and {r.version for r in first.reviews} == {2}
    # "Customer Liaison to verify technical accuracy": she reviews every message; asked to rejoin the call, with
    # its link; her suggested wording became the text only when the Technical SLT accepted it
    assert all(
        any(r.role is Role.CUSTOMER_LIAISON and r.by == "cleo" for r in m.reviews) for m in report.comms.messages
    )
    rejoin = [e.text for e in report.sent("slack_direct_message") if "cleo" in e.to and "rejoin" in e.text]
    assert rejoin and all("https://zoom.acme.example/j/incident-bridge" in text for text in rejoin)
    by_id = {m.message_id: m for m in report.comms.messages}
    accepted = by_id["identification/internal_stakeholders"]
    assert accepted.suggestions[0].accepted and accepted.versions[-1].author == "cleo"
    declined = by_id["identification/all_customers"]
    assert declined.suggestions[0].accepted is False and [v.author for v in declined.versions] == ["tariq"]
    # every phase: detection (opened), investigation, identification, monitoring, resolution, analysis,
    # publishing, closed
    assert minutes(events(report, "incident", "opened")) == [0] and events(report, "incident", "confirmed")
    moves = [e.text.removeprefix("the incident moved to ") for e in events(report, "comms", "phase", "moved to")]
    # past its phases the loop stays for a reopen, until the incident closes
    assert moves == ["identification", "monitoring", "resolution", "analysis", "publishing", "closed"]
    assert events(report, "incident", "publish_postmortem") and report.incident.postmortem_url
    assert report.incident.phase is Phase.CLOSED
    assert {e.data["provider"] for e in report.sent("page_open")} == {"pagerduty"}


async def test_seed003_on_teams_runs_the_same_drill_with_the_chat_in_teams_in_under_10s() -> None:
    began = datetime.now(UTC)
    report = await drill(POLICIES / "003-disaster-recovery-teams.toml", SCENARIOS / "003-disaster-recovery.yaml")
    wall = (datetime.now(UTC) - began).total_seconds()
    assert wall < 10, f"seed 003's drill on Teams took {wall:.1f} s"
    # the same steps at the same minutes as on Slack, every one of them in Teams
    assert len(report.sent("teams_ensure_channel")) == 1, "one Teams channel for the incident"
    assert sent_to(report, "teams_direct_message", "bo", "T1 Re-run") == pytest.approx([5], abs=0.2)
    assert sent_to(report, "teams_direct_message", "bo", "was due at") == pytest.approx([245], abs=0.1)
    assert sent_to(report, "teams_direct_message", "cecilia", "RTO breached")
    assert report.sent("teams_post") and report.sent("teams_archive_channel")
    assert not [e for e in report.sent() if e.kind.startswith("slack_")], "nothing goes to Slack"
    assert report.incident.status is Status.CLOSED
