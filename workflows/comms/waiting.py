"""Who a message of seed 004's loop waits on, for what, and the words for it (steps, roles) that refusals, reminders
and the status line share. Plain functions over the message and the policy, like the rules.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from workflows.comms.model import ApprovalKind, CommsMessage, Owed, ReviewStatus, Step, Verdict
from workflows.contracts.clock import local
from workflows.contracts.policy import Policy
from workflows.contracts.roles import RoleHolders, role_holders
from workflows.contracts.vocabulary import Role

TITLES = {
    Role.BUSINESS_LEAD: "Business Lead",
    Role.TECHNICAL_SLT: "Technical SLT",
    Role.MESSAGING_OFFICER: "Messaging Officer",
    Role.LEGAL_OFFICER: "Legal Officer",
    Role.CUSTOMER_LIAISON: "Customer Liaison",
    Role.ELT_APPROVER: "ELT Approver",
    Role.COMMUNICATIONS_LEAD: "Communications Lead",
    Role.INCIDENT_COMMANDER: "Incident Commander",
    Role.DISTRIBUTOR: "distributor",
}

STEP_LABELS = {
    Step.QUEUED: "queued behind the phase's earlier audiences",
    Step.DRAFTING: "being drafted",
    Step.IN_REVIEW: "in review",
    Step.APPROVAL: "waiting for approval",
    Step.SEND_APPROVAL: "waiting for the Incident Commander's approval to send",
    Step.DISTRIBUTING: "being distributed",
    Step.CONFIRMING: "sent and waiting for the distributor's confirmation",
    Step.SENT: "already sent",
    Step.SKIPPED: "skipped",
    Step.SUPERSEDED: "superseded",
}

# who gives each approval, what they do, and at which step of the message
APPROVALS = {
    ApprovalKind.ELT: (Role.ELT_APPROVER, "authorize", Step.APPROVAL),
    ApprovalKind.EXTERNAL: (Role.COMMUNICATIONS_LEAD, "approve the external message", Step.APPROVAL),
    ApprovalKind.SEND: (Role.INCIDENT_COMMANDER, "approve sending", Step.SEND_APPROVAL),
}


# --- who owes what on a message -------------------------------------------------------------------


def owed(policy: Policy, m: CommsMessage) -> list[tuple[str, str, Role]]:
    """(key, what, role) of everything people owe on the message right now."""
    if m.step is Step.DRAFTING:
        return [("draft", "draft", Role.TECHNICAL_SLT)]
    if m.step is Step.IN_REVIEW:
        objections = m.open_objections()
        blocked = {o.role for o in objections}  # a strong objection blocks its reviewer until resolved
        return (
            [(f"resolve:{o.number}", f"resolve objection {o.number} ({o.by})", Role.TECHNICAL_SLT) for o in objections]
            + [
                (f"suggestion:{s.number}", f"accept or decline suggestion {s.number} ({s.by})", Role.TECHNICAL_SLT)
                for s in m.open_suggestions()
            ]
            + [
                (f"review:{r.role}", f"review v{version_of(m)}", r.role)
                for r in m.reviews
                if r.role not in blocked and not approved_current(m, r)
            ]
        )
    if m.step is Step.APPROVAL:
        return [(kind.value, APPROVALS[kind][1], APPROVALS[kind][0]) for kind in approvals_owed(policy, m)]
    if m.step is Step.SEND_APPROVAL:
        return [("approve_send", "approve sending", Role.INCIDENT_COMMANDER)]
    if m.step is Step.CONFIRMING:
        return [("confirm_sent", "confirm it reached its audience", Role.DISTRIBUTOR)]
    return []


def refresh(policy: Policy, holding: RoleHolders, m: CommsMessage, now: datetime) -> None:
    """Recompute who the message waits on, keeping the estimates already given."""
    default = timedelta(minutes=policy.comms.default_estimate_minutes)
    before = {o.key: o for o in m.waiting_on}
    m.waiting_on = []
    for key, what, role in owed(policy, m):
        owing = before.get(key) or Owed(
            key=key, what=what, role=role, people=role_holders(policy, role, holding), since=now, due=now + default
        )
        owing.what = what
        m.waiting_on.append(owing)
    m.owner = ", ".join(dict.fromkeys(p for o in m.waiting_on for p in o.people))
    m.due = min((o.due for o in m.waiting_on), default=None)


def reviews_complete(m: CommsMessage) -> bool:
    """No strong objection open, no suggestion undecided, every review on the current version."""
    return not m.open_objections() and not m.open_suggestions() and all(approved_current(m, r) for r in m.reviews)


def approvals_owed(policy: Policy, m: CommsMessage) -> list[ApprovalKind]:
    """The ELT's authorization and, for an external audience, the Communications Lead's (seed 000)."""
    owing = []
    if policy.comms.require_elt_approval and not m.approved(ApprovalKind.ELT):
        owing.append(ApprovalKind.ELT)
    if m.external and policy.comms.communications_lead_approves_external and not m.approved(ApprovalKind.EXTERNAL):
        owing.append(ApprovalKind.EXTERNAL)
    return owing


# --- the words people read ---------------------------------------------------------------------


def title(role: Role) -> str:
    return TITLES.get(role, role.value.replace("_", " "))


def describe(policy: Policy, m: CommsMessage) -> str:
    text = STEP_LABELS[m.step]
    if m.step in (Step.SKIPPED, Step.SUPERSEDED):
        return f"{text} ({m.ended_reason})"
    if m.waiting_on:
        return f"{text}, waiting on {waiting_on(policy, m)}"
    return text


def waiting_on(policy: Policy, m: CommsMessage) -> str:
    return ", ".join(
        f"{title(o.role)} ({', '.join(o.people) or 'nobody holds the role'}) to {o.what} until {local(policy, o.due)}"
        for o in m.waiting_on
    )


def version_of(m: CommsMessage) -> int:
    return m.current.number if m.current else 0


def approved_current(m: CommsMessage, review: ReviewStatus) -> bool:
    """An approval counts only for the version it was given on."""
    return review.verdict is Verdict.APPROVE and review.version == version_of(m)


def held_back(policy: Policy, m: CommsMessage) -> tuple[Step, str] | None:
    """What the version about to go out still lacks, and the step that gets it: seed 004's reviews, the ELT's
    authorization and the Incident Commander's approval to send, and seed 000's Communications Lead for an
    external audience. None: it may be distributed."""
    if not reviews_complete(m):
        return Step.IN_REVIEW, "its reviews"
    owing = approvals_owed(policy, m)
    if owing:
        return Step.APPROVAL, " and ".join(f"the {title(APPROVALS[k][0])}'s approval" for k in owing)
    if not m.approved(ApprovalKind.SEND):
        return Step.SEND_APPROVAL, "the Incident Commander's approval to send"
    return None
