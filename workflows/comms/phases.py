"""Which messages each phase of the incident gets, in which order, and when a phase change supersedes them (seed
004's note): plain functions over the message loop's state, like its rules, so they are tested without a server.
"""

from __future__ import annotations

from datetime import datetime

from workflows.comms.model import FINISHED, UNSENT, CommsMessage, CommsState, CommsSummary, Step
from workflows.comms.rules import log
from workflows.comms.waiting import STEP_LABELS, refresh, waiting_on
from workflows.contracts.policy import Policy
from workflows.contracts.vocabulary import Audience, Phase
from workflows.incident.model import ClientsEvaluated, PhaseChanged


def hear(state: CommsState, policy: Policy, change: PhaseChanged, now: datetime) -> None:
    """The incident moved phase: remember it for the loop, which follows at its next step."""
    state.facts, state.phase = change.facts, change.phase
    waiting = state.next_phase
    # Resolution then Analysis heard in one go: the Resolution round still has to be opened, so a
    # phase without messages does not replace a waiting phase that has them (the end always does).
    if (
        waiting is None
        or change.phase in policy.comms.phases
        or change.phase is Phase.CLOSED
        or waiting.phase not in policy.comms.phases
    ):
        state.next_phase = change
    log(state, now, "phase", f"the incident moved to {change.phase}")


def follow(state: CommsState, policy: Policy, now: datetime) -> None:
    """Act on the phase last heard: stop working on the old phase's unsent messages, open the new phase's."""
    move = state.next_phase
    if move is None:
        return
    state.next_phase = None
    if move.phase is Phase.CLOSED:
        _supersede_round(state, policy, now, "the incident closed")
        state.closed = True
    elif supersedes(state, policy, move.phase):
        _supersede_round(state, policy, now, f"the incident moved to {move.phase}")
        _open_round(state, policy, move.phase, now)


def supersedes(state: CommsState, policy: Policy, phase: Phase) -> bool:
    return phase is Phase.CLOSED or (phase in policy.comms.phases and phase != state.round_phase)


def interrupted(state: CommsState, policy: Policy, m: CommsMessage) -> bool:
    """The message in hand was skipped or superseded, or the loop closed."""
    return m.step in (Step.SKIPPED, Step.SUPERSEDED) or state.closed


def _supersede_round(state: CommsState, policy: Policy, now: datetime, reason: str) -> None:
    for m in round_messages(state):
        if m.step in UNSENT:
            m.ended_reason = reason
            m.step = Step.SUPERSEDED
            refresh(policy, state.facts.roles, m, now)
            log(state, now, "superseded", f"{m.message_id}: {reason}")


def _open_round(state: CommsState, policy: Policy, phase: Phase, now: datetime) -> None:
    # earlier rounds of this phase, whatever audiences they had ("identification", "identification-2")
    earlier = len({m.message_id.rsplit("/", 1)[0] for m in state.messages if m.phase is phase})
    label = phase.value if not earlier else f"{phase.value}-{earlier + 1}"
    state.round_phase = phase
    state.round = []
    for audience in policy.comms.audience_order:
        m = CommsMessage(message_id=f"{label}/{audience.value}", phase=phase, audience=audience, created_at=now)
        nobody = _no_recipients(policy, audience)
        if nobody:
            m.step, m.ended_by, m.ended_reason = Step.SKIPPED, "policy", nobody
        state.messages.append(m)
        state.round.append(m.message_id)
    log(state, now, "phase", f"{phase}: messages {', '.join(state.round)}")


def held_for_owner(state: CommsState, policy: Policy, m: CommsMessage) -> bool:
    """Seed 001: where the policy has evaluation points, a client message is drafted only once the incident's
    owner said to tell clients."""
    return (
        bool(policy.comms.evaluation_points)
        and m.external
        and m.step is Step.QUEUED
        and m.message_id not in state.released
    )


def evaluated(state: CommsState, policy: Policy, now: datetime) -> None:
    """Act on the owner's answers: "now" releases the phase's client messages for drafting (a message is opened
    for an audience the phase has none queued for); "not now" skips them, with the owner's reason."""
    while state.evaluations_heard:
        answer = state.evaluations_heard.pop(0)
        if not state.closed:
            for audience in answer.audiences:
                _evaluated(state, policy, answer, audience, now)


