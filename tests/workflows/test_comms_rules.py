"""Seed 004's rules of the Message Creation Loop as plain functions: every refusal and every change, without a
server. People come from examples/policy.toml: carol is Business Lead, Communications Lead and distributor; bob
the Technical SLT; erin Messaging; dana Legal; gina Customer Liaison; frank ELT; alice IC.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from workflows.comms import phases, rules
from workflows.comms.model import (
    ApprovalKind,
    Approve,
    CommsMessage,
    CommsState,
    ConfirmSent,
    DecideEdit,
    Draft,
    Edit,
    GiveEstimate,
    ResolveObjection,
    Review,
    ReviewStatus,
    SetAudienceOrder,
    Skip,
    Step,
    Verdict,
)
from workflows.comms.waiting import approvals_owed, refresh, reviews_complete
from workflows.contracts.decisions import COMMS_DECISIONS
from workflows.contracts.policy import Policy
from workflows.contracts.roles import RoleHolders
from workflows.contracts.vocabulary import Audience, Phase, Role, Severity
from workflows.incident.model import Decision, IncidentFacts, PhaseChanged

NOW = datetime(2025, 3, 4, 14, 10, tzinfo=UTC)
FACTS = IncidentFacts(
    incident_id="INC-TEST0001",
    title="Checkout errors",
    service="checkout",
    severity=Severity.SEV1,
    phase=Phase.INVESTIGATION,
    opened_at=NOW - timedelta(minutes=5),
)
INTERNAL, STRATEGIC = "investigation/internal_stakeholders", "investigation/strategic_customers"


def started(policy: Policy) -> CommsState:
    """The loop as CommsWorkflow starts it in Investigation: the phase's messages open, none begun."""
    state = CommsState(
        incident_id=FACTS.incident_id,
        facts=FACTS,
        triggered_by="carol",
        triggered_at=NOW,
        phase=Phase.INVESTIGATION,
        next_phase=PhaseChanged(phase=Phase.INVESTIGATION, facts=FACTS),
        audience_order=list(policy.comms.audience_order),
    )
    phases.follow(state, policy, NOW)
    return state


def message(state: CommsState, message_id: str) -> CommsMessage:
    return next(m for m in state.messages if m.message_id == message_id)


def move(policy: Policy, m: CommsMessage, step: Step) -> CommsMessage:
    """What the loop does between the people's steps."""
    m.step = step
    refresh(policy, RoleHolders(), m, NOW)
    return m


def drafted(state: CommsState, policy: Policy, message_id: str = INTERNAL) -> CommsMessage:
    """The message as the loop leaves it once bob's draft is rendered: v1, in review."""
    m = message(state, message_id)
    rules.add_version(m, NOW, "bob", "[SEV1] We are investigating", "We are investigating.", "", source="t")
    m.drafted_by = "bob"
    m.reviews = [ReviewStatus(role=role) for role in policy.comms.reviewers]
    return move(policy, m, Step.IN_REVIEW)


def reviewed(state: CommsState, policy: Policy, message_id: str = INTERNAL) -> CommsMessage:
    m = drafted(state, policy, message_id)
    for reviewer in ("erin", "dana"):
        take(state, policy, "review", Review(actor=reviewer, message_id=message_id, verdict=Verdict.APPROVE))
    return move(policy, m, Step.APPROVAL)


def take(state: CommsState, policy: Policy, name: str, step: Decision) -> rules.StepResult:
    rules.check(state, policy, name, step)
    return rules.apply(state, policy, name, step, NOW)


def refusal(state: CommsState, policy: Policy, name: str, step: Decision) -> str:
    before = state.model_copy(deep=True)
    with pytest.raises(ValueError) as refused:
        rules.check(state, policy, name, step)
    assert state == before  # a refusal changes nothing
    return str(refused.value)


def test_every_step_of_the_registry_has_a_rule() -> None:
    assert rules.RULES.keys() == COMMS_DECISIONS.keys()


