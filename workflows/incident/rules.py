"""Who may decide what about an incident, in which state, and what the decision changes.

Plain functions over the incident's state and its policy: no Temporal in here, so every rule is
tested in milliseconds (tests/workflows/test_rules.py). `check` raises Refusal with a line a person
can act on; `apply` changes the state and returns what happened, in words, for the timeline.
The workflow calls `check` in its Update validators (and for signals), then `apply` in the handler;
its duties notice the change and act.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from workflows.approvals.rules import APPROVAL_RULES, awaiting_approval
from workflows.contracts.clock import local
from workflows.contracts.policy import Policy
from workflows.contracts.refusal import Refusal, Rule
from workflows.contracts.trust.authority import check_assignment
from workflows.contracts.vocabulary import (
    EXTERNAL_AUDIENCES,
    Audience,
    EvaluationPoint,
    IncidentKind,
    Phase,
    Role,
    Severity,
    Status,
)
from workflows.incident.derive import (
    cadence_due,
    documentation_missing,
    holds,
    incident_commander,
    resolution_unsent,
    scope_owner,
)
from workflows.incident.lifecycle import (
    BUSINESS_INCIDENT_PHASES,
    downgrade,
    mark_resolved,
    progress_window,
    raise_severity,
    reopen,
)
from workflows.incident.model import (
    Acknowledge,
    AssignRole,
    Classify,
    CloseIncident,
    Decision,
    Escalate,
    Estimate,
    EvaluateClients,
    Evaluation,
    Handover,
    IncidentState,
    PlanUpdated,
    ProgressNote,
    PublishPostmortem,
    Reopen,
    ReportDataLoss,
    Resolve,
    ReviewHeld,
    SendResolution,
    SetPhase,
    StatusUpdate,
    TriggerBusinessIncident,
)
from workflows.records.actions import ACTION_ITEM_RULES, follow_ups_waiting
from workflows.recovery.rules import RECOVERY_RULES

# Phase moves a person may make with set_phase. Resolution, Analysis, Publishing and closed have their
# own decisions (resolve, publish, close) because each needs more than a phase name.
PHASE_MOVES: dict[Phase, set[Phase]] = {
    Phase.INVESTIGATION: {Phase.IDENTIFICATION, Phase.MONITORING},
    Phase.IDENTIFICATION: {Phase.MONITORING},
    Phase.MONITORING: {Phase.IDENTIFICATION},  # the remediation did not hold
}


def check(s: IncidentState, policy: Policy, name: str, d: Decision) -> None:
    """Refuse a decision by a stranger, by someone without the role, on a closed incident, or out of turn."""
    if d.actor not in policy.people:
        raise Refusal(f"{d.actor!r} is not a person in the {policy.organisation} policy")
    allowed = policy.allowed_roles(name)
    if allowed and not any(holds(s, policy, d.actor, role) for role in allowed):
        names = " or ".join(r.value.replace("_", " ") for r in allowed)
        raise Refusal(
            f"only the {names} can {name.replace('_', ' ')} on {s.incident_id}; {d.actor} holds none of those roles"
        )
    if s.status is Status.CLOSED:
        raise Refusal(f"{s.incident_id} is closed")
    RULES[type(d)].check(s, d, policy)


def apply(s: IncidentState, policy: Policy, name: str, d: Decision, now: datetime) -> str:
    """Change the state as the decision says; count it (its number keys the deliveries it causes)."""
    s.decisions_taken[name] = s.decisions_taken.get(name, 0) + 1
    return RULES[type(d)].apply(s, d, policy, now)


# The update ids an incident remembers with their answers: a client retries for seconds, not for hundreds of
# decisions, so the latest few cover every retry that can reach the next run after a continue-as-new.
UPDATES_REMEMBERED = 100


def remember_update(s: IncidentState, update_id: str, answer: str) -> None:
    s.applied_updates[update_id] = answer
    while len(s.applied_updates) > UPDATES_REMEMBERED:
        del s.applied_updates[next(iter(s.applied_updates))]


def number(s: IncidentState, name: str) -> int:
    """How many decisions of this name were taken: the current one's number once applied."""
    return s.decisions_taken.get(name, 0)