def _evaluated(state: CommsState, policy: Policy, answer: ClientsEvaluated, audience: Audience, now: datetime) -> None:
    held = [
        m
        for m in round_messages(state)
        if m.audience is audience and m.phase is answer.phase and held_for_owner(state, policy, m)
    ]
    point = f"evaluation point {answer.number}"
    if not answer.tell:
        for m in held:
            m.step, m.ended_by, m.ended_reason = Step.SKIPPED, answer.by, f"not now: {answer.reason}"
            refresh(policy, state.facts.roles, m, now)
            log(state, now, "skipped", f"{m.message_id}: {point}: not now: {answer.reason}", answer.by)
        return
    if not held:
        held = [_open_message(state, policy, answer.phase, audience, now)]
    for m in held:
        state.released.append(m.message_id)
        log(state, now, "released", f"{m.message_id}: {point}: tell clients now: {answer.reason}", answer.by)


def _open_message(state: CommsState, policy: Policy, phase: Phase, audience: Audience, now: datetime) -> CommsMessage:
    """One more message of a phase for an audience, in the round being worked on."""
    earlier = sum(m.phase is phase and m.audience is audience for m in state.messages)
    label = phase.value if not earlier else f"{phase.value}-{earlier + 1}"
    m = CommsMessage(message_id=f"{label}/{audience.value}", phase=phase, audience=audience, created_at=now)
    nobody = _no_recipients(policy, audience)
    if nobody:
        m.step, m.ended_by, m.ended_reason = Step.SKIPPED, "policy", nobody
    state.messages.append(m)
    state.round.append(m.message_id)
    return m


def _no_recipients(policy: Policy, audience: Audience) -> str:
    r = policy.comms.recipients
    has = {
        Audience.INTERNAL: bool(r.internal_slack_channel or r.internal_email),
        Audience.STRATEGIC: any(c.contacts for c in r.strategic_customers),
        Audience.ALL_CUSTOMERS: bool(r.statuspage or r.customer_mailing_list),
    }[audience]
    return "" if has else f"the policy names no recipients for {audience} (comms.recipients)"


def round_messages(state: CommsState) -> list[CommsMessage]:
    by_id = {m.message_id: m for m in state.messages}
    return [by_id[mid] for mid in state.round]


def draft_next(state: CommsState, policy: Policy) -> CommsMessage | None:
    """Seed 004: the Technical SLT "churns through a list of messages" until the reviewers have joined: once no
    message of the phase is being drafted, the next queued one in the Business Lead's order is."""
    round_ = round_messages(state)
    if any(m.step is Step.DRAFTING for m in round_):
        return None
    queued = sorted(
        (m for m in round_ if m.step is Step.QUEUED and not held_for_owner(state, policy, m)),
        key=lambda m: state.audience_order.index(m.audience),
    )
    return queued[0] if queued else None


def in_hand(state: CommsState) -> list[CommsMessage]:
    """Every message being worked on, of any round: one being distributed or confirmed outlives a phase move."""
    return [m for m in state.messages if m.step not in (*FINISHED, Step.QUEUED)]


def next_message(state: CommsState) -> CommsMessage | None:
    """The message in hand, else the first queued one in the Business Lead's order."""
    open_ = [m for m in round_messages(state) if m.step not in FINISHED]
    started = [m for m in open_ if m.step is not Step.QUEUED]
    if started:
        return started[0]
    queued = sorted(open_, key=lambda m: state.audience_order.index(m.audience))
    return queued[0] if queued else None


def done(state: CommsState, policy: Policy) -> bool:
    """Closed: the loop waits for a reopened incident's phases until the incident closes."""
    return state.closed


def status_line(state: CommsState, policy: Policy) -> str:
    """What the Temporal UI shows: who the loop waits on, or how it ended."""
    if state.closed or done(state, policy):
        s = summary(state)
        return (
            f"done: {len(s.sent)} sent, {len(s.unconfirmed)} unconfirmed, "
            f"{len(s.skipped)} skipped, {len(s.superseded)} superseded"
        )
    held = in_hand(state)
    if not held:
        return f"{state.phase}: nothing pending; waiting for the incident's next phase"
    return "; ".join(
        f"{m.message_id}: waiting on {waiting_on(policy, m)}"
        if m.waiting_on
        else f"{m.message_id}: {STEP_LABELS[m.step]}"
        for m in held
    )


def summary(state: CommsState) -> CommsSummary:
    def ids(*steps: Step) -> list[str]:
        return [m.message_id for m in state.messages if m.step in steps]

    return CommsSummary(
        incident_id=state.incident_id,
        sent=ids(Step.SENT),
        unconfirmed=ids(Step.CONFIRMING),
        skipped=ids(Step.SKIPPED),
        superseded=ids(Step.SUPERSEDED),
        statuspage_incident_id=state.statuspage_incident_id,
    )