def test_unknown_step_is_refused_naming_the_steps(example_policy: Policy) -> None:
    state = started(example_policy)
    why = refusal(state, example_policy, "publish", Skip(actor="carol", message_id=INTERNAL, reason="r"))
    assert why.startswith("the message loop has no step 'publish'; steps: draft, edit, accept_edit, decline_edit")


def test_step_with_another_steps_input_is_refused(example_policy: Policy) -> None:
    state = started(example_policy)
    why = refusal(state, example_policy, "review", Skip(actor="carol", message_id=INTERNAL, reason="r"))
    assert why == "review takes a Review, not a Skip"


def test_unknown_message_is_refused_listing_the_messages(example_policy: Policy) -> None:
    state = started(example_policy)
    why = refusal(state, example_policy, "authorize", Approve(actor="frank", message_id="investigation/everyone"))
    assert why == (
        f"no message 'investigation/everyone' on INC-TEST0001; messages: {INTERNAL}, {STRATEGIC}, "
        "investigation/all_customers"
    )


def test_seed004_only_the_technical_slt_drafts_while_the_message_is_being_drafted(example_policy: Policy) -> None:
    state = started(example_policy)
    move(example_policy, message(state, INTERNAL), Step.DRAFTING)
    assert refusal(state, example_policy, "draft", Draft(actor="erin", message_id=INTERNAL)) == (
        "only the Technical SLT (bob) can draft; you are erin"
    )
    assert refusal(state, example_policy, "draft", Draft(actor="bob", message_id=STRATEGIC)) == (
        f"cannot draft {STRATEGIC}: it is queued behind the phase's earlier audiences"
    )


def test_seed004_draft_is_recorded_for_the_loop_to_render_once(example_policy: Policy) -> None:
    state = started(example_policy)
    move(example_policy, message(state, INTERNAL), Step.DRAFTING)
    m = take(state, example_policy, "draft", Draft(actor="bob", message_id=INTERNAL, values={"impact": "x"}))
    assert isinstance(m, CommsMessage) and m.pending_draft is not None and m.pending_draft.values == {"impact": "x"}
    assert not m.versions and m.step is Step.DRAFTING  # the loop renders and moves it
    assert state.log[-1].kind == "draft" and state.log[-1].actor == "bob"
    assert refusal(state, example_policy, "draft", Draft(actor="bob", message_id=INTERNAL)) == (
        f"a draft of {INTERNAL} by bob is being rendered; wait for it"
    )


def test_seed004_the_technical_slts_tone_and_voice_take_precedence_over_reviewers_suggestions(
    example_policy: Policy,
) -> None:
    """ "Make wording suggestions to the Technical SLT, but ultimately it is their tone and voice that takes
    precedence": a reviewer's or the Customer Liaison's edit is a suggestion; the text changes only when the
    Technical SLT accepts it, and the reviews wait until each suggestion is decided."""
    state = started(example_policy)
    move(example_policy, message(state, INTERNAL), Step.DRAFTING)
    assert "edits are made during the reviews" in refusal(
        state, example_policy, "edit", Edit(actor="erin", message_id=INTERNAL, text="t")
    )
    drafted(state, example_policy)
    assert refusal(state, example_policy, "edit", Edit(actor="frank", message_id=INTERNAL, text="t")) == (
        "only the Technical SLT (bob), Messaging Officer (erin), Legal Officer (dana) or Customer Liaison (gina) "
        "can edit; you are frank"
    )
    assert refusal(state, example_policy, "edit", Edit(actor="gina", message_id=INTERNAL, text=" ")) == (
        "an edit needs the new text"
    )
    m = take(state, example_policy, "edit", Edit(actor="gina", message_id=INTERNAL, text=" Accurate. ", note="tech"))
    assert isinstance(m, CommsMessage)
    assert len(m.versions) == 1, "the Technical SLT's wording stands"
    assert state.log[-1].text == f"{INTERNAL}: suggestion 1 on v1: tech"
    take(state, example_policy, "edit", Edit(actor="erin", message_id=INTERNAL, text="Shorter."))
    for reviewer in ("erin", "dana"):
        take(state, example_policy, "review", Review(actor=reviewer, message_id=INTERNAL, verdict=Verdict.APPROVE))
    assert not reviews_complete(m)
    assert [(o.what, o.people) for o in m.waiting_on] == [
        ("accept or decline suggestion 1 (gina)", ["bob"]),
        ("accept or decline suggestion 2 (erin)", ["bob"]),
    ]
    assert refusal(state, example_policy, "accept_edit", DecideEdit(actor="erin", message_id=INTERNAL, suggestion=1))
    take(
        state, example_policy, "decline_edit", DecideEdit(actor="bob", message_id=INTERNAL, suggestion=2, reason="tone")
    )
    assert len(m.versions) == 1 and not reviews_complete(m)
    take(state, example_policy, "accept_edit", DecideEdit(actor="bob", message_id=INTERNAL, suggestion=1))
    assert [(v.number, v.author, v.text, v.subject) for v in m.versions][-1] == (
        2,
        "gina",
        "Accurate.",
        "[SEV1] We are investigating",
    )
    assert "no open suggestion 1" in refusal(
        state, example_policy, "accept_edit", DecideEdit(actor="bob", message_id=INTERNAL, suggestion=1)
    )
    assert [o.what for o in m.waiting_on] == ["review v2", "review v2"], "the accepted wording is reviewed again"


