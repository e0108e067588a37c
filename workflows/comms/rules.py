"""The rules of seed 004's Message Creation Loop: who may take which step on which message in which state, and
what the step changes. Plain functions over the state, so they are tested without a server and CommsWorkflow
only sequences and waits.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pydantic import ValidationError

from workflows.comms.model import (
    UNSENT,
    Approval,
    ApprovalKind,
    Approve,
    CommsMessage,
    CommsState,
    ConfirmSent,
    DecideEdit,
    Draft,
    Edit,
    GiveEstimate,
    MessageStep,
    Objection,
    ResolveObjection,
    Review,
    SetAudienceOrder,
    Skip,
    Step,
    Suggestion,
    Verdict,
    Version,
)
from workflows.comms.waiting import APPROVALS, approved_current, describe, refresh, title, version_of
from workflows.contracts.clock import local
from workflows.contracts.decisions import COMMS_DECISIONS
from workflows.contracts.policy import Policy
from workflows.contracts.roles import RoleHolders, holds_role, role_holders
from workflows.contracts.vocabulary import Audience, Role
from workflows.incident.model import Decision, TimelineEntry

if TYPE_CHECKING:
    from temporalio.common import RawValue
    from temporalio.converter import PayloadConverter

StepResult = CommsMessage | list[Audience]
D = TypeVar("D", bound=Decision)


@dataclass(frozen=True)
class Rule(Generic[D]):
    """A step's refusal (raises ValueError, changes nothing) and its change (only after the check passed)."""

    check: Callable[[CommsState, Policy, D], None]
    apply: Callable[[CommsState, Policy, D, datetime], StepResult]


def check(state: CommsState, policy: Policy, name: str, step: Decision) -> None:
    """Refuse the step, with a message the person can act on, unless they may take it now."""
    _rule(name, step).check(state, policy, step)


def apply(state: CommsState, policy: Policy, name: str, step: Decision, now: datetime) -> StepResult:
    """Record a step `check` accepted: the message it changed (the audience order for set_audience_order)."""
    return _rule(name, step).apply(state, policy, step, now)


def model_of(name: str) -> type[Decision]:
    model = COMMS_DECISIONS.get(name)
    if model is None:
        raise ValueError(f"the message loop has no step {name!r}; steps: {', '.join(COMMS_DECISIONS)}")
    return model


def decode(name: str, args: Sequence[RawValue], converter: PayloadConverter) -> Decision:
    """The step's model from its payload: input that does not read is a refusal, never a failed task."""
    model = model_of(name)
    if len(args) != 1:
        raise ValueError(f"{name} takes one {model.__name__}, not {len(args)} arguments")
    try:
        step = converter.from_payload(args[0].payload, model)
    except ValidationError as err:
        why = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'input'}: {e['msg']}" for e in err.errors())
        raise ValueError(f"{name} needs a valid {model.__name__}: {why}") from None
    except Exception as err:  # not JSON, another encoding: whatever the converter says
        raise ValueError(f"{name} needs a {model.__name__}: {err}") from None
    if not isinstance(step, model):
        raise ValueError(f"{name} needs a {model.__name__}")
    return step


def _rule(name: str, step: Decision) -> Rule[Any]:
    model = model_of(name)
    if not isinstance(step, model):
        raise ValueError(f"{name} takes a {model.__name__}, not a {type(step).__name__}")
    return RULES[name]


# --- refusals ------------------------------------------------------------------------------------


def _check_draft(state: CommsState, policy: Policy, step: Draft) -> None:
    m = _checked(state, policy, step, [Role.TECHNICAL_SLT], "draft", Step.DRAFTING)
    if m.pending_draft is not None:
        raise ValueError(f"a draft of {m.message_id} by {m.pending_draft.actor} is being rendered; wait for it")


def _check_edit(state: CommsState, policy: Policy, step: Edit) -> None:
    roles = [Role.TECHNICAL_SLT, *policy.comms.reviewers, Role.CUSTOMER_LIAISON]
    _checked(state, policy, step, roles, "edit", Step.IN_REVIEW, hint="edits are made during the reviews")
    if not step.text.strip():
        raise ValueError("an edit needs the new text")


def _check_decide_edit(state: CommsState, policy: Policy, step: DecideEdit) -> None:
    m = _checked(state, policy, step, [Role.TECHNICAL_SLT], "decide on a suggested edit to", Step.IN_REVIEW)
    found = next((s for s in m.suggestions if s.number == step.suggestion), None)
    if found is None or found.accepted is not None:
        open_ = ", ".join(str(s.number) for s in m.open_suggestions()) or "none"
        raise ValueError(f"{m.message_id} has no open suggestion {step.suggestion}; open: {open_}")


