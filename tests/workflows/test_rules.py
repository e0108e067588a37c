"""The incident's rules as plain functions: who may decide what, in which state, and what it changes.

No server: each test builds a state, applies rules and alerts, and reads the state back.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from tests.workflows.helpers import alert, make_policy
from workflows.contracts.decisions import INCIDENT_DECISIONS, incident_decision_name
from workflows.contracts.policy import Policy, Triage
from workflows.contracts.roles import expand
from workflows.contracts.trust.permissions import DEFAULT_PERMISSIONS
from workflows.contracts.vocabulary import AlertStatus, IncidentKind, Phase, Scope, Severity, Status
from workflows.incident import lifecycle, rules
from workflows.incident.derive import incident_commander, waiting_on
from workflows.incident.model import (
    Acknowledge,
    Classify,
    CloseIncident,
    Decision,
    Estimate,
    IncidentState,
    Reopen,
    Resolve,
    SetPhase,
    StatusUpdate,
    TimelineEntry,
    TriggerBusinessIncident,
)

T0 = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
RESOLUTION = Resolve(actor="alice", overview="o", how_resolved="h", prevention="p")


def opened(policy: Policy, severity: Severity = Severity.SEV2) -> IncidentState:
    s = IncidentState(incident_id="INC-TEST", title="(no alert yet)", opened_at=T0)
    lifecycle.record_alert(s, policy, alert(severity=severity), T0)
    return s


def confirmed(policy: Policy, severity: Severity = Severity.SEV2) -> IncidentState:
    s = opened(policy, severity)
    s.kind = IncidentKind.INCIDENT
    lifecycle.confirm(s, policy, T0)
    return s


def decide(s: IncidentState, policy: Policy, decision: Decision, minutes: float = 1) -> str:
    name = incident_decision_name(decision)
    rules.check(s, policy, name, decision)
    return rules.apply(s, policy, name, decision, T0 + timedelta(minutes=minutes))


def refusal(s: IncidentState, policy: Policy, decision: Decision) -> str:
    with pytest.raises(rules.Refusal) as refused:
        rules.check(s, policy, incident_decision_name(decision), decision)
    return str(refused.value)


def test_every_decision_has_a_rule_and_a_permission_entry():
    assert set(rules.RULES) == set(INCIDENT_DECISIONS.values())
    assert set(DEFAULT_PERMISSIONS) == set(INCIDENT_DECISIONS)


def test_a_stranger_and_a_person_without_the_role_are_refused():
    policy = make_policy()
    s = confirmed(policy)
    assert "'mallory' is not a person" in refusal(s, policy, Acknowledge(actor="mallory"))
    decide(s, policy, RESOLUTION)
    assert "only the incident commander can reopen" in refusal(s, policy, Reopen(actor="bob", reason="x"))


def test_seed004_no_phase_move_before_the_incident_is_confirmed():
    policy = make_policy()
    s = opened(policy)
    assert "not confirmed as an incident yet" in refusal(s, policy, SetPhase(actor="alice", phase=Phase.MONITORING))
    assert s.phase is Phase.DETECTION


def test_seed002_estimate_check_back_belongs_to_whoever_gave_the_estimate():
    policy = make_policy()
    s = confirmed(policy)
    decide(s, policy, Estimate(actor="alice", minutes=20))
    assert s.estimate_by == "alice" and s.estimate_due == T0 + timedelta(minutes=21)


def test_raised_to_sev1_after_confirmation_pages_afresh_and_becomes_a_business_incident():
    policy = make_policy(business_incidents=True)
    s = confirmed(policy, Severity.SEV2)
    decide(s, policy, Acknowledge(actor="bob"))
    rounds = s.escalation_round
    text = decide(s, policy, Classify(actor="alice", severity=Severity.SEV1))
    assert "paged afresh" in text
    assert s.escalation_round == rounds + 1 and s.acknowledged_by is None
    assert s.business_incident and s.business_incident_by == "policy"


def test_lowered_severity_pages_nobody_again():
    policy = make_policy()
    s = confirmed(policy, Severity.SEV2)
    rounds = s.escalation_round
    decide(s, policy, Classify(actor="alice", severity=Severity.SEV3))
    assert s.escalation_round == rounds


def test_seed001_unassessed_report_whose_alerts_cleared_pages_nobody():
    policy = make_policy()
    s = opened(policy)
    lifecycle.record_alert(s, policy, alert(status=AlertStatus.RESOLVED), T0 + timedelta(minutes=2))
    assert "nobody paged" in lifecycle.unassessed_in_time(s, policy, T0 + timedelta(minutes=15))
    assert s.kind is IncidentKind.DISTURBANCE


def test_unassessed_report_still_firing_is_treated_as_an_incident():
    policy = make_policy()
    s = opened(policy)
    lifecycle.unassessed_in_time(s, policy, T0 + timedelta(minutes=15))
    assert s.kind is IncidentKind.INCIDENT


@pytest.mark.parametrize("phase_after", [Phase.RESOLUTION, Phase.ANALYSIS, Phase.PUBLISHING])
def test_recurrence_while_resolved_reopens_and_pages_again(phase_after: Phase):
    policy = make_policy()
    s = confirmed(policy)
    decide(s, policy, RESOLUTION)
    s.enter(phase_after)
    rounds = s.escalation_round
    outcome = lifecycle.record_alert(s, policy, alert(), T0 + timedelta(hours=1))
    assert outcome.reopened and s.status is Status.OPEN and s.phase is Phase.INVESTIGATION
    assert s.escalation_round == rounds + 1 and s.reopens == 1


def test_recurrence_while_resolved_only_tells_when_the_policy_says_so():
    policy = make_policy()
    policy = policy.model_copy(update={"response": policy.response.model_copy(update={"reopen_on_recurrence": False})})
    s = confirmed(policy)
    decide(s, policy, RESOLUTION)
    outcome = lifecycle.record_alert(s, policy, alert(), T0 + timedelta(hours=1))
    assert not outcome.reopened and s.status is Status.RESOLVED


def test_a_status_update_moves_the_next_one_by_the_cadence():
    policy = make_policy()
    s = confirmed(policy, Severity.SEV2)
    said = decide(s, policy, StatusUpdate(actor="alice", text="rolling back"), minutes=10)
    assert s.next_update_due == T0 + timedelta(minutes=40)
    assert "rolling back" in said  # the timeline keeps the words


def test_reopen_restarts_the_clocks_and_clears_the_checklist():
    policy = make_policy()
    s = confirmed(policy)
    decide(s, policy, RESOLUTION)
    s.checklist["project_log"] = True
    decide(s, policy, Reopen(actor="alice", reason="it is back"), minutes=90)
    assert s.status is Status.OPEN and not any(s.checklist.values())
    assert s.progress_due == T0 + timedelta(minutes=120) and s.next_update_due is not None


def test_seed001_close_refused_until_documentation_complete():
    policy = make_policy()
    s = confirmed(policy)
    decide(s, policy, RESOLUTION)
    assert "documentation incomplete" in refusal(s, policy, CloseIncident(actor="alice"))


def test_an_exhausted_ladder_is_what_the_incident_waits_on():
    policy = make_policy()
    s = confirmed(policy)
    s.escalation_exhausted_at = T0 + timedelta(minutes=30)
    assert any("ladder exhausted at 12:30 EET (10:30 UTC)" in w for w in waiting_on(s, policy))


def test_a_scope_the_policy_does_not_know_is_refused_at_load():
    with pytest.raises(ValidationError, match="default_scope"):
        Triage.model_validate({"default_scope": "Global"})


def test_whoever_is_on_call_in_a_schedule_holding_a_role_decides_as_that_role():
    """The Incident Commander is whoever the `primary` schedule has on call: he is the one asked (the IC of
    the status line and the messages), so his decisions as IC count; the person off call decides nothing."""
    raw = make_policy().model_dump(mode="json")
    raw["schedules"] = {"primary": {"layers": [{"members": ["bob", "oleh"], "rotation": "weekly"}]}}
    raw["roles"].update(incident_commander=["schedule:primary"], business_lead=["carol"])
    policy = Policy.model_validate(raw)
    s = confirmed(policy)
    s.on_call = {"primary": "oleh"}
    assert "holds none of those roles" in refusal(s, policy, TriggerBusinessIncident(actor="bob"))
    assert decide(s, policy, TriggerBusinessIncident(actor="oleh", reason="checkout down"))
    assert s.business_incident


def test_after_an_on_call_handoff_a_new_round_pages_the_person_on_call_now() -> None:
    """The Incident Commander held through a schedule is whoever is on call at each round of paging, not the
    person on call at confirmation: a reopened incident's tier `role:incident_commander` pages the new shift."""
    raw = make_policy().model_dump(mode="json")
    raw["schedules"] = {"primary": {"layers": [{"members": ["bob", "oleh"], "rotation": "weekly"}]}}
    raw["roles"]["incident_commander"] = ["schedule:primary"]
    policy = Policy.model_validate(raw)
    s = opened(policy, Severity.SEV2)
    s.kind, s.on_call = IncidentKind.INCIDENT, {"primary": "oleh"}  # oleh on call as it is confirmed
    lifecycle.confirm(s, policy, T0)
    assert expand(policy, ["role:incident_commander"], s.roles) == ["oleh"]
    s.on_call = {"primary": "bob"}  # the next shift, looked up as the reopened incident's round starts
    assert expand(policy, ["role:incident_commander"], s.roles) == ["bob"]
    assert incident_commander(s, policy) == "bob"