def test_seed004_the_customer_liaison_verifies_technical_accuracy_as_a_reviewer(example_policy: Policy) -> None:
    """ "Share the document with the reviewers--Legal & Messaging Officer for language, Customer Liaison for
    technical content": with the Customer Liaison among the policy's reviewers, the reviews wait for her."""
    comms = example_policy.comms.model_copy(
        update={"reviewers": [Role.MESSAGING_OFFICER, Role.LEGAL_OFFICER, Role.CUSTOMER_LIAISON]}
    )
    policy = example_policy.model_copy(update={"comms": comms})
    state = started(policy)
    m = drafted(state, policy)
    for reviewer in ("erin", "dana"):
        take(state, policy, "review", Review(actor=reviewer, message_id=INTERNAL, verdict=Verdict.APPROVE))
    assert not reviews_complete(m) and [(o.what, o.people) for o in m.waiting_on] == [("review v1", ["gina"])]
    take(state, policy, "review", Review(actor="gina", message_id=INTERNAL, verdict=Verdict.APPROVE))
    assert reviews_complete(m)


def test_seed004_reviewer_cannot_review_their_own_draft(example_policy: Policy) -> None:
    policy = example_policy.model_copy(update={"roles": example_policy.roles | {Role.MESSAGING_OFFICER: ["bob"]}})
    state = started(policy)
    drafted(state, policy)
    assert refusal(state, policy, "review", Review(actor="bob", message_id=INTERNAL, verdict=Verdict.APPROVE)) == (
        f"bob drafted {INTERNAL} and cannot review it; another Messaging Officer must"
    )


def test_seed004_only_reviewers_review_and_only_in_review(example_policy: Policy) -> None:
    state = started(example_policy)
    move(example_policy, message(state, INTERNAL), Step.DRAFTING)
    assert refusal(
        state, example_policy, "review", Review(actor="erin", message_id=INTERNAL, verdict=Verdict.APPROVE)
    ).startswith(f"cannot review {INTERNAL}: it is being drafted, waiting on Technical SLT (bob) to draft until")
    drafted(state, example_policy)
    assert refusal(
        state, example_policy, "review", Review(actor="frank", message_id=INTERNAL, verdict=Verdict.APPROVE)
    ) == ("only the Messaging Officer (erin) or Legal Officer (dana) can review; you are frank")


