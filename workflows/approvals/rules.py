"""Seed 000's two gates: words that leave the organisation, and Slack channels beyond the incident's own.

"All external communications should be approved by the Communications Lead": a status update, the
resolution message or a statement addressed to an external party (the service's client contacts, the
policy's billers, vendors and software providers) is held as a `HeldStatement` until she approves it,
in her wording, or withholds it. What people inside read goes out at once; only the external copy waits.

"No additional slack channels should exist ... unless approved by the Incident manager or
Communications lead": a request for one is recorded and the channel is made only once one of them
approves it.

Plain functions over the state, like rules.py (tests/workflows/test_approval_rules.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import TypeVar

from workflows.contracts.policy import CLIENT_CONTACTS, Policy
from workflows.contracts.refusal import Refusal, Rule
from workflows.contracts.vocabulary import Role, Status
from workflows.incident.derive import holds
from workflows.incident.model import (
    ApproveChannel,
    ApproveStatement,
    ChannelRequest,
    DeclineChannel,
    DraftStatement,
    HeldStatement,
    IncidentState,
    RequestChannel,
    WithholdStatement,
)

Item = TypeVar("Item")
Gated = TypeVar("Gated", HeldStatement, ChannelRequest)

# --- external words ------------------------------------------------------------------------------


def parties_known(s: IncidentState, policy: Policy) -> list[str]:
    """The external parties this incident can address: its service's client contacts and the policy's."""
    service = policy.services.get(s.service)
    known = [CLIENT_CONTACTS] if service and service.client_contacts else []
    return known + list(policy.comms.external_parties)


def _addresses_of(s: IncidentState, policy: Policy, party: str) -> list[str]:
    """One party's e-mail addresses; an unknown party has none."""
    if party == CLIENT_CONTACTS:
        service = policy.services.get(s.service)
        return service.client_contacts if service else []
    return policy.comms.external_parties.get(party, [])


def recipients(s: IncidentState, policy: Policy, parties: list[str]) -> list[str]:
    """The e-mail addresses of these parties, without repeats; an unknown party has none."""
    return _without_repeats(_addresses_of(s, policy, party) for party in parties)


def _without_repeats(found: Iterable[list[str]]) -> list[str]:
    addresses: list[str] = []
    for each in found:
        addresses += [a for a in each if a not in addresses]
    return addresses


def hold(
    s: IncidentState, policy: Policy, about: str, subject: str, text: str, parties: list[str], by: str, now: datetime
) -> HeldStatement | None:
    """Words for these parties, held for the Communications Lead; None when nobody outside would get them.

    Approved at once where the policy does not ask for her approval, or when she wrote them herself.
    """
    by_party = {party: _addresses_of(s, policy, party) for party in parties}
    addresses = _without_repeats(by_party[party] for party in parties)
    if not addresses:
        return None
    statement = HeldStatement(
        statement_id=f"S{len(s.statements) + 1}",
        about=about,
        subject=subject,
        text=text,
        parties=[p for p in parties if by_party[p]],
        recipients=addresses,
        drafted_by=by,
        drafted_at=now,
    )
    if not policy.comms.communications_lead_approves_external:
        statement.approved, statement.decided_by, statement.decided_at = True, "policy", now
    elif holds(s, policy, by, Role.COMMUNICATIONS_LEAD):
        statement.approved, statement.decided_by, statement.decided_at = True, by, now
    s.statements.append(statement)
    return statement


def awaiting_approval(s: IncidentState) -> list[HeldStatement]:
    return [st for st in s.statements if st.approved is None]


def held_words(statement: HeldStatement) -> str:
    """How the timeline tells a statement's fate, with its words (seed 003: document everything)."""
    to = ", ".join(statement.parties)
    if statement.approved is None:
        return (
            f"{statement.about} {statement.statement_id} for {to} held for the Communications Lead's approval: "
            f"{statement.text}"
        )
    return f"{statement.about} {statement.statement_id} for {to} approved by {statement.decided_by}: {statement.text}"


def statement_by_id(s: IncidentState, statement_id: str) -> HeldStatement:
    return _by_id(s, s.statements, lambda st: st.statement_id, statement_id, "statement", "statements")


def request_by_id(s: IncidentState, request_id: str) -> ChannelRequest:
    return _by_id(s, s.channel_requests, lambda r: r.request_id, request_id, "channel request", "requests")


def _by_id(
    s: IncidentState, items: Sequence[Item], id_of: Callable[[Item], str], wanted: str, what: str, listed: str
) -> Item:
    """The item whose id is `wanted` (any case); refused naming the ids there are."""
    found = next((item for item in items if id_of(item) == wanted.upper()), None)
    if found is None:
        known = ", ".join(id_of(item) for item in items) or "none yet"
        raise Refusal(f"no {what} {wanted} on {s.incident_id} ({listed}: {known})")
    return found


