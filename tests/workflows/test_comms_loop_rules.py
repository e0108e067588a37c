"""The rules of seed 004's loop that let it work on several messages and keep the Business Lead in the know, as
plain functions: drafting ahead, check-backs that repeat, news of drafts and approvals, a reopen resuming the
loop, distributions outliving a phase move, and seed 000's gate on external messages. People as in
test_comms_rules.py (examples/policy.toml): carol is Business Lead, Communications Lead and distributor.
"""

from __future__ import annotations

import json
from datetime import timedelta

from starter.http.slack import parse_action
from tests.workflows.test_comms_rules import (
    FACTS,
    INTERNAL,
    NOW,
    STRATEGIC,
    drafted,
    message,
    move,
    reviewed,
    started,
    take,
)
from workflows.comms import notices, phases
from workflows.comms.model import ApprovalKind, Approve, CommsState, GiveEstimate, Owed, Step
from workflows.comms.waiting import held_back
from workflows.contracts.policy import Policy
from workflows.contracts.roles import RoleHolders
from workflows.contracts.vocabulary import Audience, Phase, Role
from workflows.incident.model import PhaseChanged

ALL = "investigation/all_customers"
ABOUT = "INC-TEST0001 (Checkout errors)"


def hear(state: CommsState, policy: Policy, phase: Phase, minutes: int = 0) -> None:
    at = NOW + timedelta(minutes=minutes)
    phases.hear(state, policy, PhaseChanged(phase=phase, facts=FACTS.model_copy(update={"phase": phase})), at)
    phases.follow(state, policy, at)


def test_seed004_technical_slt_drafts_the_next_audience_while_one_is_in_review(example_policy: Policy) -> None:
    """Seed 004: "churn through a list of messages ... until all reviewers and approvers have joined"."""
    state = started(example_policy)
    assert phases.draft_next(state, example_policy) == message(state, INTERNAL)
    move(example_policy, message(state, INTERNAL), Step.DRAFTING)
    assert phases.draft_next(state, example_policy) is None  # one draft at a time
    drafted(state, example_policy)
    move(example_policy, message(state, INTERNAL), Step.IN_REVIEW)
    assert phases.draft_next(state, example_policy) == message(state, STRATEGIC)
    state.audience_order = [Audience.INTERNAL, Audience.ALL_CUSTOMERS, Audience.STRATEGIC]
    assert phases.draft_next(state, example_policy) == message(state, ALL)  # in the Business Lead's order
    assert phases.in_hand(state) == [message(state, INTERNAL)]


def test_seed004_check_back_repeats_at_each_elapsed_estimate_and_reaches_the_business_lead(
    example_policy: Policy,
) -> None:
    """Seed 004: "Ask ... to provide a time estimate for completion and check back in once that time has
    elapsed": while the person stays silent, again at each further estimate, and the Business Lead hears of it."""
    state = started(example_policy)
    m = move(example_policy, message(state, INTERNAL), Step.DRAFTING)
    assert notices.next_check_back(example_policy, state, m) == NOW + timedelta(minutes=15)
    assert notices.check_backs(example_policy, state, m, NOW + timedelta(minutes=14), ABOUT) == []

    first = notices.check_backs(example_policy, state, m, NOW + timedelta(minutes=15), ABOUT)
    assert [(n.people, n.key) for n in first] == [
        (["carol"], "check-back:0:0:1:lead"),
        (["bob"], "check-back:0:0:1:owner"),
    ]
    assert first[0].text == (
        f"{ABOUT}: check back with Technical SLT (bob): draft {INTERNAL} was due at 16:25 EET (14:25 UTC). "
        "No word for 15 min (check-back 1); the next at 16:40 EET (14:40 UTC)."
    )
    assert notices.next_check_back(example_policy, state, m) == NOW + timedelta(minutes=30)
    assert notices.check_backs(example_policy, state, m, NOW + timedelta(minutes=29), ABOUT) == []
    second = notices.check_backs(example_policy, state, m, NOW + timedelta(minutes=30), ABOUT)
    assert "No word for 30 min (check-back 2)" in second[0].text and second[0].people == ["carol"]

    take(state, example_policy, "estimate", GiveEstimate(actor="bob", message_id=INTERNAL, minutes=40))
    assert notices.next_check_back(example_policy, state, m) == NOW + timedelta(minutes=40)
    take(state, example_policy, "estimate", GiveEstimate(actor="bob", message_id=INTERNAL, minutes=10))
    third = notices.check_backs(example_policy, state, m, NOW + timedelta(minutes=10), ABOUT)
    assert "No word for 10 min (check-back 1)" in third[0].text  # counted from his estimate
    assert notices.next_check_back(example_policy, state, m) == NOW + timedelta(minutes=20)


def test_seed004_business_lead_is_told_when_the_draft_is_ready_and_each_approval_is_given(
    example_policy: Policy,
) -> None:
    """Seed 004: "Inform the Business Lead that the initial draft is ready for review" and "that the draft has
    approval for distribution"; she is not told of a step she took herself."""
    state = started(example_policy)
    m = message(state, STRATEGIC)
    assert notices.news(example_policy, RoleHolders(), m, ABOUT) == []
    drafted(state, example_policy, STRATEGIC)
    move(example_policy, m, Step.APPROVAL)
    take(state, example_policy, "authorize", Approve(actor="frank", message_id=STRATEGIC))
    take(state, example_policy, "approve_external", Approve(actor="carol", message_id=STRATEGIC))
    news = notices.news(example_policy, RoleHolders(), m, ABOUT)
    assert [(n.people, n.key) for n in news] == [
        (["carol"], "lead:drafted"),
        (["carol"], "lead:approved:elt:v1"),
        ([], "lead:approved:external:v1"),  # her own approval
    ]
    assert news[0].text == (
        f"{ABOUT}: v1 is drafted by bob at 16:10 EET (14:10 UTC) and ready for review by Messaging Officer "
        "(erin), Legal Officer (dana)."
    )
    assert news[1].text == f"{ABOUT}: frank (ELT Approver) authorized v1 for release at 16:10 EET (14:10 UTC)."
    m.told_business_lead += [n.key for n in news]
    assert notices.news(example_policy, RoleHolders(), m, ABOUT) == []  # each told once