def test_seed004_approval_counts_only_for_the_version_it_was_given_on(example_policy: Policy) -> None:
    state = started(example_policy)
    m = drafted(state, example_policy)
    take(state, example_policy, "review", Review(actor="erin", message_id=INTERNAL, verdict=Verdict.APPROVE))
    assert refusal(
        state, example_policy, "review", Review(actor="erin", message_id=INTERNAL, verdict=Verdict.APPROVE)
    ) == (f"you already approved v1 of {INTERNAL}")
    assert [o.what for o in m.waiting_on] == ["review v1"] and m.waiting_on[0].role is Role.LEGAL_OFFICER
    take(state, example_policy, "edit", Edit(actor="bob", message_id=INTERNAL, text="v2 text"))
    assert [(o.role, o.what) for o in m.waiting_on] == [
        (Role.MESSAGING_OFFICER, "review v2"),
        (Role.LEGAL_OFFICER, "review v2"),
    ]
    for reviewer in ("erin", "dana"):
        take(state, example_policy, "review", Review(actor=reviewer, message_id=INTERNAL, verdict=Verdict.APPROVE))
    assert reviews_complete(m) and not m.waiting_on


def test_seed004_strong_objection_blocks_until_the_technical_slt_resolves_it(example_policy: Policy) -> None:
    state = started(example_policy)
    m = drafted(state, example_policy)
    assert refusal(
        state, example_policy, "review", Review(actor="dana", message_id=INTERNAL, verdict=Verdict.OBJECT, reason=" ")
    ) == ("a strong objection needs a reason the Technical SLT can act on")
    take(
        state,
        example_policy,
        "review",
        Review(actor="dana", message_id=INTERNAL, verdict=Verdict.OBJECT, reason=" do not name the gateway "),
    )
    take(state, example_policy, "review", Review(actor="erin", message_id=INTERNAL, verdict=Verdict.APPROVE))
    assert [(o.number, o.by, o.role, o.reason) for o in m.open_objections()] == [
        (1, "dana", Role.LEGAL_OFFICER, "do not name the gateway")
    ]
    assert not reviews_complete(m)
    assert [(o.key, o.what, o.people) for o in m.waiting_on] == [("resolve:1", "resolve objection 1 (dana)", ["bob"])]
    assert refusal(
        state, example_policy, "review", Review(actor="dana", message_id=INTERNAL, verdict=Verdict.APPROVE)
    ) == (
        f"your objection 1 on {INTERNAL} is open; the Technical SLT resolves it (incidentctl resolve-objection) "
        "before you review again"
    )

    assert refusal(
        state,
        example_policy,
        "resolve_objection",
        ResolveObjection(actor="erin", message_id=INTERNAL, objection=1, resolution="ok"),
    ) == ("only the Technical SLT (bob) can resolve an objection on; you are erin")
    assert refusal(
        state,
        example_policy,
        "resolve_objection",
        ResolveObjection(actor="bob", message_id=INTERNAL, objection=2, resolution="ok"),
    ) == (f"{INTERNAL} has no open objection 2; open: 1")
    assert (
        refusal(
            state,
            example_policy,
            "resolve_objection",
            ResolveObjection(actor="bob", message_id=INTERNAL, objection=1, resolution=" "),
        )
        == "say how the objection was resolved"
    )

    take(
        state,
        example_policy,
        "resolve_objection",
        ResolveObjection(
            actor="bob", message_id=INTERNAL, objection=1, resolution="gateway no longer named", text="New text."
        ),
    )
    assert not m.open_objections() and m.objections[0].resolved_by == "bob" and m.objections[0].resolved_at == NOW
    assert (m.versions[-1].number, m.versions[-1].source) == (2, "objection 1 resolved")
    assert sorted(o.what for o in m.waiting_on) == ["review v2", "review v2"]  # the objector reviews the resolution


def test_seed004_approvals_come_after_the_reviews(example_policy: Policy) -> None:
    state = started(example_policy)
    drafted(state, example_policy)
    assert refusal(state, example_policy, "authorize", Approve(actor="frank", message_id=INTERNAL)).endswith(
        "; approvals come after the reviews"
    )
    why = refusal(state, example_policy, "approve_send", Approve(actor="alice", message_id=INTERNAL))
    assert why.startswith(f"cannot approve sending {INTERNAL}: it is in review, waiting on Messaging Officer (erin)")
    assert why.endswith("; the Incident Commander approves sending after the reviews and the ELT's authorization")


