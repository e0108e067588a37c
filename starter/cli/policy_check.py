"""`incidentctl policy check`: what a policy points at that the process would not find at 3 a.m.

`load_policy` already refuses unknown keys, bad values and unknown person ids. This goes one step
further and reports dangling references: a role the process uses that nobody holds, a person reached
through a channel they have no contact for, an audience with no recipients, a service with no owner,
a decision nobody may take. Each problem names the field to fix. It also renders every statement template
the message loop will draft from, with sample values: a syntax error or an unknown placeholder is named by
its file and line.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from activities.statements import StatementActivities
from client.decide import incident_decision
from workflows.contracts.people import CONTACT_FIELD
from workflows.contracts.policy import DIRECT, Policy
from workflows.contracts.roles import SCHEDULE, RoleHolders, expand, role_holders, schedules_named
from workflows.contracts.trust.permissions import DEFAULT_PERMISSIONS
from workflows.contracts.vocabulary import Audience, Channel, Role
from workflows.incident.model import (
    ApproveStatement,
    PlanUpdated,
    PublishPostmortem,
    ReviewHeld,
    SendResolution,
    TriggerBusinessIncident,
    WithholdStatement,
)
from workflows.oncall.rotation import first_gap, zone


@dataclass(frozen=True)
class Problem:
    path: str  # the field to fix, e.g. "escalation.tiers[0].channels"
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


def check_policy(policy: Policy) -> list[Problem]:
    """Every dangling reference in the policy, in the order of the file's sections."""
    return [
        *_roles_the_process_uses(policy),
        *_who_is_reached_and_how(policy),
        *_services(policy),
        *_audiences(policy),
        *_decisions(policy),
        *_slack_users(policy),
        *_statement_templates(policy),
        *_schedule_gaps(policy, datetime.now(UTC)),
    ]


def uses_message_loop(policy: Policy) -> bool:
    """Seed 004's loop runs when a severity starts it, or when somebody is there to lead it."""
    return bool(policy.comms.auto_trigger_severities or role_holders(policy, Role.BUSINESS_LEAD, RoleHolders()))


def _uses_breach_escalation(policy: Policy) -> bool:
    return any(s.rto_minutes or s.rpo_minutes for s in policy.services.values())


# --- roles -------------------------------------------------------------------------------------


def _roles_the_process_uses(policy: Policy) -> list[Problem]:
    used: list[tuple[str, Role]] = [("roles.incident_commander", Role.INCIDENT_COMMANDER)]
    used += [(f"response.tag_roles[{i}]", role) for i, role in enumerate(policy.response.tag_roles)]
    used += [(f"response.call_roles[{i}]", role) for i, role in enumerate(policy.response.call_roles)]
    used += [
        ("triage.global_owner_role", policy.triage.global_owner_role),
        ("triage.local_owner_role", policy.triage.local_owner_role),
    ]
    if policy.post_incident.notify_pmo:
        used.append(("post_incident.notify_pmo", Role.PMO))
    if uses_message_loop(policy):
        used += [(f"comms (message loop: {_loop_role_use(role)})", role) for role in _loop_roles(policy)]
        used += [(f"comms.reviewers[{i}]", role) for i, role in enumerate(policy.comms.reviewers)]
    problems = [
        Problem(
            path,
            f"role {role.value} is held by nobody{_unless_services(policy, role)} (add a person to roles.{role.value})",
        )
        for path, role in used
        if not _held(policy, role)
    ]
    if uses_message_loop(policy):  # it reads its roles' holders as people, without an on-call lookup
        loop = dict.fromkeys([*_loop_roles(policy), *policy.comms.reviewers])
        problems += [
            Problem(f"roles.{role.value}", f"the message loop cannot page {holder}: name people for this role")
            for role in loop
            for holder in policy.roles.get(role, [])
            if holder.startswith(SCHEDULE)
        ]
    return problems