# --- the checks ----------------------------------------------------------------------------------


def _open(s: IncidentState) -> None:
    if s.status is not Status.OPEN:
        hint = f" (incidentctl reopen {s.incident_id})" if s.status is Status.RESOLVED else ""
        raise Refusal(f"{s.incident_id} is {s.status.value}; reopen it first{hint}")


def _confirmed(s: IncidentState, what: str) -> None:
    _open(s)
    if not s.confirmed:
        raise Refusal(
            f"{s.incident_id} is not confirmed as an incident yet: classify it before you {what} "
            f"(incidentctl classify {s.incident_id} --kind incident)"
        )


def _resolved(s: IncidentState, what: str) -> None:
    if s.status is not Status.RESOLVED:
        raise Refusal(f"{s.incident_id} is {s.status.value}: resolve it before you {what}")


def _person(policy: Policy, person: str) -> None:
    if person not in policy.people:
        raise Refusal(f"{person!r} is not a person in the policy")


def _check_acknowledge(s: IncidentState, d: Acknowledge, policy: Policy) -> None:
    _open(s)
    if s.acknowledged_by:
        raise Refusal(f"{s.incident_id} is already acknowledged by {s.acknowledged_by}")


def _check_escalate(s: IncidentState, d: Escalate, policy: Policy) -> None:
    _confirmed(s, "escalate")
    if s.acknowledged_by:
        raise Refusal(f"{s.incident_id} is already acknowledged by {s.acknowledged_by}")
    if not s.escalation_active:
        raise Refusal(f"{s.incident_id} is not being escalated: every tier has been paged")


def _check_classify(s: IncidentState, d: Classify, policy: Policy) -> None:
    _open(s)
    follows_up = policy.triage.disturbance_follow_up_hours > 0
    if d.kind is IncidentKind.DISTURBANCE and s.confirmed and not follows_up:
        raise Refusal(f"{s.incident_id} is already confirmed as an incident; resolve it instead")
    taken_up = s.confirmed or (s.kind is IncidentKind.DISTURBANCE and s.follow_up_due is not None)
    if d.kind is not None and d.kind is not s.kind and taken_up and not d.note.strip():
        becomes = "an incident" if d.kind is IncidentKind.INCIDENT else "a disturbance"
        raise Refusal(f"say why {s.incident_id} becomes {becomes} (incidentctl classify ... --note REASON)")


def _check_set_phase(s: IncidentState, d: SetPhase, policy: Policy) -> None:
    _confirmed(s, "move its phase")
    allowed = PHASE_MOVES.get(s.phase, set())
    if d.phase not in allowed:
        hint = {
            Phase.RESOLUTION: " (use resolve)",
            Phase.PUBLISHING: " (use publish)",
            Phase.CLOSED: " (use close)",
        }.get(d.phase, "")
        raise Refusal(
            f"{s.incident_id} cannot move from {s.phase.value} to {d.phase.value}{hint}; "
            f"allowed: {', '.join(sorted(p.value for p in allowed)) or 'none'}"
        )


def _check_trigger_business_incident(s: IncidentState, d: TriggerBusinessIncident, policy: Policy) -> None:
    _confirmed(s, "start a business incident")
    if s.business_incident:
        raise Refusal(f"{s.incident_id} is already a business incident")
    if s.phase not in BUSINESS_INCIDENT_PHASES:
        raise Refusal(
            f"a business incident begins during investigation or identification; {s.incident_id} is in {s.phase.value}"
        )


def _check_evaluate_clients(s: IncidentState, d: EvaluateClients, policy: Policy) -> None:
    if not policy.comms.evaluation_points:
        raise Refusal(f"the {policy.organisation} policy has no client-communication evaluation points")
    if not s.confirmed:
        raise Refusal(f"{s.incident_id} is not confirmed as an incident: there are no clients to tell yet")
    offered = client_audiences(policy)
    wrong = [a.value for a in d.audiences if a not in offered]
    if wrong or (d.tell and not offered):
        raise Refusal(
            f"{', '.join(wrong) or 'clients'}: not a client audience of the policy; "
            f"choose from {', '.join(offered) or 'none (comms.audience_order names no client audience)'}"
        )