def test_seed004_only_the_elt_approver_authorizes_release(example_policy: Policy) -> None:
    state = started(example_policy)
    m = reviewed(state, example_policy)
    assert approvals_owed(example_policy, m) == [ApprovalKind.ELT]
    assert refusal(state, example_policy, "authorize", Approve(actor="bob", message_id=INTERNAL)) == (
        "only the ELT Approver (frank) can authorize; you are bob"
    )
    take(state, example_policy, "authorize", Approve(actor="frank", message_id=INTERNAL, note="fine"))
    assert [(a.kind, a.by, a.version, a.note) for a in m.approvals] == [(ApprovalKind.ELT, "frank", 1, "fine")]
    assert approvals_owed(example_policy, m) == [] and state.log[-1].text == f"{INTERNAL}: authorize: v1"
    assert refusal(state, example_policy, "authorize", Approve(actor="frank", message_id=INTERNAL)) == (
        f"{INTERNAL} v1 is already approved for this"
    )


def test_seed004_policy_without_elt_approval_refuses_an_authorization(example_policy: Policy) -> None:
    policy = example_policy.model_copy(
        update={"comms": example_policy.comms.model_copy(update={"require_elt_approval": False})}
    )
    state = started(policy)
    m = reviewed(state, policy)
    assert approvals_owed(policy, m) == []
    assert refusal(state, policy, "authorize", Approve(actor="frank", message_id=INTERNAL)) == (
        "this policy does not ask the ELT Approver to authorize messages"
    )


def test_seed000_external_message_needs_the_communications_lead(example_policy: Policy) -> None:
    state = started(example_policy)
    take(state, example_policy, "skip", Skip(actor="carol", message_id=INTERNAL, reason="briefed"))
    m = reviewed(state, example_policy, STRATEGIC)
    assert approvals_owed(example_policy, m) == [ApprovalKind.ELT, ApprovalKind.EXTERNAL]
    assert [o.role for o in m.waiting_on] == [Role.ELT_APPROVER, Role.COMMUNICATIONS_LEAD]
    assert refusal(state, example_policy, "approve_external", Approve(actor="frank", message_id=STRATEGIC)) == (
        "only the Communications Lead (carol) can approve the external message; you are frank"
    )
    take(state, example_policy, "approve_external", Approve(actor="carol", message_id=STRATEGIC))
    take(state, example_policy, "authorize", Approve(actor="frank", message_id=STRATEGIC))
    assert approvals_owed(example_policy, m) == [] and not m.waiting_on


def test_seed000_internal_message_needs_no_communications_lead(example_policy: Policy) -> None:
    state = started(example_policy)
    reviewed(state, example_policy)
    assert refusal(state, example_policy, "approve_external", Approve(actor="carol", message_id=INTERNAL)) == (
        f"{INTERNAL} needs no Communications Lead approval: only external audiences do"
    )
    policy = example_policy.model_copy(
        update={"comms": example_policy.comms.model_copy(update={"communications_lead_approves_external": False})}
    )
    state = started(policy)
    take(state, policy, "skip", Skip(actor="carol", message_id=INTERNAL, reason="briefed"))
    assert approvals_owed(policy, reviewed(state, policy, STRATEGIC)) == [ApprovalKind.ELT]


def test_seed004_incident_commander_approves_sending_last(example_policy: Policy) -> None:
    state = started(example_policy)
    m = reviewed(state, example_policy)
    assert "the Incident Commander approves sending after the reviews and the ELT's authorization" in refusal(
        state, example_policy, "approve_send", Approve(actor="alice", message_id=INTERNAL)
    )
    take(state, example_policy, "authorize", Approve(actor="frank", message_id=INTERNAL))
    move(example_policy, m, Step.SEND_APPROVAL)
    assert [(o.key, o.people) for o in m.waiting_on] == [("approve_send", ["alice"])]
    assert refusal(state, example_policy, "approve_send", Approve(actor="carol", message_id=INTERNAL)) == (
        "only the Incident Commander (alice) can approve sending; you are carol"
    )
    take(state, example_policy, "approve_send", Approve(actor="alice", message_id=INTERNAL))
    assert m.approved(ApprovalKind.SEND) is not None
    assert refusal(state, example_policy, "approve_send", Approve(actor="alice", message_id=INTERNAL)) == (
        f"{INTERNAL} v1 is already approved for this"
    )


