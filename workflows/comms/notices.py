"""The direct messages of seed 004's loop: each owner asked for an estimate, the Business Lead's check-backs
(at each elapsed estimate while the person stays silent), her news of each draft ready and each approval
given, and the Customer Liaison's alerts. Plain functions: they return the messages, which the loop sends.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from workflows.comms.model import Approval, ApprovalKind, CommsMessage, CommsState, Owed
from workflows.comms.rules import log
from workflows.comms.waiting import APPROVALS, title, version_of
from workflows.contracts.clock import local
from workflows.contracts.policy import Policy
from workflows.contracts.roles import RoleHolders, role_holders
from workflows.contracts.vocabulary import Role
from workflows.incident.model import ChatButton, IncidentFacts

# what each approval lets happen, for the Business Lead's news
APPROVED = {
    ApprovalKind.ELT: "authorized v{v} for release at {at}.",
    ApprovalKind.EXTERNAL: "approved v{v} for its external audience at {at}.",
    ApprovalKind.SEND: "approved sending v{v} at {at}: it goes to its audience now.",
}


# What owes a click rather than words, by what is owed (Owed.key): the step's name and its button's label.
CLICKS = {
    ApprovalKind.ELT.value: ("authorize", "Authorize"),
    ApprovalKind.EXTERNAL.value: ("approve_external", "Approve for external"),
    "approve_send": ("approve_send", "Approve sending"),
    "confirm_sent": ("confirm_sent", "Confirm it reached its audience"),
}


@dataclass(frozen=True)
class Notice:
    """A direct message to send: `key` follows the message's idempotency key; in a chat, with `buttons`."""

    people: list[str]
    text: str
    key: str
    buttons: tuple[ChatButton, ...] = ()


# --- check-backs ----------------------------------------------------------------------------------


def estimate_length(policy: Policy, owed: Owed) -> timedelta:
    return timedelta(minutes=owed.minutes or policy.comms.default_estimate_minutes)


def check_back_at(policy: Policy, state: CommsState, owed: Owed) -> datetime | None:
    """When the Business Lead next checks back: once the estimate has elapsed, then again each time its length
    elapses while the person stays silent."""
    return owed.due + owed.check_backs * estimate_length(policy, owed)


def next_check_back(policy: Policy, state: CommsState, m: CommsMessage) -> datetime | None:
    times = [at for o in m.waiting_on if (at := check_back_at(policy, state, o)) is not None]
    return min(times, default=None)