def test_a_classify_that_keeps_the_severity_leaves_the_next_update_due_where_it_was() -> None:
    policy = make_policy()
    s = confirmed(policy)
    due = s.next_update_due
    decide(s, policy, Classify(actor="alice", scope=Scope.GLOBAL, note="both regions"), minutes=20)
    assert s.next_update_due == due, "a scope or a note is not a status update"
    decide(s, policy, Classify(actor="alice", severity=Severity.SEV3), minutes=25)
    assert s.next_update_due == due, "a milder severity never pushes a due update back"


def test_a_flapping_alert_leaves_a_bounded_timeline_and_counts_what_it_left_out() -> None:
    policy = make_policy()
    s = confirmed(policy)
    quiet = lifecycle.FLAP_QUIET + timedelta(minutes=1)
    for n in range(1, 2 * lifecycle.ALERT_ENTRIES_KEPT + 1):  # each change after a quiet period: each written
        status = AlertStatus.RESOLVED if n % 2 else AlertStatus.FIRING
        for kind, text in lifecycle.record_alert(s, policy, alert(status=status), T0 + n * quiet).notes:
            s.timeline.append(TimelineEntry(at=T0 + n * quiet, kind=kind, text=text))
        lifecycle.bound_timeline(s)
    alert_lines = [e for e in s.timeline if e.kind == "alert"]
    assert len(alert_lines) == lifecycle.ALERT_ENTRIES_KEPT
    assert s.timeline_dropped == lifecycle.ALERT_ENTRIES_KEPT  # 400 changes written, the oldest 200 left out
