"""Who holds a role at a moment of an incident: the one answer the incident, its escalation ladder and its
message loop share. A role is held by the person the incident assigned it to and by the policy's holders of
it, a `schedule:<name>` holder being whoever is on call in that schedule now. Plain functions over the policy
and what the incident adds to it (RoleHolders).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from workflows.contracts.vocabulary import Role

if TYPE_CHECKING:
    from workflows.contracts.policy import Policy

ROLE = "role:"  # a target naming a role: whoever holds it
SCHEDULE = "schedule:"  # a target naming a schedule: whoever is on call in it when paged


class RoleHolders(BaseModel):
    """Who the incident assigned a role to (a person's decision, a hand-over, or the service's owner and account
    manager at confirmation) and who is on call in each schedule, as last looked up (at confirmation and at each
    new round of paging)."""

    assigned: dict[Role, str] = Field(default_factory=dict)
    on_call: dict[str, str] = Field(default_factory=dict)  # schedule name -> the person on call in it


def role_holders(policy: Policy, role: Role, holding: RoleHolders) -> list[str]:
    """The role's holders now: the person the incident assigned it to first, then the policy's holders,
    a "schedule:<name>" holder being whoever is on call in that schedule now."""
    listed = _people(policy.roles.get(role, []), holding.on_call)
    assigned = holding.assigned.get(role)
    return [assigned, *(p for p in listed if p != assigned)] if assigned else listed


def holds_role(policy: Policy, person: str, role: Role, holding: RoleHolders) -> bool:
    return person in role_holders(policy, role, holding)


def expand(policy: Policy, targets: list[str], holding: RoleHolders) -> list[str]:
    """Person ids for a list of person ids, "role:<role>" and "schedule:<name>" entries, without repeats.

    A role assigned on the incident (its responsible developer, a handed-over Incident Commander) is reached
    alone; an unassigned one reaches every holder the policy names, schedules as they are on call now.
    """
    people: list[str] = []
    for target in targets:
        if target.startswith(ROLE):
            role = Role(target.removeprefix(ROLE))
            assigned = holding.assigned.get(role)
            found = [assigned] if assigned else role_holders(policy, role, holding)
        else:
            found = _people([target], holding.on_call)
        people += [p for p in found if p not in people]
    return people


def _people(targets: list[str], on_call: dict[str, str]) -> list[str]:
    found = [on_call.get(t.removeprefix(SCHEDULE), "") if t.startswith(SCHEDULE) else t for t in targets]
    return [p for p in found if p]


def schedules_in_use(policy: Policy) -> list[str]:
    """The schedules an incident may page: named by a tier, a role's holders or a list of people."""
    targets = [t for tier in policy.escalation.tiers for t in tier.notify]
    targets += policy.business_hours.out_of_hours_notify + policy.cadence.leads + policy.response.breach_notify
    return schedules_named(policy, targets + [f"{ROLE}{role.value}" for role in policy.roles])


def schedules_named(policy: Policy, targets: list[str]) -> list[str]:
    """The schedules a list of targets names, directly or through the holders of a role it names."""
    entries = [
        h for t in targets for h in (policy.roles.get(Role(t.removeprefix(ROLE)), []) if t.startswith(ROLE) else [t])
    ]
    return list(dict.fromkeys(e.removeprefix(SCHEDULE) for e in entries if e.startswith(SCHEDULE)))