def _check_review(state: CommsState, policy: Policy, step: Review) -> None:
    m = _checked(state, policy, step, policy.comms.reviewers, "review", Step.IN_REVIEW)
    roles = _reviewer_roles(policy, state.facts.roles, step.actor)
    if step.actor == m.drafted_by:
        raise ValueError(
            f"{step.actor} drafted {m.message_id} and cannot review it; another "
            f"{' or '.join(title(r) for r in roles)} must"
        )
    if step.verdict is Verdict.OBJECT and not step.reason.strip():
        raise ValueError("a strong objection needs a reason the Technical SLT can act on")
    own = [o for o in m.open_objections() if o.by == step.actor]
    if own:
        raise ValueError(
            f"your objection {own[0].number} on {m.message_id} is open; the Technical SLT "
            f"resolves it (incidentctl resolve-objection) before you review again"
        )
    if step.verdict is Verdict.APPROVE and all(approved_current(m, r) for r in m.reviews if r.role in roles):
        raise ValueError(f"you already approved v{version_of(m)} of {m.message_id}")


def _check_resolve_objection(state: CommsState, policy: Policy, step: ResolveObjection) -> None:
    m = _checked(state, policy, step, [Role.TECHNICAL_SLT], "resolve an objection on", Step.IN_REVIEW)
    found = next((o for o in m.objections if o.number == step.objection), None)
    if found is None or found.resolved_by is not None:
        open_ = ", ".join(str(o.number) for o in m.open_objections()) or "none"
        raise ValueError(f"{m.message_id} has no open objection {step.objection}; open: {open_}")
    if not step.resolution.strip():
        raise ValueError("say how the objection was resolved")


def _check_approval(state: CommsState, policy: Policy, kind: ApprovalKind, step: Approve) -> None:
    role, doing, at = APPROVALS[kind]
    m = message_of(state, step)
    _require_role(policy, state.facts.roles, step.actor, [role], doing)
    if kind is ApprovalKind.ELT and not policy.comms.require_elt_approval:
        raise ValueError("this policy does not ask the ELT Approver to authorize messages")
    if kind is ApprovalKind.EXTERNAL and not (m.external and policy.comms.communications_lead_approves_external):
        raise ValueError(f"{m.message_id} needs no Communications Lead approval: only external audiences do")
    if m.step is not at:
        hint = {
            ApprovalKind.SEND: "; the Incident Commander approves sending after the reviews and the ELT's authorization"
        }.get(kind, "; approvals come after the reviews")
        raise ValueError(f"cannot {doing} {m.message_id}: it is {describe(policy, m)}{hint}")
    if m.approved(kind):
        raise ValueError(f"{m.message_id} v{version_of(m)} is already approved for this")


def _check_confirm_sent(state: CommsState, policy: Policy, step: ConfirmSent) -> None:
    _checked(state, policy, step, [Role.DISTRIBUTOR], "confirm sending", Step.CONFIRMING)


def _check_skip(state: CommsState, policy: Policy, step: Skip) -> None:
    _checked(state, policy, step, [Role.BUSINESS_LEAD], "skip", *UNSENT)
    if not step.reason.strip():
        raise ValueError("say why this audience gets no message in this phase")


def _check_estimate(state: CommsState, policy: Policy, step: GiveEstimate) -> None:
    m = message_of(state, step)
    if not any(step.actor in o.people for o in m.waiting_on):
        raise ValueError(f"{step.actor} owes nothing on {m.message_id}; it is {describe(policy, m)}")


def _check_set_audience_order(state: CommsState, policy: Policy, step: SetAudienceOrder) -> None:
    _require_role(policy, state.facts.roles, step.actor, [Role.BUSINESS_LEAD], "set the audience order")
    known = policy.comms.audience_order
    if len(set(step.order)) != len(step.order) or set(step.order) != set(known):
        raise ValueError(
            f"give each audience once: {', '.join(a.value for a in known)} (to leave one out, skip its message)"
        )


def _checked(
    state: CommsState, policy: Policy, step: MessageStep, roles: list[Role], doing: str, *steps: Step, hint: str = ""
) -> CommsMessage:
    m = message_of(state, step)
    _require_role(policy, state.facts.roles, step.actor, roles, doing)
    if m.step not in steps:
        raise ValueError(f"cannot {doing} {m.message_id}: it is {describe(policy, m)}{f'; {hint}' if hint else ''}")
    return m