def _loop_roles(policy: Policy) -> list[Role]:
    comms = policy.comms
    roles = [Role.BUSINESS_LEAD, Role.TECHNICAL_SLT, Role.CUSTOMER_LIAISON]
    if comms.require_elt_approval:
        roles.append(Role.ELT_APPROVER)
    external = any(a is not Audience.INTERNAL for a in comms.audience_order)
    if comms.communications_lead_approves_external and external:
        roles.append(Role.COMMUNICATIONS_LEAD)
    return [*roles, Role.INCIDENT_COMMANDER, Role.DISTRIBUTOR]


def _loop_role_use(role: Role) -> str:
    return {
        Role.BUSINESS_LEAD: "sets the pace and is told when an estimate runs out",
        Role.TECHNICAL_SLT: "drafts every message",
        Role.CUSTOMER_LIAISON: "checks technical accuracy and tells the IC a message is ready",
        Role.ELT_APPROVER: "authorizes release, comms.require_elt_approval",
        Role.COMMUNICATIONS_LEAD: "approves external messages, comms.communications_lead_approves_external",
        Role.INCIDENT_COMMANDER: "approves sending",
        Role.DISTRIBUTOR: "confirms each message reached its audience",
    }[role]


def _held(policy: Policy, role: Role) -> bool:
    """A role is held when the policy names a holder; the services can stand in for two of them, the owners by
    scope for the Incident Commander (triage.owner_by_scope)."""
    if policy.roles.get(role):  # people, or a schedule: whoever is on call
        return True
    if role is Role.INCIDENT_COMMANDER and policy.triage.owner_by_scope:  # the owner by scope commands
        return _held(policy, policy.triage.global_owner_role) and _held(policy, policy.triage.local_owner_role)
    services = policy.services.values()
    if role is Role.RESPONSIBLE_DEVELOPER:
        return bool(services) and all(s.owner for s in services)
    if role is Role.ACCOUNT_MANAGER:
        return bool(services) and all(s.account_manager for s in services)
    return False


def _unless_services(policy: Policy, role: Role) -> str:
    field = {Role.RESPONSIBLE_DEVELOPER: "owner", Role.ACCOUNT_MANAGER: "account_manager"}.get(role)
    if field is None:
        return ""
    missing = sorted(name for name, s in policy.services.items() if not getattr(s, field))
    return f" and services {', '.join(missing)} name no {field}" if missing else " and no service names one"


# --- people and their contacts -----------------------------------------------------------------


def _who_is_reached_and_how(policy: Policy) -> list[Problem]:
    problems: list[Problem] = []
    for i, tier in enumerate(policy.escalation.tiers):
        problems += _reached_through(policy, f"escalation.tiers[{i}].notify", tier.notify, tier.channels)
    if policy.business_hours.out_of_hours_notify:
        hours = policy.business_hours
        problems += _reached_through(
            policy, "business_hours.out_of_hours_notify", hours.out_of_hours_notify, hours.out_of_hours_channels
        )
    if _uses_breach_escalation(policy):
        response = policy.response
        problems += _reached_through(policy, "response.breach_notify", response.breach_notify, response.breach_channels)
    # Steps whose channels the process fixes: the person needs at least one of them.
    chats = list(policy.response.chats)
    fixed: list[tuple[str, list[Role], list[Channel]]] = [
        ("response.tag_roles", policy.response.tag_roles, chats),
        ("response.call_roles", policy.response.call_roles, [Channel.PAGE, *chats]),
        ("roles.incident_commander", [Role.INCIDENT_COMMANDER], chats),
    ]
    if policy.post_incident.notify_pmo:
        fixed.append(("post_incident.notify_pmo", [Role.PMO], [*chats, Channel.EMAIL]))
    if uses_message_loop(policy):
        fixed.append(("comms", [*_loop_roles(policy), *policy.comms.reviewers], chats))
    for where, roles, channels in fixed:
        problems += _reachable_by_any(policy, where, roles, channels)
    problems += _roles_named_in(policy, "cadence.leads", policy.cadence.leads)
    problems += _reachable_by_any(policy, "cadence.leads", [], chats, policy.cadence.leads)
    return problems


