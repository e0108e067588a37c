"""IncidentWorkflow: one incident's whole process, from the first alert to the closed incident log.

It reads like the seeds' procedures: initial assessment (000, 001), confirmation with paging, one
Slack channel, a call bridge and the people of 002 tagged; an estimate from the responsible developer
and a call when there is no progress (002); status updates on a cadence (002, 000); RTO/RPO watch and
prioritised tasks (003); the approved stakeholder messages of 004 (CommsWorkflow child); resolution
(000), then logs, PMO, postmortem and review until the documentation is complete (001, 002).

Every deadline is an absolute time in the state and the main loop sleeps until the nearest one, so a
worker restart or a continue-as-new changes nothing. Handlers only validate and record; the loop acts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import RawValue
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from activities.conference import ConferenceActivities
    from activities.email import EmailActivities
    from activities.paging import PagingActivities
    from activities.records import RecordsActivities
    from activities.slack import SlackActivities
    from workflows import search_attributes as sa
    from workflows.comms import CommsWorkflow
    from workflows.comms_model import CommsInput, comms_workflow_id
    from workflows.escalation import EscalationInput, EscalationWorkflow, StopEscalation
    from workflows.model import (
        CHECKLIST,
        Acknowledge,
        AlertEvent,
        AlertSeen,
        AlertStatus,
        AssignRole,
        AssignTask,
        Channel,
        Classify,
        CloseIncident,
        CompleteTask,
        ConferenceRequest,
        CriticalCriterion,
        Decision,
        Effect,
        EmailRequest,
        EscalationNotice,
        Estimate,
        IncidentKind,
        IncidentLogEntry,
        IncidentState,
        PageAction,
        Phase,
        PhaseChanged,
        PostmortemRequest,
        ProgressNote,
        PublishPostmortem,
        Reached,
        Reopen,
        ReportDataLoss,
        ReviewHeld,
        Role,
        Scope,
        SetPhase,
        Severity,
        SlackArchive,
        SlackChannelRequest,
        Status,
        StatusUpdate,
        Task,
        TimelineEntry,
        TriggerBusinessIncident,
    )
    from workflows.model import Resolve as ResolveDecision
    from workflows.policy import Policy
    from workflows.reach import CHAT, LOCAL, PAGING, attempt, post, reach

# Phase moves a person may make with set_phase. Resolution, Analysis, Publishing and closed have
# their own decisions (resolve, publish, close) because each needs more than a phase name.
PHASE_MOVES: dict[Phase, set[Phase]] = {
    Phase.DETECTION: {Phase.INVESTIGATION, Phase.IDENTIFICATION, Phase.MONITORING},
    Phase.INVESTIGATION: {Phase.IDENTIFICATION, Phase.MONITORING},
    Phase.IDENTIFICATION: {Phase.MONITORING},
    Phase.MONITORING: {Phase.IDENTIFICATION},  # the remediation did not hold
}
# Seed 004: a business incident begins during Investigation or Identification.
BUSINESS_INCIDENT_PHASES = {Phase.INVESTIGATION, Phase.IDENTIFICATION}

DECISIONS: dict[str, type[Decision]] = {
    "acknowledge": Acknowledge, "assign_role": AssignRole, "classify": Classify, "set_phase": SetPhase,
    "estimate": Estimate, "progress_note": ProgressNote, "status_update": StatusUpdate,
    "assign_task": AssignTask, "complete_task": CompleteTask, "report_data_loss": ReportDataLoss,
    "trigger_business_incident": TriggerBusinessIncident, "resolve": ResolveDecision, "reopen": Reopen,
    "review_held": ReviewHeld, "publish_postmortem": PublishPostmortem, "close": CloseIncident,
}


class IncidentInput(BaseModel):
    incident_id: str
    policy: Policy
    ui_url: str = ""  # link to this incident in the Temporal UI, for messages
    state: IncidentState | None = None  # carried over by continue-as-new
    # a run of this many events continues as new, well before Temporal's limits (and its suggestion)
    history_limit: int = 5000


@workflow.defn
class IncidentWorkflow:
    @workflow.init
    def __init__(self, input: IncidentInput) -> None:
        self.policy = input.policy
        self.ui_url = input.ui_url
        self.history_limit = input.history_limit
        self.continued = input.state is not None
        self.s = input.state or IncidentState(
            incident_id=input.incident_id, title="(no alert yet)", opened_at=workflow.now())
        self._visible: tuple[Any, ...] = ()

    # --- the procedure --------------------------------------------------------------------------

    @workflow.run
    async def run(self, input: IncidentInput) -> IncidentState:
        if not self.continued:
            self.s.assessment_due = workflow.now() + timedelta(minutes=self.policy.triage.assessment_minutes)
        while self.s.phase != Phase.CLOSED:
            self._refresh_visibility()
            await self._act_on_recorded_decisions()
            await self._advance()
            await self._act_on_due_deadlines()
            if self.s.phase == Phase.CLOSED:
                break
            if self._history_is_long():
                await self._continue_as_new(input)
            self._refresh_visibility()
            await self._sleep_until_something_happens()
        await workflow.wait_condition(workflow.all_handlers_finished)
        await self._act_on_recorded_decisions()  # the close itself: archive, final log entry
        self._refresh_visibility()
        return self.s

    async def _advance(self) -> None:
        """Take the next step the procedure calls for, given what is known now."""
        s = self.s
        if s.kind is None and s.alert_count and not s.assessment_requested:
            await self._ask_for_initial_assessment()
        if s.kind is None and (s.severity in self.policy.response.auto_confirm_severities or s.criteria):
            self._note("assessed", f"{s.severity.value} is confirmed at once by policy", "policy")
            s.kind = IncidentKind.INCIDENT
        if s.kind is IncidentKind.DISTURBANCE:
            await self._log_disturbance_and_close()
        elif s.kind is IncidentKind.INCIDENT and not s.confirmed:
            await self._confirm_incident()
        elif s.status is Status.RESOLVED and s.phase is Phase.RESOLUTION:
            await self._begin_analysis()

    async def _ask_for_initial_assessment(self) -> None:
        """Seeds 000, 001: somebody assesses severity, impact, incident or disturbance, and scope."""
        s = self.s
        s.assessment_requested = True
        if s.severity in self.policy.response.auto_confirm_severities or s.criteria:
            return
        assessors = self._people_for([Role.INCIDENT_COMMANDER, Role.RESPONDER])
        await self._reach(assessors, [Channel.SLACK],
                          f"New report {s.incident_id}: {s.title} (provisional {s.severity.value}). Assess it by "
                          f"{s.assessment_due:%H:%M} UTC: incidentctl classify {s.incident_id} --kind incident|"
                          "disturbance --severity SEVn --scope local|global", "assessment:request")
        self._note("assessment", f"Initial assessment asked of {', '.join(assessors)}")

    async def _confirm_incident(self) -> None:
        """Seed 000: once confirmed, paging, a call, one Slack channel; seed 002: tag who matters."""
        s = self.s
        s.confirmed = True
        if s.phase is Phase.DETECTION:
            s.phase = Phase.INVESTIGATION
        self._assign_first_holders()
        self._note("confirmed", f"Confirmed as a {s.severity.value} ({s.severity.priority} priority) "
                   f"{s.scope.value} incident; owner of the action plan: {self._scope_owner() or 'nobody'}")
        conference = await self._open_conference()
        await self._open_incident_channel(conference)
        await self._reach_leadership_if_out_of_hours()
        await self._start_escalation()
        await self._write_incident_log_entry("opened")
        await self._ask_for_estimate()
        now = workflow.now()
        s.progress_due = now + timedelta(minutes=self.policy.response.progress_window_minutes)
        self._schedule_next_update(now)
        service = self.policy.services.get(s.service)
        if service and service.rto_minutes:
            s.rto_due = s.opened_at + timedelta(minutes=service.rto_minutes)
        if s.severity in self.policy.comms.auto_trigger_severities and not s.business_incident:
            s.business_incident = True
            await self._start_business_incident("policy", f"every {s.severity.value} is a business incident")

    def _assign_first_holders(self) -> None:
        """Incident Commander, Communications Lead and the tagged roles: the policy's first holder."""
        roles = [Role.INCIDENT_COMMANDER, Role.COMMUNICATIONS_LEAD, Role.PROJECT_MANAGER,
                 *self.policy.response.tag_roles]
        service = self.policy.services.get(self.s.service)
        if service and service.owner:
            self.s.assigned.setdefault(Role.RESPONSIBLE_DEVELOPER, service.owner)
        if service and service.account_manager:
            self.s.assigned.setdefault(Role.ACCOUNT_MANAGER, service.account_manager)
        for role in roles:
            holders = self.policy.holders(role)
            if role not in self.s.assigned and holders:
                self.s.assigned[role] = holders[0]
        self._note("roles", "Assigned: " + ", ".join(f"{r.value} {p}" for r, p in self.s.assigned.items()))

    async def _open_conference(self) -> str:
        result, failure = await attempt("conference", workflow.execute_activity_method(
            ConferenceActivities.conference_create,
            ConferenceRequest(incident_id=self.s.incident_id, topic=self._subject(),
                              bridge_url=self.policy.response.conference_bridge_url), **CHAT))
        self.s.conference_url = result.join_url if result else ""
        self._note("conference", failure or (f"Conference bridge: {self.s.conference_url}"
                                             if self.s.conference_url else "No conference bridge configured"))
        return self.s.conference_url

    async def _open_incident_channel(self, conference: str) -> None:
        """One channel per incident, the people of seed 002 invited and tagged, links bookmarked."""
        s = self.s
        tagged = self._people_for(self.policy.response.tag_roles)
        slack_ids = [self.policy.people[p].slack_user_id for p in tagged if self.policy.people[p].slack_user_id]
        bookmarks = {"Incident in Temporal UI": self.ui_url} if self.ui_url else {}
        if conference:
            bookmarks["Conference"] = conference
        service = self.policy.services.get(s.service)
        if service and service.runbook_url:
            bookmarks["Runbook"] = service.runbook_url
        result, failure = await attempt("Slack channel", workflow.execute_activity_method(
            SlackActivities.slack_ensure_channel,
            SlackChannelRequest(incident_id=s.incident_id, title=s.title, invite_user_ids=slack_ids,
                                channel_prefix=self.policy.response.slack_channel_prefix,
                                topic=f"{s.severity.value} · {s.phase.value} · IC {self._ic()}",
                                purpose=f"All communication about {s.incident_id} happens here.",
                                bookmarks=bookmarks), **CHAT))
        if result is None:
            self._note("channel", failure or "no Slack channel")
            return
        s.channel = result.channel_id
        self._note("channel", f"Incident channel {result.name} opened; invited {', '.join(tagged) or 'nobody'}")
        await self._post(
            f"{s.severity.value} incident {s.incident_id}: {s.title}\n"
            f"Incident Commander: {self._ic()} · Communications Lead: "
            f"{s.assigned.get(Role.COMMUNICATIONS_LEAD, 'unassigned')}\n"
            + (f"Conference: {conference}\n" if conference else "")
            + "All communication about this incident happens in this channel.",
            "channel:welcome", mentions=slack_ids)

    async def _start_escalation(self) -> None:
        s = self.s
        if not self.policy.escalation.tiers or s.acknowledged_by:
            return
        s.escalation_round += 1
        s.escalation_active = True
        await workflow.start_child_workflow(
            EscalationWorkflow.run,
            EscalationInput(incident_id=s.incident_id, policy=self.policy, round=s.escalation_round,
                            title=s.title, severity=s.severity, assigned=s.assigned, ui_url=self.ui_url,
                            occurrence=s.occurrence),
            id=self._escalation_id(), parent_close_policy=ParentClosePolicy.ABANDON,
            execution_timeout=timedelta(days=7))
        self._note("escalation", f"Escalation round {s.escalation_round} started "
                   f"({len(self.policy.escalation.tiers)} tiers)")

    async def _reach_leadership_if_out_of_hours(self) -> None:
        """Seed 002: out of working hours or at weekends, leadership is contacted via Telegram, acked or not."""
        hours = self.policy.business_hours
        if hours.contains(workflow.now()):
            return
        s = self.s
        people = self.policy.expand(hours.out_of_hours_notify, s.assigned)
        reached = await self._reach(
            people, hours.out_of_hours_channels,
            f"Out of hours: [{s.severity.value}] {s.incident_id}: {s.title}. Immediate attention needed. "
            f"{self.ui_url}".strip(), f"out-of-hours:{self._reopens()}")
        self._note("out_of_hours", f"Out of business hours ({hours.timezone}): leadership reached: "
                   + "; ".join(reached.lines or ["nobody"]))

    async def _stop_escalation(self, reason: str) -> None:
        if not self.s.escalation_active:
            return
        self.s.escalation_active = False
        try:
            await workflow.get_external_workflow_handle(self._escalation_id()).signal(
                EscalationWorkflow.stop, StopEscalation(reason=reason))
        except Exception:
            # The ladder had already run out: there is nothing left to stop.
            workflow.logger.info("escalation %s already finished", self._escalation_id())
        self._note("escalation", f"Escalation stopped: {reason}")

    async def _ask_for_estimate(self) -> None:
        """Seed 002: assign the task to the responsible developer and request an estimate."""
        developer = self.s.assigned.get(Role.RESPONSIBLE_DEVELOPER)
        if not developer:
            self._note("estimate", "No responsible developer to ask for an estimate")
            return
        await self._reach([developer], [Channel.SLACK],
                          f"{self.s.incident_id} is assigned to you. Please give an estimate for resolution "
                          f"(incidentctl estimate {self.s.incident_id} MINUTES).", "estimate:request")
        self._note("estimate", f"Asked {developer} for an estimate")

    async def _convene_call(self) -> None:
        """Seed 002: no progress in the window -> a call with developer, CTO and Account Manager."""
        s = self.s
        s.calls_convened += 1
        people = self._people_for(self.policy.response.call_roles)
        where = s.conference_url or "the incident channel"
        text = (f"No progress on {s.incident_id} in {self.policy.response.progress_window_minutes} min: "
                f"join the call now: {where}")
        await self._reach(people, [Channel.PAGE, Channel.SLACK], text, f"call:{s.calls_convened}")
        await self._post(text, f"call:{s.calls_convened}", mentions=self._slack_ids(people))
        self._note("call", f"Call convened with {', '.join(people)} (no progress)")

    async def _nudge_for_status_update(self) -> None:
        owner = self._update_owner()
        due = self.s.next_update_due
        await self._reach([owner], [Channel.SLACK],
                          f"A status update on {self.s.incident_id} is due at {due:%H:%M} UTC "
                          f"(incidentctl update {self.s.incident_id} TEXT).", f"update-nudge:{due:%Y%m%d%H%M}")
        self._note("cadence", f"Reminded {owner}: status update due at {due:%H:%M}")

    async def _report_missed_update(self) -> None:
        s = self.s
        s.updates_missed += 1
        missed_at = s.next_update_due
        await self._reach([self._ic()], [Channel.SLACK],
                          f"The status update on {s.incident_id} due at {missed_at:%H:%M} UTC was missed.",
                          f"update-missed:{missed_at:%Y%m%d%H%M}")
        self._note("cadence", f"Status update due at {missed_at:%H:%M} missed; told {self._ic()}")

    async def _distribute_status_update(self, actor: str, text: str, number: str) -> None:
        """Seed 002: the client and leads every 30 minutes; seed 000: centralised in the channel."""
        s = self.s
        body = f"Status update on {s.incident_id} ({s.phase.value}) from {actor}: {text}"
        await self._post(body, f"update:{number}")
        leads = self.policy.expand(self.policy.cadence.leads, s.assigned)
        await self._reach(leads, [Channel.SLACK], body, f"update:{number}")
        await self._email_client_contacts(f"Update: {s.title}", body, f"update:{number}")

    async def _watch_recovery_objectives(self) -> None:
        """Seed 003: RTO warning at 80 %, breach escalated to senior management."""
        s = self.s
        service = self.policy.services.get(s.service)
        if not (service and service.rto_minutes and s.rto_due) or self._service_restored():
            return
        now = workflow.now()
        warn_at = self._rto_warning_at(service.rto_minutes)
        if not s.rto_warned and now >= warn_at:
            s.rto_warned = True
            text = (f"RTO warning: {s.incident_id} has used {int(self.policy.response.rto_warning_ratio * 100)} % "
                    f"of the {service.rto_minutes} min RTO for {s.service}")
            await self._post(text, f"rto:warning:{self._reopens()}", mentions=self._slack_ids([self._ic()]))
            self._note("rto", text)
        if not s.rto_breached and now >= s.rto_due:
            s.rto_breached = True
            await self._escalate_breach(f"RTO breached: {s.service} not restored within {service.rto_minutes} min",
                                        f"rto:breach:{self._reopens()}")

    async def _escalate_breach(self, text: str, key: str) -> None:
        people = self.policy.expand(self.policy.response.breach_notify, self.s.assigned)
        message = f"{self.s.incident_id}: {text}"
        await self._reach(people, self.policy.response.breach_channels, message, key)
        await self._post(message, key)
        self._note("breach", f"{text}; escalated to {', '.join(people) or 'nobody'}")

    async def _check_data_loss(self, minutes: int) -> None:
        """Seed 003's RPO: warn at 80 % of the objective, escalate a breach."""
        service = self.policy.services.get(self.s.service)
        if not (service and service.rpo_minutes):
            return
        ratio = self.policy.response.rto_warning_ratio
        if minutes > service.rpo_minutes:
            await self._escalate_breach(f"RPO breached: {minutes} min of data lost, objective "
                                        f"{service.rpo_minutes} min", f"rpo:breach:{minutes}")
        elif minutes >= service.rpo_minutes * ratio:
            text = f"RPO warning: {minutes} min of data lost, objective {service.rpo_minutes} min"
            await self._post(f"{self.s.incident_id}: {text}", f"rpo:warning:{minutes}")
            self._note("rpo", text)

    async def _start_business_incident(self, actor: str, reason: str) -> None:
        """Seed 004: the business incident group starts its Message Creation Loop (CommsWorkflow)."""
        self.s.comms_workflow_id = self._comms_id()
        await workflow.start_child_workflow(
            CommsWorkflow.run,
            CommsInput(facts=self.s.facts(self.ui_url), policy=self.policy, triggered_by=actor, reason=reason),
            id=self._comms_id(), parent_close_policy=ParentClosePolicy.ABANDON)
        self._note("business_incident", f"Business incident triggered ({reason}); message loop started", actor)

    async def _tell_comms_phase(self) -> None:
        if not self.s.business_incident:
            return
        try:
            await workflow.get_external_workflow_handle(self._comms_id()).signal(
                CommsWorkflow.incident_phase_changed, PhaseChanged(phase=self.s.phase, facts=self.s.facts(self.ui_url)))
        except Exception:
            # The message loop already ended (all its phases done): nothing to tell it.
            workflow.logger.info("comms %s already finished", self._comms_id())

    async def _resolve_incident(self, actor: str, number: str) -> None:
        """Seed 000: the resolution message to all parties; paging closed; every timer cancelled."""
        s = self.s
        await self._stop_escalation(f"resolved by {actor}")
        r = s.resolution
        text = (f"RESOLVED {s.incident_id}: {s.title}\nOverview: {r['overview']}\n"
                + (f"Root cause: {r['root_cause']}\n" if r.get("root_cause") else "")
                + f"How it was resolved: {r['how_resolved']}\nPrevention: {r['prevention']}")
        await self._post(text, f"resolution:{number}")
        parties = self.policy.expand(self.policy.cadence.leads, s.assigned)
        parties += [p for p in self._people_for([Role.COMMUNICATIONS_LEAD]) if p not in parties]
        await self._reach(parties, [Channel.SLACK, Channel.EMAIL], text, f"resolution:{number}")
        await self._email_client_contacts(f"Resolved: {s.title}", text, f"resolution:{number}")
        await self._close_pages(actor)
        await self._tell_comms_phase()
        self._note("resolution", f"Resolution message sent to {', '.join(parties)} and the incident channel")

    async def _begin_analysis(self) -> None:
        """Seeds 001-003: both incident logs, the PMO, a postmortem draft, a review meeting."""
        s = self.s
        post = self.policy.post_incident
        s.phase = Phase.ANALYSIS
        await self._tell_comms_phase()
        if post.project_log:
            s.checklist["project_log"] = await self._write_incident_log_entry("resolved", log="project")
        if post.global_log:
            s.checklist["global_log"] = await self._write_incident_log_entry("resolved", log="global")
        if post.notify_pmo:
            s.checklist["pmo_notified"] = await self._notify_pmo()
        await self._draft_postmortem()
        s.review_due = (s.resolved_at or workflow.now()) + timedelta(hours=post.review_after_hours)
        s.next_review_reminder = s.review_due
        attendees = self._review_attendees()
        await self._reach(attendees, [Channel.SLACK, Channel.EMAIL],
                          f"Post-incident review of {s.incident_id} ({s.title}) is scheduled for "
                          f"{s.review_due:%Y-%m-%d %H:%M} UTC. Postmortem draft: {s.postmortem_location}",
                          f"review:invite:{self._reopens()}")
        self._note("review", f"Review meeting scheduled for {s.review_due:%Y-%m-%d %H:%M} UTC with "
                   f"{', '.join(attendees)}")

    async def _notify_pmo(self) -> bool:
        """Seed 002: the PMO adds the incident to this week's PM call agenda."""
        pmo = self._people_for([Role.PMO])
        if not pmo:
            self._note("pmo", "No PMO in the policy to notify")
            return False
        reached = await self._reach(pmo, [Channel.SLACK, Channel.EMAIL],
                                    f"Please add {self.s.incident_id} ({self.s.title}) to the agenda of this "
                                    "week's PM call.", f"pmo:{self._reopens()}")
        self._note("pmo", f"PMO ({', '.join(pmo)}) asked to put it on this week's PM call agenda")
        return bool(reached.lines)

    async def _draft_postmortem(self) -> None:
        s = self.s
        r = s.resolution
        sections = {
            "What happened": f"{s.title}. {r.get('overview', '')}".strip(),
            "How the issue was identified": self._how_identified(),
            "Root cause": r.get("root_cause", ""),
            "Steps taken (communication and technical)": r.get("how_resolved", ""),
            "Key takeaways and recommendations": "\n\n".join(
                part for part in (r.get("prevention", ""), r.get("review_notes", "")) if part),
        }
        result, failure = await attempt("postmortem draft", workflow.execute_activity_method(
            RecordsActivities.write_postmortem,
            PostmortemRequest(incident_id=s.incident_id, title=s.title, opened_at=s.opened_at,
                              severity=s.severity, service=s.service,
                              sections=sections, timeline=s.timeline, log_dir=self.policy.post_incident.log_dir),
            **LOCAL))
        if result:
            s.postmortem_location = result.location
            s.checklist["postmortem_drafted"] = True
        self._note("postmortem", failure or f"Postmortem drafted at {s.postmortem_location}")

    async def _remind_review(self) -> None:
        s = self.s
        if not s.checklist["postmortem_drafted"]:  # the first draft failed: try again with the reminder
            await self._draft_postmortem()
        await self._reach(self._review_attendees(), [Channel.SLACK],
                          f"Reminder: the post-incident review of {s.incident_id} has not been held yet "
                          f"(incidentctl review-held {s.incident_id}).",
                          f"review:reminder:{s.next_review_reminder:%Y%m%d%H}")
        self._note("review", "Review reminder sent")
        s.next_review_reminder = workflow.now() + timedelta(hours=self.policy.post_incident.review_reminder_hours)

    async def _reopen_incident(self, actor: str, reason: str) -> None:
        await self._post(f"{self.s.incident_id} reopened by {actor}: {reason}", f"reopen:{self._reopens()}")
        await self._reach_leadership_if_out_of_hours()
        await self._start_escalation()
        now = workflow.now()
        self.s.progress_due = now + timedelta(minutes=self.policy.response.progress_window_minutes)
        self._schedule_next_update(now)
        service = self.policy.services.get(self.s.service)
        if service and service.rto_minutes:  # the service is down again: its recovery clock restarts
            self.s.rto_due = now + timedelta(minutes=service.rto_minutes)
        await self._tell_comms_phase()

    async def _close_incident(self, actor: str) -> None:
        s = self.s
        if s.channel:
            _, failure = await attempt("archive channel", workflow.execute_activity_method(
                SlackActivities.slack_archive_channel, SlackArchive(channel=s.channel), **CHAT))
            if failure:
                self._note("channel", failure)
        await self._write_incident_log_entry("closed", log="global")
        await self._tell_comms_phase()
        self._note("closed", "Incident closed: documentation complete", actor)

    async def _log_disturbance_and_close(self) -> None:
        """Seed 001: a disturbance is logged and closed; nobody is paged."""
        s = self.s
        await self._write_incident_log_entry("disturbance", log="project")
        s.status, s.phase, s.closed_at = Status.CLOSED, Phase.CLOSED, workflow.now()
        await self._tell_comms_phase()
        self._note("closed", "Classified as a disturbance: logged and closed without paging", s.assessed_by)

    # --- deadlines ------------------------------------------------------------------------------

    def _deadlines(self) -> list[tuple[datetime, Callable[[], Any]]]:
        """Every pending deadline and what to do when it passes."""
        s = self.s
        due: list[tuple[datetime, Callable[[], Any]]] = []
        if s.kind is None and s.assessment_due:
            due.append((s.assessment_due, self._on_unassessed))
        if s.status is Status.OPEN and s.confirmed:
            if s.progress_due:
                due.append((s.progress_due, self._on_no_progress))
            if s.estimate_due:
                due.append((s.estimate_due, self._on_estimate_elapsed))
            if s.next_update_due:
                nudge_at = s.next_update_due - timedelta(minutes=self.policy.cadence.nudge_before_minutes)
                if not s.update_nudged and self.policy.cadence.nudge_before_minutes:
                    due.append((nudge_at, self._on_update_nudge))
                due.append((s.next_update_due, self._on_update_missed))
            service = self.policy.services.get(s.service)
            if s.rto_due and service and service.rto_minutes and not self._service_restored():
                warn_at = self._rto_warning_at(service.rto_minutes)
                if not s.rto_warned:
                    due.append((warn_at, self._watch_recovery_objectives))
                elif not s.rto_breached:
                    due.append((s.rto_due, self._watch_recovery_objectives))
        if s.status is Status.RESOLVED and not s.checklist["review_held"] and s.next_review_reminder:
            due.append((s.next_review_reminder, self._remind_review))
        return due

    async def _act_on_due_deadlines(self) -> None:
        for at, act in sorted(self._deadlines(), key=lambda d: d[0]):
            # A decision may arrive while an earlier deadline is handled (a resolve during a call):
            # act only on deadlines that are still pending and due.
            if at <= workflow.now() and (at, act) in self._deadlines():
                await act()

    async def _sleep_until_something_happens(self) -> None:
        """Wake on the nearest deadline, a recorded decision or a step that is ready."""
        upcoming = [at for at, _ in self._deadlines()]
        timeout = (min(upcoming) - workflow.now()) if upcoming else None
        if timeout is not None and timeout <= timedelta(0):
            return
        try:
            await workflow.wait_condition(
                lambda: bool(self.s.pending) or self._step_ready() or self._visibility_is_stale(), timeout=timeout)
        except TimeoutError:
            pass

    def _step_ready(self) -> bool:
        s = self.s
        return ((s.kind is not None and not s.confirmed)
                or (s.kind is None and s.alert_count > 0 and not s.assessment_requested)
                or (s.kind is None and (s.severity in self.policy.response.auto_confirm_severities or bool(s.criteria)))
                or (s.status is Status.RESOLVED and s.phase is Phase.RESOLUTION))

    async def _on_unassessed(self) -> None:
        """Nobody assessed in time: treat it as an incident at the alert's severity, and escalate."""
        self.s.kind = IncidentKind.INCIDENT
        self._note("assessed", f"Not assessed within {self.policy.triage.assessment_minutes} min: treated as a "
                   f"{self.s.severity.value} incident and escalated", "policy")

    async def _on_no_progress(self) -> None:
        await self._convene_call()
        self.s.progress_due = workflow.now() + timedelta(minutes=self.policy.response.progress_window_minutes)

    async def _on_estimate_elapsed(self) -> None:
        developer = self.s.assigned.get(Role.RESPONSIBLE_DEVELOPER, "")
        self.s.estimate_due = None
        await self._reach([developer], [Channel.SLACK],
                          f"Your estimate for {self.s.incident_id} has elapsed: where are we? "
                          f"(incidentctl note / estimate {self.s.incident_id})",
                          f"estimate:elapsed:{workflow.now():%Y%m%d%H%M}")
        self._note("estimate", f"Estimate elapsed; checked back with {developer}")

    async def _on_update_nudge(self) -> None:
        self.s.update_nudged = True
        await self._nudge_for_status_update()

    async def _on_update_missed(self) -> None:
        await self._report_missed_update()
        self._schedule_next_update(self.s.next_update_due or workflow.now())

    def _schedule_next_update(self, after: datetime) -> None:
        every = self.policy.cadence.every(self.s.severity)
        self.s.next_update_due = after + every if every else None
        self.s.update_nudged = False

    # --- acting on recorded decisions -----------------------------------------------------------

    async def _act_on_recorded_decisions(self) -> None:
        while self.s.pending:
            effect = self.s.pending.pop(0)
            await self._act(effect)

    async def _act(self, effect: Effect) -> None:
        s, actor, data = self.s, effect.actor, effect.data
        if effect.kind == "acknowledge":
            await self._stop_escalation(f"acknowledged by {actor}")
            await self._page_action(PagingActivities.page_acknowledge, actor, "")
            await self._post(f"{s.incident_id} acknowledged by {actor}", f"ack:{data['n']}")
        elif effect.kind == "classify":
            self._schedule_next_update(workflow.now())
            await self._post(f"{s.incident_id} classified by {actor}: {s.severity.value} "
                             f"({s.severity.priority}), {s.scope.value}; owner {self._scope_owner()}",
                             f"classify:{data['n']}")
        elif effect.kind == "set_phase":
            await self._post(f"{s.incident_id} moved to {data['phase']} by {actor}", f"phase:{data['n']}")
            await self._tell_comms_phase()
        elif effect.kind == "estimate":
            await self._post(f"{actor} estimates {data['minutes']} min to resolve {s.incident_id}",
                             f"estimate:{data['n']}")
        elif effect.kind == "progress_note":
            await self._post(f"Progress from {actor}: {data['text']}", f"progress:{data['n']}")
        elif effect.kind == "status_update":
            await self._distribute_status_update(actor, data["text"], data["n"])
        elif effect.kind == "assign_task":
            await self._reach([data["assignee"]], [Channel.SLACK],
                              f"Task {data['task_id']} on {s.incident_id} for you ({data['priority']} priority): "
                              f"{data['title']}", f"task:{data['task_id']}")
        elif effect.kind == "report_data_loss":
            await self._check_data_loss(int(data["minutes"]))
        elif effect.kind == "trigger_business_incident":
            await self._start_business_incident(actor, data["reason"] or "declared by a person")
        elif effect.kind == "resolve":
            await self._resolve_incident(actor, data["n"])
        elif effect.kind == "reopen":
            await self._reopen_incident(actor, data["reason"])
        elif effect.kind == "late_pages":
            method = PagingActivities.page_acknowledge if s.status is Status.OPEN else PagingActivities.page_resolve
            await self._page_action(method, s.acknowledged_by or "", "", keys=data["keys"].split("\n"))
        elif effect.kind == "continue_as_new":
            pass  # the main loop continues as new once the recorded decisions are done
        elif effect.kind == "alerts_resolved":
            await self._suggest_resolution()
        elif effect.kind == "close":
            await self._close_incident(actor)
        elif effect.kind == "review_held" and workflow.patched("postmortem-redrafted-after-review"):
            await self._draft_postmortem()  # with the root cause and notes the review brought

    async def _suggest_resolution(self) -> None:
        """Every alert has resolved. A person decides, except where the policy lets a low severity go."""
        s = self.s
        if s.status is not Status.OPEN:
            return
        if s.severity in self.policy.response.auto_resolve_severities and s.confirmed:
            s.resolution = {"overview": "All alerts resolved.", "how_resolved": "The alerting condition cleared.",
                            "prevention": "To be decided at the review."}
            self._mark_resolved()
            self._note("resolve", f"All alerts resolved: {s.severity.value} resolved by policy", "policy")
            await self._resolve_incident("policy", f"policy-{self._reopens()}")
            return
        text = (f"All alerts of {s.incident_id} have resolved. Incident Commander, resolve it when you are sure "
                f"(incidentctl resolve {s.incident_id}).")
        await self._reach([self._ic()], [Channel.SLACK], text, f"suggest-resolve:{s.alert_count}")
        await self._post(text, f"suggest-resolve:{s.alert_count}")
        self._note("alert", f"All alerts resolved; resolution suggested to {self._ic()}")

    async def _page_action(self, method: Any, actor: str, note: str, keys: list[str] | None = None) -> None:
        for key in self.s.page_keys if keys is None else keys:
            _, failure = await attempt("paging", workflow.execute_activity_method(
                method, PageAction(incident_id=self.s.incident_id, dedup_key=key,
                                   provider=self.policy.paging_provider, actor=actor, note=note), **PAGING))
            if failure:
                self._note("page", failure)

    async def _close_pages(self, actor: str) -> None:
        await self._page_action(PagingActivities.page_resolve, actor, "resolved")

    # --- messages in ----------------------------------------------------------------------------

    @workflow.signal
    def alert(self, event: AlertEvent) -> None:
        """An alert of this incident's group (signal-with-start brings the first one)."""
        s = self.s
        first = s.alert_count == 0
        s.alert_count += 1
        fingerprint = event.fingerprint or event.dedup_key
        seen = s.alerts.get(fingerprint)
        if first:
            self._take_facts_from(event)
        if seen is None:
            s.alerts[fingerprint] = AlertSeen(status=event.status, title=event.title, last_at=workflow.now())
            self._note("alert", f"{event.status.value} alert from {event.source}: {event.title}")
        else:
            changed = seen.status is not event.status
            seen.count += 1
            seen.status, seen.last_at = event.status, workflow.now()
            if changed:
                self._note("alert", f"alert {event.status.value} again: {event.title}")
        if event.status is AlertStatus.FIRING and s.status is Status.RESOLVED and not first:
            self._note("alert", "An alert fires again on a resolved incident: the Incident Commander may reopen it")
        if self._history_is_long() and not any(e.kind == "continue_as_new" for e in s.pending):
            s.pending.append(Effect(kind="continue_as_new"))  # an alert storm: wake the loop to move on
        all_resolved = all(a.status is AlertStatus.RESOLVED for a in s.alerts.values())
        if event.status is AlertStatus.RESOLVED and all_resolved and s.status is Status.OPEN:
            s.pending.append(Effect(kind="alerts_resolved"))

    def _take_facts_from(self, event: AlertEvent) -> None:
        s, triage = self.s, self.policy.triage
        s.title, s.source, s.dedup_key = event.title, event.source, event.dedup_key
        s.service, s.description = event.service or event.labels.get("service", ""), event.description
        criteria = list(event.criteria)
        label = event.labels.get(triage.criterion_label, "")
        if label in CriticalCriterion.__members__.values():
            criteria.append(CriticalCriterion(label))
        s.criteria = criteria
        severity = event.severity
        for rule in triage.severity_rules:
            if severity is None and event.labels.get(rule.label) == rule.value:
                severity = rule.severity
        s.severity = Severity.SEV1 if criteria else (severity or triage.default_severity)
        s.scope = Scope(triage.default_scope)
        self._note("opened", f"Reported by {event.labels.get('reported_by') or event.source}: {event.title} "
                   f"(provisional {s.severity.value}{', critical: ' + ', '.join(criteria) if criteria else ''})")

    @workflow.signal
    def escalation_notice(self, notice: EscalationNotice) -> None:
        if notice.occurrence and notice.occurrence != self.s.occurrence:
            return  # a ladder left over from an earlier incident of the same alert group
        new_keys = [k for k in notice.page_keys if k not in self.s.page_keys]
        self.s.page_keys += new_keys
        self._note("page", notice.text)
        if new_keys and (self.s.acknowledged_by or self.s.status is not Status.OPEN):
            # a tier paged while the acknowledgement (or resolution) was on its way: close those too
            self.s.pending.append(Effect(kind="late_pages", data={"keys": "\n".join(new_keys)}))

    @workflow.signal(dynamic=True)
    def decision_signal(self, name: str, args: Sequence[RawValue]) -> None:
        """Every decision is also a signal (for the Temporal UI); a refused one goes on the timeline."""
        model = DECISIONS.get(name)
        if model is None or len(args) != 1:
            self._note("rejected", f"unknown signal {name!r} ignored")
            return
        try:
            decision = workflow.payload_converter().from_payload(args[0].payload, model)
            self._check(name, decision)
        except Exception as err:
            self._note("rejected", f"signal {name} refused: {err}")
            return
        self._record(name, decision)

    @workflow.query
    def state(self) -> IncidentState:
        return self.s.model_copy(update={"waiting_on": self._waiting_on()})

    # Updates: the same decisions, answered with a result or a clear refusal.

    @workflow.update
    def acknowledge(self, d: Acknowledge) -> str:
        return self._record("acknowledge", d)

    @acknowledge.validator
    def _acknowledge_ok(self, d: Acknowledge) -> None:
        self._check("acknowledge", d)

    @workflow.update
    def assign_role(self, d: AssignRole) -> str:
        return self._record("assign_role", d)

    @assign_role.validator
    def _assign_role_ok(self, d: AssignRole) -> None:
        self._check("assign_role", d)

    @workflow.update
    def classify(self, d: Classify) -> str:
        return self._record("classify", d)

    @classify.validator
    def _classify_ok(self, d: Classify) -> None:
        self._check("classify", d)

    @workflow.update
    def set_phase(self, d: SetPhase) -> str:
        return self._record("set_phase", d)

    @set_phase.validator
    def _set_phase_ok(self, d: SetPhase) -> None:
        self._check("set_phase", d)

    @workflow.update
    def estimate(self, d: Estimate) -> str:
        return self._record("estimate", d)

    @estimate.validator
    def _estimate_ok(self, d: Estimate) -> None:
        self._check("estimate", d)

    @workflow.update
    def progress_note(self, d: ProgressNote) -> str:
        return self._record("progress_note", d)

    @progress_note.validator
    def _progress_note_ok(self, d: ProgressNote) -> None:
        self._check("progress_note", d)

    @workflow.update
    def status_update(self, d: StatusUpdate) -> str:
        return self._record("status_update", d)

    @status_update.validator
    def _status_update_ok(self, d: StatusUpdate) -> None:
        self._check("status_update", d)

    @workflow.update
    def assign_task(self, d: AssignTask) -> str:
        return self._record("assign_task", d)

    @assign_task.validator
    def _assign_task_ok(self, d: AssignTask) -> None:
        self._check("assign_task", d)

    @workflow.update
    def complete_task(self, d: CompleteTask) -> str:
        return self._record("complete_task", d)

    @complete_task.validator
    def _complete_task_ok(self, d: CompleteTask) -> None:
        self._check("complete_task", d)

    @workflow.update
    def report_data_loss(self, d: ReportDataLoss) -> str:
        return self._record("report_data_loss", d)

    @report_data_loss.validator
    def _report_data_loss_ok(self, d: ReportDataLoss) -> None:
        self._check("report_data_loss", d)

    @workflow.update
    def trigger_business_incident(self, d: TriggerBusinessIncident) -> str:
        return self._record("trigger_business_incident", d)

    @trigger_business_incident.validator
    def _trigger_business_incident_ok(self, d: TriggerBusinessIncident) -> None:
        self._check("trigger_business_incident", d)

    @workflow.update
    def resolve(self, d: ResolveDecision) -> str:
        return self._record("resolve", d)

    @resolve.validator
    def _resolve_ok(self, d: ResolveDecision) -> None:
        self._check("resolve", d)

    @workflow.update
    def reopen(self, d: Reopen) -> str:
        return self._record("reopen", d)

    @reopen.validator
    def _reopen_ok(self, d: Reopen) -> None:
        self._check("reopen", d)

    @workflow.update
    def review_held(self, d: ReviewHeld) -> str:
        return self._record("review_held", d)

    @review_held.validator
    def _review_held_ok(self, d: ReviewHeld) -> None:
        self._check("review_held", d)

    @workflow.update
    def publish_postmortem(self, d: PublishPostmortem) -> str:
        return self._record("publish_postmortem", d)

    @publish_postmortem.validator
    def _publish_postmortem_ok(self, d: PublishPostmortem) -> None:
        self._check("publish_postmortem", d)

    @workflow.update
    def close(self, d: CloseIncident) -> str:
        return self._record("close", d)

    @close.validator
    def _close_ok(self, d: CloseIncident) -> None:
        self._check("close", d)

    # --- validation: who may decide what, and when ----------------------------------------------

    def _check(self, name: str, d: Decision) -> None:
        s = self.s
        if d.actor not in self.policy.people:
            raise ValueError(f"{d.actor!r} is not a person in the {self.policy.organisation} policy")
        allowed = self.policy.allowed_roles(name)
        if allowed and not any(self._holds(d.actor, role) for role in allowed):
            names = " or ".join(r.value.replace("_", " ") for r in allowed)
            raise ValueError(f"only the {names} can {name.replace('_', ' ')} on {s.incident_id}; "
                             f"{d.actor} holds none of those roles")
        if s.status is Status.CLOSED:
            raise ValueError(f"{s.incident_id} is closed")
        getattr(self, f"_check_{name}")(d)

    def _check_acknowledge(self, d: Acknowledge) -> None:
        self._require_open()
        if self.s.acknowledged_by:
            raise ValueError(f"{self.s.incident_id} is already acknowledged by {self.s.acknowledged_by}")

    def _check_assign_role(self, d: AssignRole) -> None:
        if d.person not in self.policy.people:
            raise ValueError(f"{d.person!r} is not a person in the policy")

    def _check_classify(self, d: Classify) -> None:
        self._require_open()
        if d.kind is IncidentKind.DISTURBANCE and self.s.confirmed:
            raise ValueError(f"{self.s.incident_id} is already confirmed as an incident; resolve it instead")

    def _check_set_phase(self, d: SetPhase) -> None:
        self._require_open()
        allowed = PHASE_MOVES.get(self.s.phase, set())
        if d.phase not in allowed:
            hint = {Phase.RESOLUTION: " (use resolve)", Phase.PUBLISHING: " (use publish)",
                    Phase.CLOSED: " (use close)"}.get(d.phase, "")
            raise ValueError(f"{self.s.incident_id} cannot move from {self.s.phase.value} to {d.phase.value}"
                             f"{hint}; allowed: {', '.join(sorted(p.value for p in allowed)) or 'none'}")

    def _check_estimate(self, d: Estimate) -> None:
        self._require_open()

    def _check_progress_note(self, d: ProgressNote) -> None:
        self._require_open()

    def _check_status_update(self, d: StatusUpdate) -> None:
        self._require_open()

    def _check_assign_task(self, d: AssignTask) -> None:
        self._require_open()
        if d.assignee not in self.policy.people:
            raise ValueError(f"{d.assignee!r} is not a person in the policy")

    def _check_complete_task(self, d: CompleteTask) -> None:
        task = next((t for t in self.s.tasks if t.task_id == d.task_id), None)
        if task is None:
            raise ValueError(f"no task {d.task_id} on {self.s.incident_id}")
        if task.done:
            raise ValueError(f"task {d.task_id} is already done")

    def _check_report_data_loss(self, d: ReportDataLoss) -> None:
        self._require_open()

    def _check_trigger_business_incident(self, d: TriggerBusinessIncident) -> None:
        self._require_open()
        if not self.s.confirmed:
            raise ValueError(f"{self.s.incident_id} is not confirmed as an incident yet: classify it first")
        if self.s.business_incident:
            raise ValueError(f"{self.s.incident_id} is already a business incident")
        if self.s.phase not in BUSINESS_INCIDENT_PHASES:
            raise ValueError(f"a business incident begins during investigation or identification; "
                             f"{self.s.incident_id} is in {self.s.phase.value}")

    def _check_resolve(self, d: ResolveDecision) -> None:
        self._require_open()
        if not self.s.confirmed:
            raise ValueError(f"{self.s.incident_id} is not confirmed yet: classify it first")
        missing = [n for n, v in (("overview", d.overview), ("how it was resolved", d.how_resolved),
                                  ("prevention", d.prevention)) if not v.strip()]
        if missing:
            raise ValueError(f"the resolution message needs {', '.join(missing)}")

    def _check_reopen(self, d: Reopen) -> None:
        if self.s.status is not Status.RESOLVED:
            raise ValueError(f"{self.s.incident_id} is {self.s.status.value}; only a resolved incident reopens")

    def _check_review_held(self, d: ReviewHeld) -> None:
        self._require_resolved("hold its review")
        if self.s.checklist["review_held"]:
            raise ValueError(f"the review of {self.s.incident_id} is already recorded")

    def _check_publish_postmortem(self, d: PublishPostmortem) -> None:
        self._require_resolved("publish its postmortem")
        if not self.s.checklist["postmortem_drafted"]:
            raise ValueError(f"the postmortem of {self.s.incident_id} is not drafted yet")
        if self.policy.post_incident.require_review and not self.s.checklist["review_held"]:
            raise ValueError(f"hold the review first (incidentctl review-held {self.s.incident_id})")

    def _check_close(self, d: CloseIncident) -> None:
        self._require_resolved("close it")
        unfinished = [t.task_id for t in self.s.tasks if not t.done]
        if unfinished:
            raise ValueError(f"{self.s.incident_id} cannot close: tasks {', '.join(unfinished)} are not done "
                             f"(incidentctl task done {self.s.incident_id} TASK)")
        missing = self._documentation_missing()
        if missing:
            raise ValueError(f"{self.s.incident_id} cannot close: documentation incomplete, missing "
                             f"{', '.join(missing)}")

    def _require_open(self) -> None:
        if self.s.status is not Status.OPEN:
            hint = f" (incidentctl reopen {self.s.incident_id})" if self.s.status is Status.RESOLVED else ""
            raise ValueError(f"{self.s.incident_id} is {self.s.status.value}; reopen it first{hint}")

    def _require_resolved(self, what: str) -> None:
        if self.s.status is not Status.RESOLVED:
            raise ValueError(f"{self.s.incident_id} is {self.s.status.value}: resolve it before you {what}")

    def _documentation_missing(self) -> list[str]:
        post = self.policy.post_incident
        required = {"project_log": post.project_log, "global_log": post.global_log,
                    "pmo_notified": post.notify_pmo, "postmortem_drafted": True,
                    "review_held": post.require_review, "postmortem_published": post.require_published_postmortem}
        return [item for item in CHECKLIST if required[item] and not self.s.checklist[item]]

    # --- recording: what each accepted decision changes at once ---------------------------------

    def _record(self, name: str, d: Decision) -> str:
        s, now = self.s, workflow.now()
        number = str(sum(1 for e in s.timeline if e.kind == name) + 1)
        data = {"n": number}
        acts = True  # False: nothing for the main loop to do beyond what changes here
        if isinstance(d, Acknowledge):
            s.acknowledged_by, s.acknowledged_at = d.actor, now
            message = f"{s.incident_id} acknowledged by {d.actor}"
        elif isinstance(d, AssignRole):
            s.assigned[d.role] = d.person
            message, acts = f"{d.person} is now {d.role.value} of {s.incident_id}", False
        elif isinstance(d, Classify):
            message = self._record_classification(d)
            # before confirmation, the main loop's next step (log or confirm) is the effect
            acts = s.kind is not IncidentKind.DISTURBANCE and s.confirmed
        elif isinstance(d, SetPhase):
            s.phase = d.phase
            data["phase"] = d.phase.value
            if workflow.patched("phase-move-is-progress"):  # a phase move is progress (seed 002's window)
                s.progress_due = now + timedelta(minutes=self.policy.response.progress_window_minutes)
            message = f"{s.incident_id} is now in {d.phase.value}"
        elif isinstance(d, Estimate):
            s.estimate_due = now + timedelta(minutes=d.minutes)
            s.progress_due = now + timedelta(minutes=self.policy.response.progress_window_minutes)
            data["minutes"] = str(d.minutes)
            message = f"estimate of {d.minutes} min recorded; check-back at {s.estimate_due:%H:%M} UTC"
        elif isinstance(d, ProgressNote):
            s.progress_due = now + timedelta(minutes=self.policy.response.progress_window_minutes)
            data["text"] = d.text
            message = "progress noted"
        elif isinstance(d, StatusUpdate):
            self._schedule_next_update(now)
            data["text"] = d.text
            message = f"status update sent; next due {s.next_update_due:%H:%M} UTC" if s.next_update_due \
                else "status update sent"
        elif isinstance(d, AssignTask):
            task = Task(task_id=f"T{len(s.tasks) + 1}", title=d.title, assignee=d.assignee,
                        business_impact=d.business_impact, created_at=now)
            s.tasks = sorted([*s.tasks, task], key=lambda t: (t.done, t.business_impact.value, t.task_id))
            data |= {"task_id": task.task_id, "assignee": d.assignee, "title": d.title,
                            "priority": d.business_impact.priority}
            message = f"task {task.task_id} assigned to {d.assignee}"
        elif isinstance(d, CompleteTask):
            for task in s.tasks:
                if task.task_id == d.task_id:
                    task.done = True
            s.tasks = sorted(s.tasks, key=lambda t: (t.done, t.business_impact.value, t.task_id))
            message, acts = f"task {d.task_id} done", False
        elif isinstance(d, ReportDataLoss):
            s.data_loss_minutes = d.minutes
            data["minutes"] = str(d.minutes)
            message = f"{d.minutes} min of data loss recorded"
        elif isinstance(d, TriggerBusinessIncident):
            s.business_incident = True
            data["reason"] = d.reason
            message = "business incident triggered: the message loop starts"
        elif isinstance(d, ResolveDecision):
            s.resolution = {"overview": d.overview, "how_resolved": d.how_resolved, "prevention": d.prevention}
            if d.root_cause:
                s.resolution["root_cause"] = d.root_cause
            self._mark_resolved()
            message = f"{s.incident_id} resolved"
        elif isinstance(d, Reopen):
            s.status, s.phase = Status.OPEN, Phase.INVESTIGATION
            s.resolved_at = s.acknowledged_by = s.acknowledged_at = s.review_due = s.next_review_reminder = None
            s.rto_warned = s.rto_breached = False
            s.checklist = dict.fromkeys(CHECKLIST, False)
            data["reason"] = d.reason
            message = f"{s.incident_id} reopened"
        elif isinstance(d, ReviewHeld):
            s.checklist["review_held"] = True
            s.resolution |= {k: v for k, v in (("root_cause", d.root_cause), ("review_notes", d.notes)) if v}
            message = "review recorded"
        elif isinstance(d, PublishPostmortem):
            s.checklist["postmortem_published"] = True
            s.postmortem_url = d.url
            s.phase = Phase.PUBLISHING
            message, acts = "postmortem published", False
        elif isinstance(d, CloseIncident):
            s.status, s.phase, s.closed_at = Status.CLOSED, Phase.CLOSED, now
            message = f"{s.incident_id} closed"
        self._note(name, message + (f": {getattr(d, 'note', '')}" if getattr(d, "note", "") else ""), d.actor)
        if acts:
            s.pending.append(Effect(kind=name, actor=d.actor, data=data))
        return message

    def _record_classification(self, d: Classify) -> str:
        s = self.s
        if d.criteria:
            s.criteria = list(d.criteria)
        if d.severity or d.criteria:
            s.severity = Severity.SEV1 if d.criteria else (d.severity or s.severity)
        if d.scope:
            s.scope = d.scope
        if d.kind:
            s.kind, s.assessed_by = d.kind, d.actor
        return (f"classified {s.kind.value if s.kind else 'unassessed'}, {s.severity.value} "
                f"({s.severity.priority}), {s.scope.value}; action plan owner {self._scope_owner() or 'nobody'}")

    def _mark_resolved(self) -> None:
        s = self.s
        s.status, s.phase, s.resolved_at = Status.RESOLVED, Phase.RESOLUTION, workflow.now()
        s.progress_due = s.estimate_due = s.next_update_due = None

    # --- small helpers --------------------------------------------------------------------------

    def _note(self, kind: str, text: str, actor: str | None = None) -> None:
        self.s.timeline.append(TimelineEntry(at=workflow.now(), kind=kind, text=text, actor=actor))

    def _holds(self, person: str, role: Role) -> bool:
        return self.s.assigned.get(role) == person or self.policy.holds(person, role)

    def _ic(self) -> str:
        holders = self.policy.holders(Role.INCIDENT_COMMANDER)
        return self.s.assigned.get(Role.INCIDENT_COMMANDER) or (holders[0] if holders else "")

    def _update_owner(self) -> str:
        return (self.s.assigned.get(Role.PROJECT_MANAGER) or self.s.assigned.get(Role.COMMUNICATIONS_LEAD)
                or self._ic())

    def _scope_owner(self) -> str:
        triage = self.policy.triage
        role = triage.global_owner_role if self.s.scope is Scope.GLOBAL else triage.local_owner_role
        return self.s.assigned.get(role) or next(iter(self.policy.holders(role)), "")

    def _people_for(self, roles: list[Role]) -> list[str]:
        return self.policy.expand([f"role:{r.value}" for r in roles], self.s.assigned)

    def _review_attendees(self) -> list[str]:
        return self._people_for([Role.INCIDENT_COMMANDER, Role.COMMUNICATIONS_LEAD, Role.RESPONSIBLE_DEVELOPER,
                                 Role.PROJECT_MANAGER])

    def _slack_ids(self, people: list[str]) -> list[str]:
        return [self.policy.people[p].slack_user_id for p in people
                if p in self.policy.people and self.policy.people[p].slack_user_id]

    def _service_restored(self) -> bool:
        return self.s.status is not Status.OPEN or self.s.phase is Phase.MONITORING

    def _how_identified(self) -> str:
        s = self.s
        source = "a person's report" if s.source == "manual" else f"an alert from {s.source}"
        return f"Detected through {s.alert_count} alert(s), first by {source} at {s.opened_at:%Y-%m-%d %H:%M} UTC."

    def _subject(self) -> str:
        return f"{self.s.incident_id}: {self.s.title}"

    def _reopens(self) -> int:
        """How many times the incident was reopened: part of the keys of steps a reopen repeats."""
        return sum(1 for entry in self.s.timeline if entry.kind == "reopen")

    def _rto_warning_at(self, rto_minutes: int) -> datetime:
        """The RTO warning: at the policy's share (80 %) of the objective, counted back from its due time."""
        assert self.s.rto_due is not None
        early = round(rto_minutes * 60 * (1 - self.policy.response.rto_warning_ratio))
        return self.s.rto_due - timedelta(seconds=early)

    def _escalation_id(self) -> str:
        # The occurrence keeps a recurring alert group's new incident clear of the old one's children.
        return f"{self.s.occurrence}-escalation-{self.s.escalation_round}"

    def _comms_id(self) -> str:
        return comms_workflow_id(self.s.occurrence)

    async def _post(self, text: str, key: str, mentions: list[str] | None = None) -> None:
        if not self.s.channel:
            return
        failure = await post(self.s.channel, text, f"{self.s.occurrence}:{key}", mentions)
        if failure:
            self._note("delivery", failure)

    async def _reach(self, people: list[str], channels: list[Channel], text: str, key: str) -> Reached:
        reached = await reach(self.policy, [p for p in people if p], channels, text, key,
                              incident_id=self.s.incident_id, severity=self.s.severity, subject=self._subject(),
                              occurrence=self.s.occurrence)
        self.s.page_keys += [k for k in reached.page_keys if k not in self.s.page_keys]
        for failure in reached.failures:
            self._note("delivery", failure)
        return reached

    async def _email_client_contacts(self, subject: str, text: str, key: str) -> None:
        service = self.policy.services.get(self.s.service)
        if not (self.policy.cadence.notify_client_contacts and service and service.client_contacts):
            return
        _, failure = await attempt("client e-mail", workflow.execute_activity_method(
            EmailActivities.send_email,
            EmailRequest(to=service.client_contacts, subject=subject, text=text,
                         idempotency_key=f"{self.s.occurrence}:{key}:client"), **CHAT))
        if failure:
            self._note("delivery", failure)

    async def _write_incident_log_entry(self, event: str, log: str = "project") -> bool:
        s = self.s
        fields = {"event": event, "severity": s.severity.value, "phase": s.phase.value, "scope": s.scope.value,
                  "opened": f"{s.opened_at:%Y-%m-%d %H:%M} UTC", "service": s.service or "-"}
        if s.resolution:
            fields |= s.resolution
        result, failure = await attempt("incident log", workflow.execute_activity_method(
            RecordsActivities.append_incident_log,
            IncidentLogEntry(log=log, project=s.service or "unassigned", incident_id=s.incident_id, title=s.title,
                             fields=fields,
                             idempotency_key=f"{s.incident_id}:{s.opened_at:%Y%m%d%H%M}:{log}:{event}:{s.escalation_round}",
                             log_dir=self.policy.post_incident.log_dir), **LOCAL))
        self._note("log", failure or f"{log} incident log: {event} entry written")
        return result is not None

    def _waiting_on(self) -> list[str]:
        s = self.s
        waits: list[str] = []
        if s.kind is None and s.assessment_due:
            waits.append(f"initial assessment by {s.assessment_due:%H:%M} UTC")
        if s.status is Status.OPEN and s.confirmed:
            if not s.acknowledged_by:
                waits.append("acknowledgement (escalating)")
            if s.estimate_due is None and Role.RESPONSIBLE_DEVELOPER in s.assigned:
                waits.append(f"estimate from {s.assigned[Role.RESPONSIBLE_DEVELOPER]}")
            if s.next_update_due:
                waits.append(f"status update from {self._update_owner()} by {s.next_update_due:%H:%M} UTC")
            waits += [f"task {t.task_id} from {t.assignee}" for t in s.tasks if not t.done]
        if s.status is Status.RESOLVED:
            missing = self._documentation_missing()
            if missing:
                waits.append("documentation: " + ", ".join(missing))
        return waits

    def _visibility_snapshot(self) -> tuple[Any, ...]:
        s = self.s
        return (s.severity, s.phase, s.status, s.scope, s.service, s.kind, bool(s.acknowledged_by),
                tuple(self._waiting_on()))

    def _visibility_is_stale(self) -> bool:
        return self._visibility_snapshot() != self._visible

    def _refresh_visibility(self) -> None:
        """Search attributes and the UI's current details follow every change."""
        s = self.s
        if not self._visibility_is_stale():
            return
        self._visible = self._visibility_snapshot()
        workflow.upsert_search_attributes([
            sa.SEVERITY.value_set(s.severity.value), sa.PHASE.value_set(s.phase.value),
            sa.STATUS.value_set(s.status.value), sa.SCOPE.value_set(s.scope.value),
            sa.SERVICE.value_set(s.service or "-"), sa.KIND.value_set(s.kind.value if s.kind else "unassessed"),
            sa.ACKNOWLEDGED.value_set(bool(s.acknowledged_by)),
        ])
        ack = f"acked by {s.acknowledged_by}" if s.acknowledged_by else "not acknowledged"
        waiting = "; ".join(self._waiting_on()) or "nothing"
        workflow.set_current_details(
            f"**{s.severity.value} · {s.phase.value} · {s.status.value}** · {ack} · IC {self._ic() or '-'}\n\n"
            f"{s.title}\n\nWaiting on: {waiting}")

    def _history_is_long(self) -> bool:
        # Our own limit, not the server's suggestion: the time-skipping test server suggests it early and
        # often, and a run that continues as new at once would suggest it again.
        return workflow.info().get_current_history_length() > self.history_limit

    async def _continue_as_new(self, input: IncidentInput) -> None:
        await workflow.wait_condition(workflow.all_handlers_finished)
        await self._act_on_recorded_decisions()
        workflow.continue_as_new(IncidentInput(incident_id=self.s.incident_id, policy=self.policy,
                                               ui_url=self.ui_url, state=self.s,
                                               history_limit=self.history_limit),
                                  memo=workflow.memo())  # the title `incidentctl list` shows