def check_backs(policy: Policy, state: CommsState, m: CommsMessage, now: datetime, about: str) -> list[Notice]:
    """Every estimate that has elapsed: the Business Lead is told who stays silent, and the owner reminded."""
    notices = []
    for owed in m.waiting_on:
        at = check_back_at(policy, state, owed)
        if at is None or at > now:
            continue
        owed.nudged, owed.check_backs = True, owed.check_backs + 1
        who = f"{title(owed.role)} ({', '.join(owed.people) or 'nobody holds the role'})"
        due = local(policy, owed.due)
        log(state, now, "check_back", f"{m.message_id}: {who} was to {owed.what} by {due}")
        heard = owed.due - estimate_length(policy, owed)  # the ask, or the estimate they gave
        silent = int((now - heard).total_seconds() // 60)
        following = local(policy, owed.due + owed.check_backs * estimate_length(policy, owed))
        again = f" No word for {silent} min (check-back {owed.check_backs}); the next at {following}."
        key = f"check-back:{owed.asked}:{owed.estimate_number}:{owed.check_backs}"
        notices += [
            Notice(
                role_holders(policy, Role.BUSINESS_LEAD, state.facts.roles),
                f"{about}: check back with {who}: {owed.what} {m.message_id} was due at {due}.{again}",
                f"{key}:lead",
            ),
            Notice(
                owed.people,
                f"{about}: reminder: {owed.what} {m.message_id} was due at {due}. Please finish it or give a new "
                f"estimate (incidentctl message-estimate {state.incident_id} {m.message_id} MINUTES).",
                f"{key}:owner",
            ),
        ]
    return notices


def ask(policy: Policy, state: CommsState, m: CommsMessage, owed: Owed, about: str) -> Notice:
    """The owner is asked for what they owe and for an estimate."""
    return Notice(
        owed.people,
        f"{about}: please {owed.what} {m.message_id} and give an estimate "
        f"(incidentctl message-estimate {state.incident_id} {m.message_id} MINUTES); "
        f"until then the Business Lead checks back at {local(policy, owed.due)}.",
        f"ask:{owed.asked}",
        _click(state, m, owed),
    )


def _click(state: CommsState, m: CommsMessage, owed: Owed) -> tuple[ChatButton, ...]:
    if owed.key not in CLICKS:
        return ()  # a draft, a review or an objection's answer: words, given with incidentctl
    step, label = CLICKS[owed.key]
    return (
        ChatButton(label=label, decision=step, fields={"incident_id": state.incident_id, "message_id": m.message_id}),
    )


# --- news: drafts ready and approvals given ---------------------------------------------------------


def news(policy: Policy, holding: RoleHolders, m: CommsMessage, about: str) -> list[Notice]:
    """What the Business Lead has not been told yet: the draft ready for review (seed 004's Technical SLT
    "inform the Business Lead that the initial draft is ready") and every approval given (the Customer
    Liaison's "inform the Business Lead that the draft has approval"). The one who acted is not told."""
    notices = []
    for key, approval in _untold(m):
        if approval is None:
            first = m.versions[0]
            reviewers = ", ".join(
                f"{title(r)} ({', '.join(role_holders(policy, r, holding)) or 'nobody'})"
                for r in policy.comms.reviewers
            )
            actor = first.author
            text = (
                f"{about}: v1 is drafted by {first.author} at {local(policy, first.at)} and ready for review "
                f"by {reviewers or 'nobody'}."
            )
        else:
            role = APPROVALS[approval.kind][0]
            done = APPROVED[approval.kind].format(v=approval.version, at=local(policy, approval.at))
            actor, text = approval.by, f"{about}: {approval.by} ({title(role)}) {done}"
        notices.append(Notice([p for p in role_holders(policy, Role.BUSINESS_LEAD, holding) if p != actor], text, key))
    return notices


def has_news(m: CommsMessage) -> bool:
    """Whether `news` has anything to tell, without writing it: cheap enough for every activation."""
    return any(True for _ in _untold(m))


def _untold(m: CommsMessage) -> Iterator[tuple[str, Approval | None]]:
    """The keys of the news not told yet, in order, each with its approval (None: the draft is ready)."""
    if m.versions and m.drafted_by and "lead:drafted" not in m.told_business_lead:
        yield "lead:drafted", None
    for a in m.approvals:
        key = f"lead:approved:{a.kind}:v{a.version}"
        if key not in m.told_business_lead:
            yield key, a


# --- the Customer Liaison ----------------------------------------------------------------------------


def liaison_alert(policy: Policy, facts: IncidentFacts, m: CommsMessage, about: str) -> Notice:
    """Seed 004: once reviews are complete, the Customer Liaison is asked to rejoin the call, with its link."""
    call = facts.conference_url or policy.response.conference_bridge_url
    return Notice(
        role_holders(policy, Role.CUSTOMER_LIAISON, facts.roles),
        f"{about}: reviews are complete; a message will soon be pending for distribution. Please rejoin the "
        f"business incident call{f' ({call})' if call else ''} and check v{version_of(m)} for technical accuracy.",
        f"liaison:coming:v{version_of(m)}",
    )


def liaison_ready(policy: Policy, holding: RoleHolders, m: CommsMessage, about: str) -> Notice:
    """Seed 004: once approved, the Customer Liaison tells the Incident Commander it needs approval to send."""
    return Notice(
        role_holders(policy, Role.CUSTOMER_LIAISON, holding),
        f"{about}: v{version_of(m)} is approved and ready. Please tell the Incident Commander it needs their "
        "approval to send.",
        f"liaison:ready:v{version_of(m)}",
    )