def test_seed004_distributor_confirms_once_the_message_is_sent(example_policy: Policy) -> None:
    state = started(example_policy)
    m = reviewed(state, example_policy)
    assert refusal(state, example_policy, "confirm_sent", ConfirmSent(actor="carol", message_id=INTERNAL)) == (
        f"cannot confirm sending {INTERNAL}: it is waiting for approval, waiting on ELT Approver (frank) to "
        "authorize until 16:25 EET (14:25 UTC)"
    )
    move(example_policy, m, Step.CONFIRMING)
    assert refusal(state, example_policy, "confirm_sent", ConfirmSent(actor="alice", message_id=INTERNAL)) == (
        "only the distributor (carol) can confirm sending; you are alice"
    )
    take(state, example_policy, "confirm_sent", ConfirmSent(actor="carol", message_id=INTERNAL, note="on Slack"))
    assert (m.step, m.confirmed_by, m.confirmed_at, m.waiting_on) == (Step.SENT, "carol", NOW, [])
    assert state.log[-1].text == f"{INTERNAL}: confirmed sent: on Slack"


def test_seed004_business_lead_skips_an_unsent_message_with_a_reason(example_policy: Policy) -> None:
    state = started(example_policy)
    m = move(example_policy, message(state, INTERNAL), Step.DRAFTING)
    assert refusal(state, example_policy, "skip", Skip(actor="bob", message_id=INTERNAL, reason="no")) == (
        "only the Business Lead (carol) can skip; you are bob"
    )
    assert refusal(state, example_policy, "skip", Skip(actor="carol", message_id=INTERNAL, reason=" ")) == (
        "say why this audience gets no message in this phase"
    )
    take(state, example_policy, "skip", Skip(actor="carol", message_id=INTERNAL, reason=" no staff impact "))
    assert (m.step, m.ended_by, m.ended_reason, m.waiting_on) == (Step.SKIPPED, "carol", "no staff impact", [])
    assert phases.next_message(state) == message(state, STRATEGIC)
    assert refusal(state, example_policy, "skip", Skip(actor="carol", message_id=INTERNAL, reason="again")) == (
        f"cannot skip {INTERNAL}: it is skipped (no staff impact)"
    )


def test_seed004_estimate_moves_the_check_back_of_what_the_person_owes(example_policy: Policy) -> None:
    state = started(example_policy)
    m = move(example_policy, message(state, INTERNAL), Step.DRAFTING)
    assert m.waiting_on[0].due == NOW + timedelta(minutes=15)  # the policy's default until they give one
    m.waiting_on[0].nudged = True
    assert refusal(state, example_policy, "estimate", GiveEstimate(actor="dana", message_id=INTERNAL, minutes=5)) == (
        f"dana owes nothing on {INTERNAL}; it is being drafted, waiting on Technical SLT (bob) to draft until "
        "16:25 EET (14:25 UTC)"
    )
    take(state, example_policy, "estimate", GiveEstimate(actor="bob", message_id=INTERNAL, minutes=40, note="big"))
    owed = m.waiting_on[0]
    assert (owed.due, owed.estimated_by, owed.nudged, owed.estimate_number) == (
        NOW + timedelta(minutes=40),
        "bob",
        False,
        1,
    )
    assert m.due == owed.due and state.log[-1].text == f"{INTERNAL}: done by 16:50 EET (14:50 UTC): big"