def _check_resolve(s: IncidentState, d: Resolve, policy: Policy) -> None:
    _confirmed(s, "resolve it")
    missing = [
        n
        for n, v in (("overview", d.overview), ("how it was resolved", d.how_resolved), ("prevention", d.prevention))
        if not v.strip()
    ]
    if missing:
        raise Refusal(f"the resolution message needs {', '.join(missing)}")


def _check_reopen(s: IncidentState, d: Reopen, policy: Policy) -> None:
    if s.status is not Status.RESOLVED:
        raise Refusal(f"{s.incident_id} is {s.status.value}; only a resolved incident reopens")


def _check_review_held(s: IncidentState, d: ReviewHeld, policy: Policy) -> None:
    _resolved(s, "hold its review")
    if s.checklist["review_held"]:
        raise Refusal(f"the review of {s.incident_id} is already recorded")


def _check_plan_updated(s: IncidentState, d: PlanUpdated, policy: Policy) -> None:
    _resolved(s, "record the review's changes to the plans")
    if policy.post_incident.require_review and not s.checklist["review_held"]:
        raise Refusal(f"hold the review first (incidentctl review-held {s.incident_id})")


def _check_send_resolution(s: IncidentState, d: SendResolution, policy: Policy) -> None:
    _resolved(s, "send its resolution message")
    if not resolution_unsent(s, policy):
        raise Refusal(f"the resolution message of {s.incident_id} has gone out already")


def _check_publish_postmortem(s: IncidentState, d: PublishPostmortem, policy: Policy) -> None:
    _resolved(s, "publish its postmortem")
    if not s.checklist["postmortem_drafted"]:
        raise Refusal(f"the postmortem of {s.incident_id} is not drafted yet")
    if policy.post_incident.require_review and not s.checklist["review_held"]:
        raise Refusal(f"hold the review first (incidentctl review-held {s.incident_id})")


def _check_close(s: IncidentState, d: CloseIncident, policy: Policy) -> None:
    if s.kind is IncidentKind.DISTURBANCE and s.status is Status.OPEN:
        _completed(s, d, policy)
        return
    _resolved(s, "close it")
    unfinished = [t.task_id for t in s.tasks if not t.done]
    if unfinished:
        raise Refusal(
            f"{s.incident_id} cannot close: tasks {', '.join(unfinished)} are not done "
            f"(incidentctl task done {s.incident_id} TASK)"
        )
    if resolution_unsent(s, policy):
        raise Refusal(
            f"{s.incident_id} cannot close: the Communications Lead has not sent the resolution message "
            f"(incidentctl send-resolution {s.incident_id})"
        )
    waiting = follow_ups_waiting(s, policy)
    if waiting:
        raise Refusal(
            f"{s.incident_id} cannot close: action items {', '.join(waiting)} have no "
            f"{policy.follow_ups.home} issue yet"
        )
    missing = documentation_missing(s, policy)
    if missing:
        raise Refusal(f"{s.incident_id} cannot close: documentation incomplete, missing {', '.join(missing)}")
    held = [st.statement_id for st in awaiting_approval(s)]
    if held:
        raise Refusal(
            f"{s.incident_id} cannot close: statements {', '.join(held)} wait for the Communications Lead "
            f"(incidentctl statement approve|withhold {s.incident_id} {held[0]})"
        )
    _completed(s, d, policy)


def _completed(s: IncidentState, d: CloseIncident, policy: Policy) -> None:
    """Seed 001: "all stakeholders are satisfied, and any necessary preventive measures are in place"."""
    if not policy.post_incident.completion_checks:
        return
    missing = [
        *([] if d.stakeholders_satisfied else ["confirm the stakeholders are satisfied (--stakeholders-satisfied)"]),
        *([] if d.preventive_measures.strip() else ["say which preventive measures are in place (--measures TEXT)"]),
    ]
    if missing:
        raise Refusal(f"{s.incident_id} cannot close: {' and '.join(missing)}")