def message_of(state: CommsState, step: MessageStep) -> CommsMessage:
    found = next((m for m in state.messages if m.message_id == step.message_id), None)
    if found is None:
        known = ", ".join(m.message_id for m in state.messages) or "none yet"
        raise ValueError(f"no message {step.message_id!r} on {state.incident_id}; messages: {known}")
    return found


def _require_role(policy: Policy, holding: RoleHolders, actor: str, roles: list[Role], doing: str) -> None:
    if any(holds_role(policy, actor, role, holding) for role in roles):
        return
    who = [f"{title(r)} ({', '.join(role_holders(policy, r, holding)) or 'nobody'})" for r in dict.fromkeys(roles)]
    listed = who[0] if len(who) == 1 else f"{', '.join(who[:-1])} or {who[-1]}"
    raise ValueError(f"only the {listed} can {doing}; you are {actor}")


def _reviewer_roles(policy: Policy, holding: RoleHolders, actor: str) -> list[Role]:
    return [r for r in policy.comms.reviewers if holds_role(policy, actor, r, holding)]


# --- changes: what a step does once it passed its check -------------------------------------------


def _draft(state: CommsState, policy: Policy, step: Draft, now: datetime) -> CommsMessage:
    m = message_of(state, step)
    m.pending_draft = step  # rendered by the loop
    return _recorded(state, policy, m, now, "draft", "draft submitted", step.actor)


def _edit(state: CommsState, policy: Policy, step: Edit, now: datetime) -> CommsMessage:
    """The Technical SLT's edit is a new version; anyone else's is a suggestion for them (seed 004)."""
    m = message_of(state, step)
    current = m.current
    assert current is not None
    subject = step.subject or current.subject
    if not holds_role(policy, step.actor, Role.TECHNICAL_SLT, state.facts.roles):
        number = len(m.suggestions) + 1
        m.suggestions.append(
            Suggestion(
                number=number,
                by=step.actor,
                at=now,
                version=version_of(m),
                subject=subject,
                text=step.text.strip(),
                note=step.note,
            )
        )
        note = f": {step.note}" if step.note else ""
        return _recorded(
            state, policy, m, now, "suggestion", f"suggestion {number} on v{version_of(m)}{note}", step.actor
        )
    add_version(m, now, step.actor, subject, step.text.strip(), "", source="edit", note=step.note)
    return _recorded(
        state, policy, m, now, "edit", f"v{version_of(m)}{f': {step.note}' if step.note else ''}", step.actor
    )


def _decide_edit(accept: bool) -> Rule[DecideEdit]:
    def apply(state: CommsState, policy: Policy, step: DecideEdit, now: datetime) -> StepResult:
        m = message_of(state, step)
        found = next(s for s in m.suggestions if s.number == step.suggestion)
        found.accepted, found.decided_by, found.reason = accept, step.actor, step.reason.strip()
        if not accept:
            why = f": {found.reason}" if found.reason else ""
            return _recorded(
                state, policy, m, now, "suggestion_declined", f"suggestion {found.number}{why}", step.actor
            )
        add_version(
            m, now, found.by, found.subject, found.text, "", source=f"suggestion {found.number}", note=found.note
        )
        text = f"suggestion {found.number} by {found.by} accepted: v{version_of(m)}"
        return _recorded(state, policy, m, now, "suggestion_accepted", text, step.actor)

    return Rule(_check_decide_edit, apply)


def _review(state: CommsState, policy: Policy, step: Review, now: datetime) -> CommsMessage:
    m = message_of(state, step)
    roles = _reviewer_roles(policy, state.facts.roles, step.actor)
    for review in m.reviews:
        if review.role in roles:
            review.verdict, review.by, review.at, review.version = step.verdict, step.actor, now, version_of(m)
    if step.verdict is Verdict.OBJECT:
        m.objections.append(
            Objection(
                number=len(m.objections) + 1,
                by=step.actor,
                role=roles[0],
                reason=step.reason.strip(),
                at=now,
                version=version_of(m),
            )
        )
        return _recorded(
            state, policy, m, now, "objection", f"objection {len(m.objections)}: {step.reason}", step.actor
        )
    return _recorded(state, policy, m, now, "review", f"approved v{version_of(m)}", step.actor)


