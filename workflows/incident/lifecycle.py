"""What alerts and passing time change in an incident: its facts, triage, confirmation, recurrence.

Plain functions over the state and the policy (tests/workflows/test_rules.py), like the decisions'
rules. Each returns the words for the timeline; the workflow records them and its duties act.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from workflows.contracts.clock import local
from workflows.contracts.policy import Policy
from workflows.contracts.roles import SCHEDULE, role_holders
from workflows.contracts.vocabulary import (
    AlertStatus,
    CriticalCriterion,
    IncidentKind,
    Phase,
    Role,
    Severity,
    Status,
    Unassessed,
)
from workflows.incident.derive import cadence_due, scope_owner
from workflows.incident.model import CHECKLIST, AlertEvent, AlertSeen, IncidentState

# Seed 004: a business incident begins during Investigation or Identification.
BUSINESS_INCIDENT_PHASES = {Phase.INVESTIGATION, Phase.IDENTIFICATION}


# An alert that goes from firing to resolved or back again within this is flapping: its changes are counted,
# not each written on the timeline or told to people, until it has stayed as it is this long.
FLAP_QUIET = timedelta(minutes=15)
# The alert lines the timeline keeps: older ones are counted (IncidentState.timeline_dropped), so that what
# the state carries into continue-as-new stays bounded however long an alert keeps changing.
ALERT_ENTRIES_KEPT = 200


@dataclass
class AlertOutcome:
    notes: list[tuple[str, str]] = field(default_factory=list)  # (timeline kind, text)
    reopened: bool = False
    all_resolved: bool = False  # the last firing alert of an open incident resolved
    raised: str = ""  # a later alert made the confirmed incident graver (paged afresh): how
    flapping: str = ""  # the alert that began to flap (one notice per quiet period)
    recurred: bool = False  # fired again on a resolved incident the policy does not reopen: the IC decides


def record_alert(s: IncidentState, policy: Policy, event: AlertEvent, now: datetime) -> AlertOutcome:
    """An alert of this incident's group: the first one names the incident; later ones update it, and a
    graver one raises it."""
    out = AlertOutcome()
    first = s.alert_count == 0
    s.alert_count += 1
    if first:
        out.notes.append(("opened", take_facts_from(s, policy, event, now)))
    elif event.status is AlertStatus.FIRING and s.status is Status.OPEN:
        raised = raise_by_alert(s, policy, event)
        if raised:
            out.notes.append(("triage", raised))
            out.raised = raised if s.confirmed else ""
    key = event.fingerprint or event.dedup_key
    seen = s.alerts.get(key)
    if seen is None:
        s.alerts[key] = AlertSeen(status=event.status, title=event.title, last_at=now)
        out.notes.append(("alert", f"{event.status.value} alert from {event.source}: {event.title}"))
    else:
        if seen.status is not event.status:
            out.flapping = _changed(seen, event, now, out)
        seen.count += 1
        seen.status, seen.last_at = event.status, now
    if event.status is AlertStatus.FIRING and s.status is Status.RESOLVED and not first:
        if policy.response.reopen_on_recurrence:
            reopen(s, policy, now)
            out.reopened = True
            out.notes.append(
                ("reopen", f"The alert fires again while {s.incident_id} is resolved: reopened and paged afresh")
            )
        elif s.recurrences_told < s.resolutions:
            s.recurrences_told = s.resolutions
            out.recurred = True
            out.notes.append(("alert", "An alert fires again on a resolved incident: the Incident Commander decides"))
    firing = any(a.status is AlertStatus.FIRING for a in s.alerts.values())
    out.all_resolved = event.status is AlertStatus.RESOLVED and not firing and s.status is Status.OPEN
    return out


def _changed(seen: AlertSeen, event: AlertEvent, now: datetime, out: AlertOutcome) -> str:
    """An alert went from firing to resolved or back. Within FLAP_QUIET of its last change it flaps: the first
    flap of a period is written once; the rest only counted. The title of an alert that began to flap."""
    flaps = seen.changed_at is not None and now - seen.changed_at < FLAP_QUIET
    seen.changed_at = now
    if not flaps:
        seen.flapping = False
        out.notes.append(("alert", f"alert {event.status.value} again: {event.title}"))
        return ""
    if seen.flapping:
        return ""
    seen.flapping = True
    quiet = FLAP_QUIET // timedelta(minutes=1)
    out.notes.append(("alert", f"alert flapping: {event.title}; its changes are counted until {quiet} min quiet"))
    return event.title


def bound_timeline(s: IncidentState) -> None:
    """Keep the newest ALERT_ENTRIES_KEPT alert lines; count the older ones left out."""
    alert_lines = [i for i, e in enumerate(s.timeline) if e.kind == "alert"]
    excess = len(alert_lines) - ALERT_ENTRIES_KEPT
    if excess > 0:
        dropped = set(alert_lines[:excess])
        s.timeline = [e for i, e in enumerate(s.timeline) if i not in dropped]
        s.timeline_dropped += excess


def alert_severity(policy: Policy, event: AlertEvent) -> tuple[Severity | None, list[CriticalCriterion]]:
    """The severity an alert asks for (its own, or the policy's label rules) and the critical criteria it
    carries (seed 002); a critical criterion makes it a SEV1."""
    triage = policy.triage
    criteria = list(event.criteria)
    label = event.labels.get(triage.criterion_label, "")
    if label in CriticalCriterion.__members__.values() and CriticalCriterion(label) not in criteria:
        criteria.append(CriticalCriterion(label))
    severity = event.severity
    for rule in triage.severity_rules:
        if severity is None and event.labels.get(rule.label) == rule.value:
            severity = rule.severity
    return (Severity.SEV1 if criteria else severity), criteria


def take_facts_from(s: IncidentState, policy: Policy, event: AlertEvent, now: datetime) -> str:
    """The first alert gives the incident its title, service, provisional severity and deadline to assess."""
    s.title, s.source, s.dedup_key = event.title, event.source, event.dedup_key
    s.service, s.description = event.service or event.labels.get("service", ""), event.description
    severity, s.criteria = alert_severity(policy, event)
    s.severity = severity or policy.triage.default_severity
    s.scope = policy.triage.default_scope
    s.assessment_due = now + timedelta(minutes=policy.triage.assessment_minutes)
    criteria = s.criteria
    return (
        f"Reported by {event.labels.get('reported_by') or event.source}: {event.title} "
        f"(provisional {s.severity.value}{', critical: ' + ', '.join(criteria) if criteria else ''})"
    )


def raise_by_alert(s: IncidentState, policy: Policy, event: AlertEvent) -> str:
    """A later alert of the group graver than the incident (a warning that became critical, a critical
    criterion) raises it, as an assessor's classify would: an unconfirmed one may now be confirmed at once, a
    confirmed one is paged afresh. An alert never lowers an incident. What changed, or "" when nothing did."""
    severity, criteria = alert_severity(policy, event)
    new_criteria = [c for c in criteria if c not in s.criteria]
    graver = severity is not None and severity < s.severity  # "SEV1" < "SEV2"
    if not graver and not new_criteria:
        return ""
    before = s.severity
    s.criteria = [*s.criteria, *new_criteria]
    if graver and severity is not None:
        s.severity = severity
    text = f"raised to {s.severity.value} by the alert {event.title!r}" + (
        f" (critical: {', '.join(new_criteria)})" if new_criteria else ""
    )
    if s.confirmed and s.severity < before:
        text += raise_severity(s, policy, before)
    return text


def raise_severity(s: IncidentState, policy: Policy, before: Severity) -> str:
    """A confirmed incident raised to a graver severity is paged afresh and, where the policy says, becomes
    a business incident: the people on call acknowledged a smaller incident than this one."""
    s.acknowledged_by = s.acknowledged_at = None
    s.escalation_round += 1
    text = f"; raised from {before.value}: paged afresh"
    if (
        s.severity in policy.comms.auto_trigger_severities
        and not s.business_incident
        and s.phase in BUSINESS_INCIDENT_PHASES
    ):
        s.business_incident, s.business_incident_by = True, "policy"
        s.business_incident_reason = f"every {s.severity.value} is a business incident"
        text += f"; {s.business_incident_reason}"
    return text


def released_from_window(s: IncidentState, policy: Policy, now: datetime) -> None:
    """An alert a maintenance window held counts as arriving when the window ends: its assessment is due
    from then, not from when it first fired inside the window."""
    s.assessment_due = now + timedelta(minutes=policy.triage.assessment_minutes)


def confirmed_at_once(s: IncidentState, policy: Policy) -> bool:
    """Seed 002's critical criteria, and the severities the policy confirms without a person's assessment."""
    return s.kind is None and (s.severity in policy.response.auto_confirm_severities or bool(s.criteria))


def alerts_cleared(s: IncidentState) -> bool:
    return bool(s.alerts) and all(a.status is AlertStatus.RESOLVED for a in s.alerts.values())


def unassessed_in_time(s: IncidentState, policy: Policy, now: datetime) -> str:
    """Nobody assessed in time; the policy says what follows (triage.when_unassessed). confirm: an alert still
    firing is treated as an incident at its severity and paged, one that cleared by itself is a disturbance;
    disturbance: logged as one, nobody paged; remind: it waits another period for a person's decision."""
    minutes = policy.triage.assessment_minutes
    when = policy.triage.when_unassessed
    if when is Unassessed.REMIND:
        s.assessment_due = now + timedelta(minutes=minutes)
        s.assessment_reminders += 1
        return f"Not assessed within {minutes} min: a person decides; the assessors are reminded"
    if when is Unassessed.DISTURBANCE or alerts_cleared(s):
        s.kind = IncidentKind.DISTURBANCE
        why = "" if when is Unassessed.DISTURBANCE else " and every alert has cleared"
        return f"Not assessed within {minutes} min{why}: logged as a disturbance, nobody paged"
    s.kind = IncidentKind.INCIDENT
    return f"Not assessed within {minutes} min: treated as a {s.severity.value} incident and escalated"


def take_up_disturbance(s: IncidentState, policy: Policy, now: datetime) -> str:
    """Seed 001: a disturbance has an owner (the owner by scope) and a follow-up date."""
    owner = scope_owner(s, policy)
    if policy.triage.owner_by_scope and owner:
        s.assigned.setdefault(Role.INCIDENT_COMMANDER, owner)
    s.follow_up_due = now + timedelta(hours=policy.triage.disturbance_follow_up_hours)
    s.disturbances_taken_up += 1
    return f"a disturbance, owned by {owner or 'nobody'}; follow-up by {local(policy, s.follow_up_due)}"


def downgrade(s: IncidentState, policy: Policy, now: datetime) -> str:
    """Seed 001: a confirmed incident that is only a disturbance: its pages and clocks stop, its owner follows it up."""
    s.confirmed = False
    s.acknowledged_by = s.acknowledged_at = None
    s.progress_due = s.estimate_due = s.next_update_due = s.rto_due = None
    return "downgraded to " + take_up_disturbance(s, policy, now)


def confirm(s: IncidentState, policy: Policy, now: datetime) -> list[tuple[str, str]]:
    """Seed 000: confirmed, the incident is paged, gets its people and its clocks; seed 004: a business
    incident where the policy says so."""
    s.confirmed = True
    s.enter(Phase.INVESTIGATION)
    s.escalation_round += 1
    notes = [("roles", assign_first_holders(s, policy))]
    owner = scope_owner(s, policy) or "nobody"
    notes.append(
        (
            "confirmed",
            f"Confirmed as a {s.severity.value} ({s.severity.priority} priority) "
            f"{s.scope.value} incident; owner of the action plan: {owner}",
        )
    )
    s.progress_due = progress_window(policy, now)
    s.next_update_due, s.update_nudged = cadence_due(policy, s.severity, now), False
    service = policy.services.get(s.service)
    if service and service.rto_minutes:
        s.rto_due = s.opened_at + timedelta(minutes=service.rto_minutes)
    if s.severity in policy.comms.auto_trigger_severities and s.phase in BUSINESS_INCIDENT_PHASES:
        s.business_incident, s.business_incident_by = True, "policy"
        s.business_incident_reason = f"every {s.severity.value} is a business incident"
        notes.append(("business_incident", f"Business incident: {s.business_incident_reason}"))
    return notes


def assign_first_holders(s: IncidentState, policy: Policy) -> str:
    """The owner by scope as Incident Commander where the policy says so (seed 001); the service's developer and
    account manager, and the policy's first holder of the Incident Commander,
    Communications Lead and tagged roles, are assigned: a person listed first holds the role for the incident.
    A role whose first holder is a schedule stays with the schedule (roles.role_holders), so it follows the
    shifts: a reopen or a raised round pages whoever is on call then. The note names who holds each now."""
    service = policy.services.get(s.service)
    if service and service.owner:
        s.assigned.setdefault(Role.RESPONSIBLE_DEVELOPER, service.owner)
    if service and service.account_manager:
        s.assigned.setdefault(Role.ACCOUNT_MANAGER, service.account_manager)
    owner = scope_owner(s, policy)
    if policy.triage.owner_by_scope and owner:
        s.assigned.setdefault(Role.INCIDENT_COMMANDER, owner)
    roles = [Role.INCIDENT_COMMANDER, Role.COMMUNICATIONS_LEAD, Role.PROJECT_MANAGER, *policy.response.tag_roles]
    for role in roles:
        listed = policy.roles.get(role, [])
        if role not in s.assigned and listed and not listed[0].startswith(SCHEDULE):
            s.assigned[role] = listed[0]
    holding = {r: found[0] for r in dict.fromkeys([*s.assigned, *roles]) if (found := role_holders(policy, r, s.roles))}
    return "Assigned: " + ", ".join(f"{r.value} {p}" for r, p in holding.items())


def resolve_by_policy(s: IncidentState, policy: Policy, now: datetime) -> bool:
    """Every alert resolved: a severity the policy lets go resolves itself (never a SEV1)."""
    if not (s.confirmed and s.status is Status.OPEN and s.severity in policy.response.auto_resolve_severities):
        return False
    s.resolution = {
        "overview": "All alerts resolved.",
        "how_resolved": "The alerting condition cleared.",
        "prevention": "To be decided at the review.",
    }
    mark_resolved(s, "policy", now)
    return True


def progress_window(policy: Policy, now: datetime) -> datetime:
    """Seed 002: without progress in this window, a call is convened."""
    return now + timedelta(minutes=policy.response.progress_window_minutes)


def mark_resolved(s: IncidentState, by: str, now: datetime) -> None:
    s.status, s.resolved_at, s.resolved_by = Status.RESOLVED, now, by
    s.enter(Phase.RESOLUTION)
    s.progress_due = s.estimate_due = s.next_update_due = None
    s.resolutions += 1


def reopen(s: IncidentState, policy: Policy, now: datetime) -> None:
    """Open again, from any post-resolution step: paged afresh, every clock of an open incident restarted."""
    s.status, s.reopens = Status.OPEN, s.reopens + 1
    s.enter(Phase.INVESTIGATION)
    s.resolved_at = s.acknowledged_by = s.acknowledged_at = s.review_due = s.next_review_reminder = None
    s.escalation_round += 1
    s.rto_warned = s.rto_breached = False
    s.checklist = dict.fromkeys(CHECKLIST, False)
    s.progress_due = progress_window(policy, now)
    s.next_update_due, s.update_nudged = cadence_due(policy, s.severity, now), False
    service = policy.services.get(s.service)
    if service and service.rto_minutes:  # the service is down again: its recovery clock restarts
        s.rto_due = now + timedelta(minutes=service.rto_minutes)