def _while_open(s: IncidentState, d: Decision, policy: Policy) -> None:
    _open(s)


def _while_confirmed(s: IncidentState, d: Decision, policy: Policy) -> None:
    _confirmed(s, "do that")


def _assignable(s: IncidentState, d: AssignRole, policy: Policy) -> None:
    _person(policy, d.person)
    check_assignment(policy, s.roles, d.actor, d.role, d.person)


# --- what each decision changes ---------------------------------------------------------------------


def said(text: str, note: str) -> str:
    """The timeline keeps what the person said with the decision (seed 003: document every decision)."""
    return f"{text}: {note}" if note.strip() else text


def _acknowledge(s: IncidentState, d: Acknowledge, policy: Policy, now: datetime) -> str:
    s.acknowledged_by, s.acknowledged_at = d.actor, now
    return said(f"{s.incident_id} acknowledged by {d.actor}" + (f" by {d.via}" if d.via else ""), d.note)


def _escalate(s: IncidentState, d: Escalate, policy: Policy, now: datetime) -> str:
    if s.ladder_due is not None:  # still in tier 1, which the incident waits out itself: its wait ends now
        s.ladder_due = now
    by = f"{d.actor} by {d.via}" if d.via else d.actor
    return f"{s.incident_id} escalated by {by}: the next tier is paged now"


def _assign_role(s: IncidentState, d: AssignRole, policy: Policy, now: datetime) -> str:
    s.assigned[d.role] = d.person
    return f"{d.person} is now {d.role.value} of {s.incident_id}"


def _classify(s: IncidentState, d: Classify, policy: Policy, now: datetime) -> str:
    before = s.severity
    if d.criteria:
        s.criteria = list(d.criteria)
    if d.severity or d.criteria:
        s.severity = Severity.SEV1 if d.criteria else (d.severity or s.severity)
    if d.scope:
        s.scope = d.scope
    handed_over = hand_over_by_scope(s, policy, now)
    was = s.kind
    if d.kind:
        s.kind, s.assessed_by = d.kind, d.actor
    text = (
        f"classified {s.kind.value if s.kind else 'unassessed'}, {s.severity.value} ({s.severity.priority}), "
        f"{s.scope.value}; action plan owner {scope_owner(s, policy) or 'nobody'}"
    )
    if s.confirmed and s.severity is not before:
        # A new severity has its own cadence: the update is due by that, never later than it already was.
        # A classify that leaves the severity as it was (a scope, a note) leaves the update due as it was.
        due = cadence_due(policy, s.severity, now)
        if due is not None and (s.next_update_due is None or due < s.next_update_due):
            s.next_update_due, s.update_nudged = due, False
        if s.severity < before:  # "SEV1" < "SEV2": raised
            text += raise_severity(s, policy, before)
    if handed_over:
        text += f"; handed over from {handed_over.from_owner} to {handed_over.to_owner}"
    if was is IncidentKind.INCIDENT and s.kind is IncidentKind.DISTURBANCE and s.confirmed:
        text += "; " + downgrade(s, policy, now)
    elif was is IncidentKind.DISTURBANCE and s.kind is IncidentKind.INCIDENT:
        text += "; upgraded to an incident: confirmed and paged"
    return said(text, d.note)


def hand_over_by_scope(s: IncidentState, policy: Policy, now: datetime) -> Handover | None:
    """Seed 001: once confirmed, the owner by scope is the Incident Commander (triage.owner_by_scope); a new
    scope hands the incident to its owner."""
    if not (policy.triage.owner_by_scope and (s.confirmed or s.disturbances_taken_up)):
        return None
    before, owner = incident_commander(s, policy), scope_owner(s, policy)
    if not owner or owner == before:
        return None
    s.assigned[Role.INCIDENT_COMMANDER] = owner
    s.handovers.append(Handover(at=now, from_owner=before, to_owner=owner, scope=s.scope))
    return s.handovers[-1]


