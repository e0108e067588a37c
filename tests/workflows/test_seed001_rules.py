"""Seed 001's rules as plain functions, under its example policy: the scope routes the incident to its owner,
the owner decides at evaluation points whether and how clients are told, and the assessment is a person's.

People (examples/policies/001-process-flow.toml): teo is the Technical Manager, sara the Customer Service
Manager, ana and ben responders.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from policy_file import load_policy
from settings import ROOT
from tests.workflows.test_rules import T0, confirmed, decide, opened, refusal
from workflows.comms import phases
from workflows.comms import rules as comms_rules
from workflows.comms.model import Approve, CommsState, Step
from workflows.contracts.policy import Policy
from workflows.contracts.vocabulary import (
    Audience,
    EvaluationPoint,
    IncidentKind,
    Phase,
    Role,
    Scope,
    Severity,
    Status,
    Unassessed,
)
from workflows.incident import lifecycle, rules
from workflows.incident.derive import holds, update_owner, waiting_on
from workflows.incident.model import (
    Classify,
    ClientsEvaluated,
    CloseIncident,
    EvaluateClients,
    IncidentState,
    PhaseChanged,
    Resolve,
    StatusUpdate,
)

RESOLUTION = Resolve(actor="sara", overview="o", how_resolved="h", prevention="p")
CLIENTS = "investigation/all_customers"


@pytest.fixture(scope="module")
def seed001() -> Policy:
    return load_policy(ROOT / "examples" / "policies" / "001-process-flow.toml")


def local_incident(policy: Policy) -> IncidentState:
    return confirmed(policy, Severity.SEV3)  # the policy's default scope is local


def test_seed001_local_incidents_are_handled_by_the_customer_service_manager(seed001: Policy) -> None:
    s = local_incident(seed001)
    assert holds(s, seed001, "sara", Role.INCIDENT_COMMANDER) and not holds(s, seed001, "teo", Role.INCIDENT_COMMANDER)
    assert update_owner(s, seed001) == "sara"  # the update duty and its reminders
    assert "only the incident commander can resolve" in refusal(
        s, seed001, RESOLUTION.model_copy(update={"actor": "teo"})
    )
    decide(s, seed001, StatusUpdate(actor="sara", text="all fine"))
    decide(s, seed001, RESOLUTION)


def test_seed001_global_incidents_are_managed_by_the_technical_manager(seed001: Policy) -> None:
    s = opened(seed001)
    decide(s, seed001, Classify(actor="ana", kind=IncidentKind.INCIDENT, scope=Scope.GLOBAL))
    lifecycle.confirm(s, seed001, T0)
    assert holds(s, seed001, "teo", Role.INCIDENT_COMMANDER) and not holds(s, seed001, "sara", Role.INCIDENT_COMMANDER)
    assert update_owner(s, seed001) == "teo"


def test_seed001_a_change_of_scope_hands_the_incident_over(seed001: Policy) -> None:
    s = local_incident(seed001)
    text = decide(s, seed001, Classify(actor="sara", scope=Scope.GLOBAL, note="three regions now"))
    assert "handed over from sara to teo" in text
    assert [(h.from_owner, h.to_owner) for h in s.handovers] == [("sara", "teo")]
    assert holds(s, seed001, "teo", Role.INCIDENT_COMMANDER) and not holds(s, seed001, "sara", Role.INCIDENT_COMMANDER)
    assert "only the incident commander can resolve" in refusal(s, seed001, RESOLUTION)
    decide(s, seed001, Classify(actor="teo", scope=Scope.LOCAL))
    assert [h.to_owner for h in s.handovers] == ["teo", "sara"]
    decide(s, seed001, Classify(actor="sara", severity=Severity.SEV2))  # the same scope: no hand-over
    assert len(s.handovers) == 2


def test_seed001_the_message_loop_sees_the_same_owner(seed001: Policy) -> None:
    """The loop's send approval asks who holds the Incident Commander with the incident's own role holders."""
    s = local_incident(seed001)
    state = loop_for(seed001, s)
    m = state.messages[0]
    m.step = Step.SEND_APPROVAL
    with pytest.raises(ValueError, match="only the Incident Commander"):
        comms_rules.check(state, seed001, "approve_send", Approve(actor="teo", message_id=m.message_id))
    comms_rules.check(state, seed001, "approve_send", Approve(actor="sara", message_id=m.message_id))


def test_seed001_owner_by_scope_leaves_no_fixed_incident_commander() -> None:
    with pytest.raises(ValueError, match=r"remove roles\.incident_commander"):
        Policy.model_validate(
            {
                "people": {"teo": {"name": "Teo"}},
                "roles": {"incident_commander": ["teo"]},
                "triage": {"owner_by_scope": True},
            }
        )


# --- evaluation points ------------------------------------------------------------------------------


def test_seed001_evaluation_points_ask_the_owner_whether_and_how_to_tell_clients(seed001: Policy) -> None:
    s = local_incident(seed001)
    e = rules.open_evaluation(s, seed001, EvaluationPoint.CONFIRMED, "confirmed", T0)
    assert e is not None and e.asked_of == "sara" and e.phase is Phase.INVESTIGATION and e.tell is None
    assert "whether and how to tell clients (evaluation point 1, confirmed) from sara" in waiting_on(s, seed001)
    assert "only the incident commander can evaluate clients" in refusal(
        s, seed001, EvaluateClients(actor="teo", tell=True, reason="r")
    )
    text = decide(s, seed001, EvaluateClients(actor="sara", tell=False, reason="only slowness; tickets answered"))
    assert "clients are not told now: only slowness; tickets answered; asked again at the next point" in text
    assert s.evaluations[0].tell is False and s.evaluations[0].decided_by == "sara"
    # not answered at one point: asked again at the next, about that point's phase
    s.phase = Phase.MONITORING
    first = rules.open_evaluation(s, seed001, EvaluationPoint.PHASE, "phase monitoring", T0)
    again = rules.open_evaluation(s, seed001, EvaluationPoint.UPDATE, "status update 1", T0)
    assert first is again and again is not None and again.asks == 2 and again.point == "status update 1"
    text = decide(s, seed001, EvaluateClients(actor="sara", tell=True, reason="it lasts", audiences=[]))
    assert "tell clients now (all_customers): it lasts; the client message is drafted" in text
    assert s.business_incident and s.business_incident_reason == "the owner decided to tell clients"


def test_seed001_evaluation_points_are_the_policys(seed001: Policy) -> None:
    s = local_incident(seed001)
    points = seed001.comms.model_copy(update={"evaluation_points": [EvaluationPoint.PHASE]})
    policy = seed001.model_copy(update={"comms": points})
    assert rules.open_evaluation(s, policy, EvaluationPoint.UPDATE, "status update 1", T0) is None
    assert rules.open_evaluation(s, policy, EvaluationPoint.PHASE, "phase monitoring", T0) is not None
    none = seed001.model_copy(update={"comms": seed001.comms.model_copy(update={"evaluation_points": []})})
    assert "has no client-communication evaluation points" in refusal(
        s, none, EvaluateClients(actor="sara", tell=True, reason="r")
    )
    assert "strategic_customers: not a client audience of the policy; choose from all_customers" in refusal(
        s, seed001, EvaluateClients(actor="sara", tell=True, reason="r", audiences=[Audience.STRATEGIC])
    )


def loop_for(policy: Policy, s: IncidentState) -> CommsState:
    facts = s.facts()
    state = CommsState(
        incident_id=s.incident_id,
        facts=facts,
        triggered_by="sara",
        triggered_at=T0,
        phase=Phase.INVESTIGATION,
        next_phase=PhaseChanged(phase=Phase.INVESTIGATION, facts=facts),
        audience_order=list(policy.comms.audience_order),
    )
    phases.follow(state, policy, T0)
    return state


def answer(state: CommsState, policy: Policy, tell: bool, phase: Phase = Phase.INVESTIGATION) -> None:
    n = len(state.released) + 1
    state.evaluations_heard.append(
        ClientsEvaluated(number=n, phase=phase, tell=tell, audiences=[Audience.ALL_CUSTOMERS], reason="why", by="sara")
    )
    phases.evaluated(state, policy, T0 + timedelta(minutes=n))


def test_seed001_the_client_message_waits_for_the_owners_answer(seed001: Policy) -> None:
    state = loop_for(seed001, local_incident(seed001))
    internal = state.messages[0]
    internal.step = Step.SENT
    assert phases.draft_next(state, seed001) is None  # the clients' message is held for the owner
    answer(state, seed001, tell=True)
    drafted = phases.draft_next(state, seed001)
    assert drafted is not None and drafted.message_id == CLIENTS


def test_seed001_not_now_skips_the_client_message_with_the_owners_reason(seed001: Policy) -> None:
    state = loop_for(seed001, local_incident(seed001))
    answer(state, seed001, tell=False)
    clients = next(m for m in state.messages if m.message_id == CLIENTS)
    assert clients.step is Step.SKIPPED and clients.ended_reason == "not now: why" and clients.ended_by == "sara"
    # asked again later, in a phase without messages of its own: "now" opens the clients' message of it
    answer(state, seed001, tell=True, phase=Phase.MONITORING)
    assert phases.draft_next(state, seed001) is not None
    assert [m.message_id for m in state.messages][-1] == "monitoring/all_customers"
    assert "monitoring/all_customers" in state.released


# --- the assessment ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("when", "kind", "reminded"),
    [
        (Unassessed.CONFIRM, IncidentKind.INCIDENT, 0),
        (Unassessed.DISTURBANCE, IncidentKind.DISTURBANCE, 0),
        (Unassessed.REMIND, None, 1),
    ],
)
def test_confirmation_by_timer_is_a_policy_choice(seed001: Policy, when: Unassessed, kind, reminded: int) -> None:
    policy = seed001.model_copy(update={"triage": seed001.triage.model_copy(update={"when_unassessed": when})})
    s = opened(policy)
    due = T0 + timedelta(minutes=policy.triage.assessment_minutes)
    lifecycle.unassessed_in_time(s, policy, due)
    assert s.kind is kind and s.assessment_reminders == reminded
    if when is Unassessed.REMIND:
        assert s.assessment_due == due + timedelta(minutes=policy.triage.assessment_minutes)


def test_seed001_classification_is_a_persons_decision(seed001: Policy) -> None:
    """Seed 001: "determining whether the issue at hand is an incident or a disturbance" is a decision."""
    assert seed001.triage.when_unassessed is Unassessed.REMIND and not seed001.response.auto_confirm_severities


# --- disturbances -----------------------------------------------------------------------------------


def test_seed001_a_confirmed_incident_is_downgraded_to_a_disturbance_with_a_reason(seed001: Policy) -> None:
    s = local_incident(seed001)
    to_disturbance = Classify(actor="sara", kind=IncidentKind.DISTURBANCE)
    assert "say why INC-TEST becomes a disturbance" in refusal(s, seed001, to_disturbance)
    text = decide(s, seed001, to_disturbance.model_copy(update={"note": "one user only"}), minutes=10)
    assert "downgraded to a disturbance, owned by sara; follow-up by" in text and text.endswith(": one user only")
    assert not s.confirmed and s.next_update_due is None and s.progress_due is None
    assert s.follow_up_due == T0 + timedelta(minutes=10, hours=24)
    to_incident = Classify(actor="sara", kind=IncidentKind.INCIDENT)
    assert "say why INC-TEST becomes an incident" in refusal(s, seed001, to_incident)
    text = decide(s, seed001, to_incident.model_copy(update={"note": "three regions now"}))
    assert "upgraded to an incident" in text and s.kind is IncidentKind.INCIDENT


def test_seed001_completion_needs_satisfied_stakeholders_and_preventive_measures_in_place(seed001: Policy) -> None:
    s = opened(seed001)
    decide(s, seed001, Classify(actor="ana", kind=IncidentKind.DISTURBANCE))
    lifecycle.take_up_disturbance(s, seed001, T0)
    bare = CloseIncident(actor="sara")
    assert refusal(s, seed001, bare) == (
        "INC-TEST cannot close: confirm the stakeholders are satisfied (--stakeholders-satisfied) and "
        "say which preventive measures are in place (--measures TEXT)"
    )
    satisfied = bare.model_copy(update={"stakeholders_satisfied": True})
    assert "say which preventive measures" in refusal(s, seed001, satisfied)
    text = decide(s, seed001, satisfied.model_copy(update={"preventive_measures": "printer driver pinned"}))
    assert "stakeholders satisfied; preventive measures: printer driver pinned" in text
    assert s.status is Status.CLOSED


def test_seed001_an_incident_completes_only_with_satisfied_stakeholders_too(seed001: Policy) -> None:
    s = local_incident(seed001)
    decide(s, seed001, RESOLUTION)
    s.checklist = dict.fromkeys(s.checklist, True)
    assert "cannot close: confirm the stakeholders are satisfied" in refusal(s, seed001, CloseIncident(actor="sara"))
    done = CloseIncident(actor="sara", stakeholders_satisfied=True, preventive_measures="pool alert at 70 %")
    decide(s, seed001, done)
    assert s.resolution["preventive_measures"] == "pool alert at 70 %"