def _reached_through(policy: Policy, path: str, targets: list[str], channels: list[Channel]) -> list[Problem]:
    problems = _roles_named_in(policy, path, targets)
    people = _everyone(policy, targets)
    if not people and not problems:
        problems.append(Problem(path, "reaches nobody"))
    paged_directly = Channel.PAGE in channels and policy.paging_provider == DIRECT
    return (
        problems
        + [
            Problem(
                f"people.{person}.{CONTACT_FIELD[channel]}",
                f"{person} is reached by {channel.value} ({path}) but has no {CONTACT_FIELD[channel]}",
            )
            for person in people
            for channel in channels
            if not (channel is Channel.PAGE and paged_directly) and not policy.people[person].contact(channel)
        ]
        + [problem for person in people if paged_directly for problem in _notification_rules(policy, person, path)]
    )


def _notification_rules(policy: Policy, person_id: str, path: str) -> list[Problem]:
    """Paged directly: each method of the person's rules (or the policy's default) needs its address."""
    person = policy.people[person_id]
    own = person.notification_rules is not None
    where = f"people.{person_id}.notification_rules" if own else "notification_rules"
    rules = policy.rules_for(person)
    if not rules.high and not rules.low:
        return [Problem(where, f"{person_id} is paged directly ({path}) but has no notification rules")]
    return [
        Problem(
            f"{where}.{urgency}[{i}].channel",
            f'{person_id} is paged by {step.channel.value} ({path}, paging_provider = "direct") but has no '
            f"{CONTACT_FIELD[step.channel]}",
        )
        for urgency, steps in (("high", rules.high), ("low", rules.low))
        for i, step in enumerate(steps)
        if not person.contact(step.channel)
    ]


def _roles_named_in(policy: Policy, path: str, targets: list[str]) -> list[Problem]:
    """`role:<role>` entries of a list of people that nobody holds."""
    return [
        Problem(f"{path}[{i}]", f"{target} is held by nobody (add a person to roles.{target[5:]})")
        for i, target in enumerate(targets)
        if target.startswith("role:") and not _held(policy, Role(target[5:]))
    ]


def _reachable_by_any(
    policy: Policy, path: str, roles: list[Role], channels: list[Channel], targets: list[str] | None = None
) -> list[Problem]:
    people = _everyone(policy, targets if targets is not None else [f"role:{r.value}" for r in dict.fromkeys(roles)])
    fields = " or ".join(CONTACT_FIELD[c] for c in channels)
    return [
        Problem(
            f"people.{person}.{CONTACT_FIELD[channels[-1]]}",
            f"{person} is reached by {' or '.join(c.value for c in channels)} ({path}) but has no {fields}",
        )
        for person in people
        if not any(policy.address(person, c) for c in channels)
    ]


def _everyone(policy: Policy, targets: list[str]) -> list[str]:
    """Everyone the targets can reach: a schedule reaches each of its members in turn."""
    members = [m for name in schedules_named(policy, targets) for m in policy.schedules[name].members()]
    return list(dict.fromkeys([*expand(policy, targets, RoleHolders()), *members]))


# --- services, audiences, decisions ------------------------------------------------------------


def _services(policy: Policy) -> list[Problem]:
    return [
        Problem(
            f"services.{name}.owner", "no owner: nobody is the responsible developer to tag and ask for an estimate"
        )
        for name, service in policy.services.items()
        if not service.owner
    ]