def _set_phase(s: IncidentState, d: SetPhase, policy: Policy, now: datetime) -> str:
    s.enter(d.phase)
    s.progress_due = progress_window(policy, now)  # a phase move is progress (seed 002's window)
    return said(f"{s.incident_id} is now in {d.phase.value}", d.note)


def _estimate(s: IncidentState, d: Estimate, policy: Policy, now: datetime) -> str:
    s.estimate_due, s.estimate_by = now + timedelta(minutes=d.minutes), d.actor
    s.progress_due = progress_window(policy, now)
    return said(
        f"{d.actor} estimates {d.minutes} min to resolve; check-back at {local(policy, s.estimate_due)}", d.note
    )


def _progress_note(s: IncidentState, d: ProgressNote, policy: Policy, now: datetime) -> str:
    if s.confirmed:
        s.progress_due = progress_window(policy, now)
    return f"progress from {d.actor}: {d.text}"


def _status_update(s: IncidentState, d: StatusUpdate, policy: Policy, now: datetime) -> str:
    s.next_update_due = cadence_due(policy, s.severity, now)
    s.update_nudged = False
    due = f"; next due {local(policy, s.next_update_due)}" if s.next_update_due else ""
    return f"status update from {d.actor}: {d.text}{due}"


def _report_data_loss(s: IncidentState, d: ReportDataLoss, policy: Policy, now: datetime) -> str:
    s.data_loss_minutes = d.minutes
    return f"{d.minutes} min of data loss reported by {d.actor}"


def client_audiences(policy: Policy) -> list[Audience]:
    """The clients' audiences of the message loop, in the policy's order."""
    return [a for a in policy.comms.audience_order if a in EXTERNAL_AUDIENCES]


def open_evaluation(
    s: IncidentState, policy: Policy, point: EvaluationPoint, label: str, now: datetime
) -> Evaluation | None:
    """Seed 001: at the policy's evaluation points the owner is asked whether and how to tell clients. An
    unanswered question is asked again at the next point, about that point's phase."""
    if point not in policy.comms.evaluation_points or not s.confirmed or s.status is Status.CLOSED:
        return None
    owner = incident_commander(s, policy)
    waiting = pending_evaluation(s)
    if waiting is not None:
        waiting.point, waiting.phase, waiting.asked_at, waiting.asked_of = label, s.phase, now, owner
        waiting.asks += 1
        return waiting
    s.evaluations.append(
        Evaluation(number=len(s.evaluations) + 1, point=label, phase=s.phase, asked_of=owner, asked_at=now)
    )
    return s.evaluations[-1]


def pending_evaluation(s: IncidentState) -> Evaluation | None:
    return next((e for e in s.evaluations if e.tell is None), None)


def _evaluate_clients(s: IncidentState, d: EvaluateClients, policy: Policy, now: datetime) -> str:
    e = pending_evaluation(s)
    if e is None:  # the owner decides between points
        e = Evaluation(number=len(s.evaluations) + 1, point="the owner's own", phase=s.phase, asked_at=now)
        s.evaluations.append(e)
    e.tell, e.audiences, e.reason = d.tell, list(d.audiences) or client_audiences(policy), d.reason
    e.decided_by, e.decided_at = d.actor, now
    point = f"evaluation point {e.number} ({e.point})"
    if not d.tell:
        return f"{point}: clients are not told now: {d.reason}; asked again at the next point"
    if not s.business_incident:  # the message loop writes client messages
        s.business_incident, s.business_incident_by = True, d.actor
        s.business_incident_reason = "the owner decided to tell clients"
    return f"{point}: tell clients now ({', '.join(e.audiences)}): {d.reason}; the client message is drafted"


def _trigger_business_incident(s: IncidentState, d: TriggerBusinessIncident, policy: Policy, now: datetime) -> str:
    s.business_incident, s.business_incident_by = True, d.actor
    s.business_incident_reason = d.reason or "declared by a person"
    return f"business incident triggered ({d.reason or 'declared by a person'}): the message loop starts"