def _undecided(item: Gated, name: str) -> Gated:
    """The statement or channel request, still waiting for a decision."""
    if item.approved is not None:
        raise Refusal(f"{name} was already {item.fate} by {item.decided_by}")
    return item


def _statement(s: IncidentState, statement_id: str) -> HeldStatement:
    """The statement, still waiting for a decision."""
    statement = statement_by_id(s, statement_id)
    return _undecided(statement, f"statement {statement.statement_id}")


def _check_draft(s: IncidentState, d: DraftStatement, policy: Policy) -> None:
    known = parties_known(s, policy)
    unknown = [p for p in d.parties if p not in known]
    if unknown:
        raise Refusal(
            f"no external party {', '.join(map(repr, unknown))} for {s.incident_id}; "
            f"known: {', '.join(known) or 'none (comms.external_parties in the policy)'}"
        )


def _draft(s: IncidentState, d: DraftStatement, policy: Policy, now: datetime) -> str:
    statement = hold(s, policy, "statement", d.subject, d.text, d.parties, d.actor, now)
    assert statement is not None  # _check_draft: every party has addresses
    return held_words(statement)


def _check_decide_statement(s: IncidentState, d: ApproveStatement | WithholdStatement, policy: Policy) -> None:
    _statement(s, d.statement_id)


def _approve(s: IncidentState, d: ApproveStatement, policy: Policy, now: datetime) -> str:
    statement = _statement(s, d.statement_id)
    edited = bool(d.text.strip()) and d.text.strip() != statement.text
    if edited:
        statement.text = d.text.strip()
    statement.approved, statement.decided_by, statement.decided_at = True, d.actor, now
    return held_words(statement) + (" (reworded by the Communications Lead)" if edited else "")


def _withhold(s: IncidentState, d: WithholdStatement, policy: Policy, now: datetime) -> str:
    statement = _statement(s, d.statement_id)
    statement.approved, statement.decided_by, statement.decided_at = False, d.actor, now
    statement.reason = d.reason
    return f"{statement.about} {statement.statement_id} withheld by {d.actor}: {d.reason}"


# --- extra Slack channels ------------------------------------------------------------------------

_CHANNEL_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


def _request(s: IncidentState, request_id: str) -> ChannelRequest:
    """The channel request, still waiting for a decision."""
    request = request_by_id(s, request_id)
    return _undecided(request, f"channel request {request.request_id}")


def _check_request_channel(s: IncidentState, d: RequestChannel, policy: Policy) -> None:
    if s.status is not Status.OPEN:
        raise Refusal(f"{s.incident_id} is {s.status.value}: its communication is over")
    if not _CHANNEL_NAME.match(d.name):
        raise Refusal(f"{d.name!r} is not a Slack channel name: lower-case letters, digits, - and _")
    if any(r.name == d.name and r.approved is not False for r in s.channel_requests):
        raise Refusal(f"a channel {d.name!r} is already requested on {s.incident_id}")


def _request_channel(s: IncidentState, d: RequestChannel, policy: Policy, now: datetime) -> str:
    request = ChannelRequest(
        request_id=f"C{len(s.channel_requests) + 1}",
        name=d.name,
        reason=d.reason,
        requested_by=d.actor,
        requested_at=now,
    )
    s.channel_requests.append(request)
    return (
        f"{d.actor} asks for an extra Slack channel {d.name!r} ({request.request_id}): {d.reason}; "
        "the Incident Commander or the Communications Lead decides"
    )


def _check_decide_channel(s: IncidentState, d: ApproveChannel | DeclineChannel, policy: Policy) -> None:
    _request(s, d.request_id)


def _approve_channel(s: IncidentState, d: ApproveChannel, policy: Policy, now: datetime) -> str:
    request = _request(s, d.request_id)
    request.approved, request.decided_by = True, d.actor
    return f"extra channel {request.name!r} ({request.request_id}) approved by {d.actor}"


def _decline_channel(s: IncidentState, d: DeclineChannel, policy: Policy, now: datetime) -> str:
    request = _request(s, d.request_id)
    request.approved, request.decided_by, request.reason_declined = False, d.actor, d.reason
    return f"extra channel {request.name!r} ({request.request_id}) declined by {d.actor}: {d.reason}"


APPROVAL_RULES: dict[type, Rule] = {
    DraftStatement: Rule(_check_draft, _draft),
    ApproveStatement: Rule(_check_decide_statement, _approve),
    WithholdStatement: Rule(_check_decide_statement, _withhold),
    RequestChannel: Rule(_check_request_channel, _request_channel),
    ApproveChannel: Rule(_check_decide_channel, _approve_channel),
    DeclineChannel: Rule(_check_decide_channel, _decline_channel),
}