def test_seed004_business_lead_sets_the_order_of_the_audiences(example_policy: Policy) -> None:
    state = started(example_policy)
    order = [Audience.ALL_CUSTOMERS, Audience.INTERNAL, Audience.STRATEGIC]
    assert refusal(state, example_policy, "set_audience_order", SetAudienceOrder(actor="bob", order=order)) == (
        "only the Business Lead (carol) can set the audience order; you are bob"
    )
    give_each_once = (
        "give each audience once: internal_stakeholders, strategic_customers, all_customers "
        "(to leave one out, skip its message)"
    )
    for bad in (order[:2], [*order[:2], Audience.INTERNAL]):
        assert (
            refusal(state, example_policy, "set_audience_order", SetAudienceOrder(actor="carol", order=bad))
            == give_each_once
        )
    assert take(state, example_policy, "set_audience_order", SetAudienceOrder(actor="carol", order=order)) == order
    assert phases.next_message(state) == message(state, "investigation/all_customers")


def test_seed004_phase_change_supersedes_the_unsent_messages_and_opens_the_next_phases(example_policy: Policy) -> None:
    state = started(example_policy)
    sent = move(example_policy, message(state, INTERNAL), Step.SENT)
    in_review = drafted(state, example_policy, STRATEGIC)
    later = FACTS.model_copy(update={"phase": Phase.IDENTIFICATION})
    phases.hear(state, example_policy, PhaseChanged(phase=Phase.IDENTIFICATION, facts=later), NOW)
    phases.follow(state, example_policy, NOW)
    assert phases.interrupted(state, example_policy, in_review)
    assert sent.step is Step.SENT
    assert (in_review.step, in_review.ended_reason, in_review.waiting_on) == (
        Step.SUPERSEDED,
        "the incident moved to identification",
        [],
    )
    assert state.round == [
        "identification/internal_stakeholders",
        "identification/strategic_customers",
        "identification/all_customers",
    ]


def test_seed004_resolution_round_is_kept_when_analysis_is_heard_at_once(example_policy: Policy) -> None:
    state = started(example_policy)
    for phase in (Phase.RESOLUTION, Phase.ANALYSIS):
        phases.hear(state, example_policy, PhaseChanged(phase=phase, facts=FACTS), NOW)
    phases.follow(state, example_policy, NOW)
    assert state.round_phase is Phase.RESOLUTION and state.phase is Phase.ANALYSIS
    assert not phases.done(state, example_policy)  # Resolution's messages are still to be created


def test_seed004_audience_without_recipients_is_skipped_by_the_policy(example_policy: Policy) -> None:
    recipients = example_policy.comms.recipients.model_copy(update={"strategic_customers": []})
    policy = example_policy.model_copy(
        update={"comms": example_policy.comms.model_copy(update={"recipients": recipients})}
    )
    m = message(started(policy), STRATEGIC)
    assert (m.step, m.ended_by, m.ended_reason) == (
        Step.SKIPPED,
        "policy",
        "the policy names no recipients for strategic_customers (comms.recipients)",
    )


def test_seed004_a_handed_over_incident_commander_approves_sending(example_policy: Policy) -> None:
    """Command handed to dave on the incident: the loop asks him, and his approval to send counts (the loop
    reads who holds a role from the incident, roles.role_holders); alice, the policy's IC, still may."""
    state = started(example_policy)
    state.facts.roles = RoleHolders(assigned={Role.INCIDENT_COMMANDER: "dave"})
    m = reviewed(state, example_policy)
    take(state, example_policy, "authorize", Approve(actor="frank", message_id=INTERNAL))
    m.step = Step.SEND_APPROVAL
    refresh(example_policy, state.facts.roles, m, NOW)
    assert [(o.key, o.people) for o in m.waiting_on] == [("approve_send", ["dave", "alice"])]
    assert refusal(state, example_policy, "approve_send", Approve(actor="carol", message_id=INTERNAL)) == (
        "only the Incident Commander (dave, alice) can approve sending; you are carol"
    )
    take(state, example_policy, "approve_send", Approve(actor="dave", message_id=INTERNAL))
    assert m.approved(ApprovalKind.SEND) is not None