def _resolve(s: IncidentState, d: Resolve, policy: Policy, now: datetime) -> str:
    s.resolution = {"overview": d.overview, "how_resolved": d.how_resolved, "prevention": d.prevention}
    if d.root_cause:
        s.resolution["root_cause"] = d.root_cause
    mark_resolved(s, d.actor, now)
    return f"{s.incident_id} resolved: {d.overview}"


def _reopen(s: IncidentState, d: Reopen, policy: Policy, now: datetime) -> str:
    reopen(s, policy, now)
    return f"{s.incident_id} reopened by {d.actor}: {d.reason}"


def _review_held(s: IncidentState, d: ReviewHeld, policy: Policy, now: datetime) -> str:
    s.checklist["review_held"] = True
    s.resolution |= {k: v for k, v in (("root_cause", d.root_cause), ("review_notes", d.notes)) if v}
    return "review held" + (f": {d.notes}" if d.notes else "")


def _plan_updated(s: IncidentState, d: PlanUpdated, policy: Policy, now: datetime) -> str:
    s.checklist["plan_updated"] = True
    s.resolution["plan_changes"] = d.changes + (f" ({d.url})" if d.url else "")
    return f"plans updated after the review: {s.resolution['plan_changes']}"


def _send_resolution(s: IncidentState, d: SendResolution, policy: Policy, now: datetime) -> str:
    s.resolution_sent = s.resolutions
    return f"resolution message sent by {d.actor}" + (" (reworded)" if d.text.strip() else "")


def _publish_postmortem(s: IncidentState, d: PublishPostmortem, policy: Policy, now: datetime) -> str:
    s.checklist["postmortem_published"] = True
    s.postmortem_url = d.url
    s.enter(Phase.PUBLISHING)
    return f"postmortem published{f' at {d.url}' if d.url else ''}"


def _close(s: IncidentState, d: CloseIncident, policy: Policy, now: datetime) -> str:
    disturbance = s.kind is IncidentKind.DISTURBANCE
    s.status, s.closed_at = Status.CLOSED, now
    s.enter(Phase.CLOSED)
    text = f"{s.incident_id} closed: " + ("the disturbance is followed up" if disturbance else "documentation complete")
    if policy.post_incident.completion_checks:
        s.resolution |= {"stakeholders": "satisfied", "preventive_measures": d.preventive_measures.strip()}
        text += f"; stakeholders satisfied; preventive measures: {d.preventive_measures.strip()}"
    return text


RULES: dict[type[Decision], Rule] = {
    Acknowledge: Rule(_check_acknowledge, _acknowledge),
    Escalate: Rule(_check_escalate, _escalate),
    AssignRole: Rule(_assignable, _assign_role),
    Classify: Rule(_check_classify, _classify),
    SetPhase: Rule(_check_set_phase, _set_phase),
    Estimate: Rule(_while_confirmed, _estimate),
    ProgressNote: Rule(_while_open, _progress_note),
    StatusUpdate: Rule(_while_open, _status_update),
    ReportDataLoss: Rule(_while_open, _report_data_loss),
    TriggerBusinessIncident: Rule(_check_trigger_business_incident, _trigger_business_incident),
    EvaluateClients: Rule(_check_evaluate_clients, _evaluate_clients),
    Resolve: Rule(_check_resolve, _resolve),
    Reopen: Rule(_check_reopen, _reopen),
    ReviewHeld: Rule(_check_review_held, _review_held),
    PlanUpdated: Rule(_check_plan_updated, _plan_updated),
    SendResolution: Rule(_check_send_resolution, _send_resolution),
    PublishPostmortem: Rule(_check_publish_postmortem, _publish_postmortem),
    CloseIncident: Rule(_check_close, _close),
    **APPROVAL_RULES,  # seed 000's gates on external words and extra channels
    **RECOVERY_RULES,  # seed 003's recovery plan
    **ACTION_ITEM_RULES,  # the postmortem's follow-ups (workflows/records/)
}