def _resolve_objection(state: CommsState, policy: Policy, step: ResolveObjection, now: datetime) -> CommsMessage:
    m = message_of(state, step)
    objection = next(o for o in m.objections if o.number == step.objection)
    objection.resolved_by, objection.resolved_at = step.actor, now
    objection.resolution = step.resolution.strip()
    if step.text.strip():
        current = m.current
        assert current is not None
        add_version(
            m,
            now,
            step.actor,
            step.subject or current.subject,
            step.text.strip(),
            "",
            source=f"objection {objection.number} resolved",
            note=objection.resolution,
        )
    for review in m.reviews:
        if review.role is objection.role:
            review.verdict = None  # the objector reviews the resolution
    return _recorded(
        state, policy, m, now, "objection_resolved", f"objection {objection.number}: {step.resolution}", step.actor
    )


def _approve(state: CommsState, policy: Policy, kind: ApprovalKind, step: Approve, now: datetime) -> CommsMessage:
    m = message_of(state, step)
    m.approvals.append(Approval(kind=kind, by=step.actor, at=now, version=version_of(m), note=step.note))
    return _recorded(state, policy, m, now, f"approved_{kind}", f"{APPROVALS[kind][1]}: v{version_of(m)}", step.actor)


def _confirm_sent(state: CommsState, policy: Policy, step: ConfirmSent, now: datetime) -> CommsMessage:
    m = message_of(state, step)
    m.step, m.confirmed_by, m.confirmed_at = Step.SENT, step.actor, now
    return _recorded(
        state, policy, m, now, "sent", f"confirmed sent{f': {step.note}' if step.note else ''}", step.actor
    )


def _skip(state: CommsState, policy: Policy, step: Skip, now: datetime) -> CommsMessage:
    m = message_of(state, step)
    m.step, m.ended_by, m.ended_reason = Step.SKIPPED, step.actor, step.reason.strip()
    return _recorded(state, policy, m, now, "skipped", step.reason, step.actor)


def _estimate(state: CommsState, policy: Policy, step: GiveEstimate, now: datetime) -> CommsMessage:
    m = message_of(state, step)
    due = now + timedelta(minutes=step.minutes)
    for owed in m.waiting_on:
        if step.actor in owed.people:
            owed.due, owed.estimated_by, owed.nudged = due, step.actor, False
            owed.minutes, owed.check_backs = step.minutes, 0  # the check-backs count from the new estimate
            owed.estimate_number += 1
    note = f": {step.note}" if step.note else ""
    return _recorded(state, policy, m, now, "estimate", f"done by {local(policy, due)}{note}", step.actor)


def _set_audience_order(state: CommsState, policy: Policy, step: SetAudienceOrder, now: datetime) -> list[Audience]:
    state.audience_order = list(step.order)
    log(state, now, "audience_order", ", ".join(a.value for a in step.order), step.actor)
    return state.audience_order


def _recorded(
    state: CommsState, policy: Policy, m: CommsMessage, now: datetime, kind: str, text: str, actor: str
) -> CommsMessage:
    log(state, now, kind, f"{m.message_id}: {text}", actor)
    refresh(policy, state.facts.roles, m, now)
    return m


def _approval(kind: ApprovalKind) -> Rule[Approve]:
    return Rule(
        lambda state, policy, step: _check_approval(state, policy, kind, step),
        lambda state, policy, step, now: _approve(state, policy, kind, step, now),
    )


# One rule per name of COMMS_DECISIONS (workflows/contracts/decisions.py); Approve serves three approvals,
# DecideEdit two.
RULES: dict[str, Rule[Any]] = {
    "draft": Rule(_check_draft, _draft),
    "edit": Rule(_check_edit, _edit),
    "accept_edit": _decide_edit(accept=True),
    "decline_edit": _decide_edit(accept=False),
    "review": Rule(_check_review, _review),
    "resolve_objection": Rule(_check_resolve_objection, _resolve_objection),
    "authorize": _approval(ApprovalKind.ELT),
    "approve_external": _approval(ApprovalKind.EXTERNAL),
    "approve_send": _approval(ApprovalKind.SEND),
    "confirm_sent": Rule(_check_confirm_sent, _confirm_sent),
    "skip": Rule(_check_skip, _skip),
    "estimate": Rule(_check_estimate, _estimate),
    "set_audience_order": Rule(_check_set_audience_order, _set_audience_order),
}


# --- the record ---------------------------------------------------------------------------------


def add_version(
    m: CommsMessage, now: datetime, author: str, subject: str, text: str, html: str, *, source: str, note: str = ""
) -> None:
    m.versions.append(
        Version(
            number=len(m.versions) + 1,
            author=author,
            at=now,
            subject=subject,
            text=text,
            html=html,
            source=source,
            note=note,
        )
    )


def log(state: CommsState, now: datetime, kind: str, text: str, actor: str | None = None) -> None:
    state.log.append(TimelineEntry(at=now, kind=kind, text=text, actor=actor))