def test_seed004_reopen_resumes_the_loop_for_the_new_phase(example_policy: Policy) -> None:
    """After the last phase the loop waits; a reopen's Investigation opens a second round of its messages."""
    state = started(example_policy)
    hear(state, example_policy, Phase.RESOLUTION)
    hear(state, example_policy, Phase.ANALYSIS)
    for m in phases.round_messages(state):
        m.step = Step.SENT
    assert not phases.done(state, example_policy)
    assert (
        phases.status_line(state, example_policy) == "analysis: nothing pending; waiting for the incident's next phase"
    )
    hear(state, example_policy, Phase.INVESTIGATION, minutes=60)
    assert state.round == [f"investigation-2/{a.value}" for a in example_policy.comms.audience_order]
    assert phases.draft_next(state, example_policy) == message(state, "investigation-2/internal_stakeholders")
    hear(state, example_policy, Phase.CLOSED, minutes=90)
    assert phases.done(state, example_policy)


def test_seed004_message_being_distributed_when_the_phase_moves_stays_in_hand(example_policy: Policy) -> None:
    """Seed 004: a phase move stops the work on unsent messages; one going out is finished and confirmed."""
    state = started(example_policy)
    sending = move(example_policy, message(state, INTERNAL), Step.DISTRIBUTING)
    confirming = move(example_policy, message(state, STRATEGIC), Step.CONFIRMING)
    hear(state, example_policy, Phase.IDENTIFICATION)
    assert (sending.step, confirming.step, message(state, ALL).step) == (
        Step.DISTRIBUTING,
        Step.CONFIRMING,
        Step.SUPERSEDED,
    )
    assert phases.in_hand(state) == [sending, confirming]
    assert not phases.interrupted(state, example_policy, confirming)
    assert [o.role for o in confirming.waiting_on] == [Role.DISTRIBUTOR]
    hear(state, example_policy, Phase.CLOSED)
    assert phases.interrupted(state, example_policy, confirming)  # the loop ends with the incident


def test_seed000_external_message_is_never_distributed_before_the_communications_lead_approves(
    example_policy: Policy,
) -> None:
    """Seed 000: "All external communications should be approved by the Communications Lead"."""
    state = started(example_policy)
    for mid in (INTERNAL, STRATEGIC):
        m = reviewed(state, example_policy, mid)
        assert held_back(example_policy, m) == (
            Step.APPROVAL,
            "the ELT Approver's approval" + (" and the Communications Lead's approval" if mid == STRATEGIC else ""),
        )
        take(state, example_policy, "authorize", Approve(actor="frank", message_id=mid))
        # the Incident Commander's approval on record, as if the step had been skipped
        m.approvals.append(m.approvals[0].model_copy(update={"kind": ApprovalKind.SEND, "by": "alice"}))
    assert held_back(example_policy, message(state, INTERNAL)) is None
    assert held_back(example_policy, message(state, STRATEGIC)) == (
        Step.APPROVAL,
        "the Communications Lead's approval",
    )
    assert [o.role for o in message(state, STRATEGIC).waiting_on] == [Role.COMMUNICATIONS_LEAD]
    lenient = example_policy.model_copy(
        update={"comms": example_policy.comms.model_copy(update={"communications_lead_approves_external": False})}
    )
    assert held_back(lenient, message(state, STRATEGIC)) is None


def test_times_people_read_are_in_the_policys_time_zone_with_utc_alongside(example_policy: Policy) -> None:
    state = started(example_policy)
    m = move(example_policy, message(state, INTERNAL), Step.DRAFTING)
    asked = notices.ask(example_policy, state, m, m.waiting_on[0], ABOUT)
    assert asked.text.endswith("until then the Business Lead checks back at 16:25 EET (14:25 UTC).")
    assert phases.status_line(state, example_policy) == (
        f"{INTERNAL}: waiting on Technical SLT (bob) to draft until 16:25 EET (14:25 UTC)"
    )


def test_seed004_an_approval_asked_for_in_a_chat_is_one_click_the_endpoints_read_as_that_step(
    example_policy: Policy,
) -> None:
    state = started(example_policy)
    m = message(state, INTERNAL)
    owed = Owed(
        key="approve_send", what="approve sending", role=Role.INCIDENT_COMMANDER, people=["alice"], since=NOW, due=NOW
    )
    drafting = owed.model_copy(update={"key": "draft", "what": "draft", "role": Role.TECHNICAL_SLT})

    (click,) = notices.ask(example_policy, state, m, owed, ABOUT).buttons
    clicked = parse_action({"action_id": click.decision, "value": json.dumps(click.fields)}, "alice")

    assert (clicked.incident_id, clicked.step) == (state.incident_id, "approve_send")
    assert clicked.decision == Approve(actor="alice", message_id=INTERNAL)
    assert notices.ask(example_policy, state, m, drafting, ABOUT).buttons == ()  # words, not a click
