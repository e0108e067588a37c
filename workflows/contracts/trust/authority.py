"""Authorization in the policy: who may give which role, who may open a window over paging (a maintenance
window, an on-call override) and for how long. Plain functions that raise Refusal with the line a person sees;
the incident's rules call `check_assignment`, the on-call client `check_window` before any way in sends one.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from workflows.contracts.policy import Policy, Window
from workflows.contracts.refusal import Refusal
from workflows.contracts.roles import RoleHolders, holds_role
from workflows.contracts.vocabulary import Role

# The decisions that approve what others did or want: whoever may take one holds an approver role.
APPROVALS = ("approve_statement", "withhold_statement", "approve_channel", "decline_channel")
# The message loop's approvers (seed 004): the reviewers, the ELT Approver, the Incident Commander who approves
# sending, and the Communications Lead for anything external.
LOOP_APPROVERS = (Role.INCIDENT_COMMANDER, Role.COMMUNICATIONS_LEAD, Role.ELT_APPROVER)


def approver_roles(policy: Policy) -> set[Role]:
    roles = {role for decision in APPROVALS for role in policy.allowed_roles(decision)}
    return roles | set(LOOP_APPROVERS) | set(policy.comms.reviewers)


def _named(role: Role) -> str:
    return role.value.replace("_", " ")


def check_assignment(policy: Policy, holding: RoleHolders, actor: str, role: Role, person: str) -> None:
    """Refuse an approver role given to oneself, and a role given by someone the policy does not let give it."""
    if person == actor and role in approver_roles(policy):
        raise Refusal(
            f"{actor} cannot make themself {_named(role)}: it approves what others do; another holder of "
            f"{' or '.join(_named(r) for r in policy.assignments.get(role, [])) or 'an assigning role'} assigns it"
        )
    allowed = policy.assignments.get(role)
    if allowed and not any(holds_role(policy, actor, r, holding) for r in allowed):
        raise Refusal(
            f"only the {' or '.join(_named(r) for r in allowed)} can assign the {_named(role)} role "
            f"(assignments.{role.value}); {actor} holds none of those roles"
        )


def check_window(policy: Policy, rule: Window, what: str, by: str, start: datetime, end: datetime) -> None:
    """Refuse a maintenance window or an override by someone without a role for it, or longer than allowed."""
    key = "silences" if what == "maintenance window" else "overrides"
    if by not in policy.people:
        raise Refusal(f"{by!r} is not a person in the {policy.organisation} policy")
    if rule.who and not any(holds_role(policy, by, role, RoleHolders()) for role in rule.who):
        raise Refusal(
            f"only the {' or '.join(_named(r) for r in rule.who)} can open a {what} ({key}.who); "
            f"{by} holds none of those roles"
        )
    longest = timedelta(hours=rule.longest_hours)
    if end - start > longest:
        raise Refusal(
            f"a {what} of {_hours(end - start)} is longer than the policy allows ({key}.longest_hours = "
            f"{rule.longest_hours}); end it by {(start + longest).astimezone(UTC):%Y-%m-%d %H:%M} UTC"
        )


def _hours(span: timedelta) -> str:
    hours = span.total_seconds() / 3600
    return f"{hours:.0f} h" if hours < 48 else f"{hours / 24:.0f} days"
