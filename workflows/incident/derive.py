"""What an incident's state and its policy imply: who holds a role, what is due, who is waited on.

Plain functions, shared by the rules, the workflow's duties and its status line.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from workflows.contracts.clock import local
from workflows.contracts.policy import Policy
from workflows.contracts.roles import expand, holds_role, role_holders
from workflows.contracts.vocabulary import IncidentKind, Phase, Role, Scope, Severity, Status
from workflows.incident.model import CHECKLIST, IncidentState
from workflows.recovery.view import task_line


def holds(s: IncidentState, policy: Policy, person: str, role: Role) -> bool:
    """Whether `person` holds `role` on this incident now (roles.role_holders: assigned, listed, or on call)."""
    return holds_role(policy, person, role, s.roles)


def incident_commander(s: IncidentState, policy: Policy) -> str:
    return next(iter(role_holders(policy, Role.INCIDENT_COMMANDER, s.roles)), "")


def update_owner(s: IncidentState, policy: Policy) -> str:
    """Who owes the regular status update: the PM (seed 002), else the Communications Lead, else the IC."""
    return (
        s.assigned.get(Role.PROJECT_MANAGER)
        or s.assigned.get(Role.COMMUNICATIONS_LEAD)
        or incident_commander(s, policy)
    )


def scope_owner(s: IncidentState, policy: Policy) -> str:
    """Seed 001: the Technical Manager owns a global incident, the Customer Service Manager a local one."""
    triage = policy.triage
    role = triage.global_owner_role if s.scope is Scope.GLOBAL else triage.local_owner_role
    return next(iter(role_holders(policy, role, s.roles)), "")


def people_for(s: IncidentState, policy: Policy, roles: list[Role]) -> list[str]:
    return expand(policy, [f"role:{r.value}" for r in roles], s.roles)


def cadence_due(policy: Policy, severity: Severity, after: datetime) -> datetime | None:
    every = policy.cadence.every(severity)
    return after + every if every else None


def service_restored(s: IncidentState) -> bool:
    """Seed 004's Monitoring: a remediation shows success, so the recovery objective is met for now."""
    return s.status is not Status.OPEN or s.phase is Phase.MONITORING


def rto_warning_at(s: IncidentState, policy: Policy) -> datetime | None:
    """The RTO warning: at the policy's share (80 %) of the objective, counted back from its due time."""
    service = policy.services.get(s.service)
    if not (service and service.rto_minutes and s.rto_due):
        return None
    early = round(service.rto_minutes * 60 * (1 - policy.response.rto_warning_ratio))
    return s.rto_due - timedelta(seconds=early)


def documentation_missing(s: IncidentState, policy: Policy) -> list[str]:
    """Seed 001: the incident is complete only when its documentation is."""
    post = policy.post_incident
    required = {
        "project_log": post.project_log,
        "global_log": post.global_log,
        "pmo_notified": post.notify_pmo,
        "postmortem_drafted": True,
        "review_held": post.require_review,
        "plan_updated": post.require_plan_update,
        "postmortem_published": post.require_published_postmortem,
    }
    return [item for item in CHECKLIST if required[item] and not s.checklist.get(item)]


def resolution_unsent(s: IncidentState, policy: Policy) -> bool:
    """Seed 000: the resolution waits for the Communications Lead to send it."""
    return (
        s.status is Status.RESOLVED
        and policy.comms.communications_lead_sends_resolution
        and s.resolution_sent < s.resolutions
    )


def waiting_on(s: IncidentState, policy: Policy) -> list[str]:
    """Who owes what, for people and the Temporal UI."""
    waits: list[str] = []
    if s.kind is None and s.assessment_due and s.status is Status.OPEN:
        waits.append(f"initial assessment by {local(policy, s.assessment_due)}")
    if s.kind is IncidentKind.DISTURBANCE and s.status is Status.OPEN and s.follow_up_due:
        waits.append(
            f"follow-up of the disturbance by {scope_owner(s, policy) or 'nobody'} "
            f"by {local(policy, s.follow_up_due, with_date=True)}"
        )
    if s.status is Status.OPEN and s.confirmed:
        if not s.acknowledged_by:
            waits.append(
                f"acknowledgement (ladder exhausted at {local(policy, s.escalation_exhausted_at)}; "
                f"{incident_commander(s, policy)} told)"
                if s.escalation_exhausted_at
                else "acknowledgement (escalating)"
            )
        if s.estimate_due is None and Role.RESPONSIBLE_DEVELOPER in s.assigned:
            waits.append(f"estimate from {s.assigned[Role.RESPONSIBLE_DEVELOPER]}")
        if s.next_update_due:
            waits.append(f"status update from {update_owner(s, policy)} by {local(policy, s.next_update_due)}")
    waits += [
        f"whether and how to tell clients (evaluation point {e.number}, {e.point}) from {e.asked_of or 'nobody'}"
        for e in s.evaluations
        if e.tell is None and s.status is not Status.CLOSED
    ]
    if s.status is not Status.CLOSED:
        waits += [f"task {task_line(policy, t)}" for t in s.tasks if not t.done]
    lead = ", ".join(people_for(s, policy, [Role.COMMUNICATIONS_LEAD])) or "a Communications Lead (assign one)"
    waits += [
        f"approval of {st.about} {st.statement_id} for {', '.join(st.parties)} by {lead} "
        f"(held since {local(policy, st.drafted_at)})"
        for st in s.statements
        if st.approved is None
    ]
    waits += [
        f"decision on extra channel {r.name} ({r.request_id}) by the Incident Commander or Communications Lead"
        for r in s.channel_requests
        if r.approved is None and s.status is Status.OPEN
    ]
    if resolution_unsent(s, policy):
        lead = ", ".join(people_for(s, policy, [Role.COMMUNICATIONS_LEAD])) or "a Communications Lead (assign one)"
        waits.append(f"the resolution message from {lead} (incidentctl send-resolution {s.incident_id})")
    if s.status is Status.RESOLVED:
        missing = documentation_missing(s, policy)
        if missing:
            waits.append("documentation: " + ", ".join(missing))
    return waits