def _audiences(policy: Policy) -> list[Problem]:
    if not uses_message_loop(policy):
        return []
    recipients = policy.comms.recipients
    problems: list[Problem] = []
    has = {
        Audience.INTERNAL: (
            bool(recipients.internal_slack_channel or recipients.internal_email),
            "internal_slack_channel or internal_email",
        ),
        Audience.STRATEGIC: (bool(recipients.strategic_customers), "strategic_customers"),
        Audience.ALL_CUSTOMERS: (
            bool(recipients.statuspage or recipients.customer_mailing_list),
            "statuspage or customer_mailing_list",
        ),
    }
    for i, audience in enumerate(policy.comms.audience_order):
        found, fields = has[audience]
        if not found:
            problems.append(
                Problem(
                    f"comms.audience_order[{i}]", f"{audience.value} has no recipients (set comms.recipients.{fields})"
                )
            )
    for i, customer in enumerate(recipients.strategic_customers):
        if not customer.contacts:
            problems.append(
                Problem(
                    f"comms.recipients.strategic_customers[{i}].contacts", f"{customer.name} has no contact to write to"
                )
            )
    return problems


def _decisions(policy: Policy) -> list[Problem]:
    """A decision the process waits for that no role in the policy may take: it would wait forever."""
    post = policy.post_incident
    not_needed = {
        incident_decision(ReviewHeld): not post.require_review,
        incident_decision(PublishPostmortem): not post.require_published_postmortem,
        incident_decision(TriggerBusinessIncident): not uses_message_loop(policy),
        # without seed 000's gate every statement leaves at once: nobody approves or withholds one
        incident_decision(ApproveStatement): not policy.comms.communications_lead_approves_external,
        incident_decision(WithholdStatement): not policy.comms.communications_lead_approves_external,
        incident_decision(SendResolution): not policy.comms.communications_lead_sends_resolution,
        incident_decision(PlanUpdated): not post.require_plan_update,
    }
    problems = []
    for decision in DEFAULT_PERMISSIONS:
        allowed = policy.allowed_roles(decision)
        if not_needed.get(decision) or not allowed or any(_held(policy, role) for role in allowed):
            continue
        where = "" if decision in policy.permissions else " (the default)"
        problems.append(
            Problem(
                f"permissions.{decision}",
                f"only {', '.join(r.value for r in allowed)}{where} may {decision.replace('_', ' ')}"
                ", and nobody holds any of them",
            )
        )
    return problems


def _slack_users(policy: Policy) -> list[Problem]:
    return [
        Problem(f"slack_users.{slack_id}", f"unknown person {person!r}")
        for slack_id, person in policy.slack_users.items()
        if person not in policy.people
    ]


# --- statement templates -------------------------------------------------------------------------


def _statement_templates(policy: Policy) -> list[Problem]:
    """Each template the message loop drafts from (every comms phase x audience), rendered with samples."""
    comms = policy.comms
    if comms.templates_dir and not Path(comms.templates_dir).is_dir():
        return [Problem("comms.templates_dir", f"{comms.templates_dir} is not a directory")]
    if not uses_message_loop(policy):
        return []
    used = [(phase, audience) for phase in comms.phases for audience in comms.audience_order]
    return [
        Problem(f"{_shown(p.file)}:{p.line}" if p.line else _shown(p.file), p.message)
        for p in StatementActivities().check(comms.templates_dir, policy.organisation, used)
    ]


def _shown(file: Path) -> str:
    """A template's path as a person finds it: relative to where they are, when it is below."""
    try:
        return str(file.relative_to(Path.cwd()))
    except ValueError:
        return str(file)


# --- schedules ---------------------------------------------------------------------------------


def _schedule_gaps(policy: Policy, now: datetime) -> list[Problem]:
    """A schedule with times nobody is on call (within eight weeks), from its first such time."""
    problems = []
    for name, schedule in policy.schedules.items():
        gap = first_gap(schedule, now)
        if gap is not None:
            local = gap.astimezone(zone(schedule.timezone))
            problems.append(
                Problem(
                    f"schedules.{name}",
                    f"nobody is on call from {gap:%Y-%m-%d %H:%M} UTC ({local:%a %Y-%m-%d %H:%M} {schedule.timezone}); "
                    "add a layer or widen the restrictions",
                )
            )
    return problems
