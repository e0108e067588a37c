"""The clocks of an open incident, and the people they bring in when they run out.

Seed 002: an estimate from the responsible developer, a check-back when it elapses, a call when there
is no progress, and the client and leads updated every 30 minutes; seed 003: the RTO watched (a
warning at 80 %, a breach escalated) and the RPO checked against reported data loss; seed 004: the
business incident's message loop. Each deadline is a `Deadline` over the state, so a decision moves it
while the watch waits, and a missed-update notice that is still being delivered holds nothing back.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.own_workflows import OwnWorkflowActivities
    from workflows.approvals.held import Approvals
    from workflows.comms.model import CommsInput, LoopStart
    from workflows.comms.workflow import CommsWorkflow
    from workflows.contracts.activity_io import Reached
    from workflows.contracts.clock import local
    from workflows.contracts.policy import CLIENT_CONTACTS, Policy
    from workflows.contracts.roles import RoleHolders, expand
    from workflows.contracts.temporal.ids import comms_workflow_id
    from workflows.contracts.temporal.priority import STAKEHOLDERS
    from workflows.contracts.vocabulary import Channel, EvaluationPoint, IncidentKind, Role, Status
    from workflows.delivery.deliveries import Deliveries
    from workflows.delivery.reach import attempt, starting_own_workflow
    from workflows.incident.deadline import Clock
    from workflows.incident.derive import (
        cadence_due,
        incident_commander,
        people_for,
        rto_warning_at,
        scope_owner,
        service_restored,
        update_owner,
    )
    from workflows.incident.lifecycle import progress_window
    from workflows.incident.model import ClientsEvaluated, IncidentState, PhaseChanged
    from workflows.incident.rules import client_audiences, open_evaluation


class Watches:
    def __init__(
        self, s: IncidentState, policy: Policy, out: Deliveries, approvals: Approvals, clock: Clock, ui_url: str
    ) -> None:
        self.s, self.policy, self.out, self.approvals, self.clock, self.ui_url = (
            s,
            policy,
            out,
            approvals,
            clock,
            ui_url,
        )
        self._told = 0  # phases the message loop has been told of
        self._told_evaluations = 0  # the owner's answers at evaluation points the message loop has been told of

    def _open(self) -> bool:
        return self.s.status is Status.OPEN and self.s.confirmed

    def _when_open(self, due: datetime | None) -> datetime | None:
        return due if self._open() else None

    # --- seed 002: estimate, progress, call -------------------------------------------------------

    def ask_for_estimate(self) -> None:
        """Seed 002: assign the task to the responsible developer and request an estimate."""
        developer = self.s.assigned.get(Role.RESPONSIBLE_DEVELOPER)
        if not developer:
            self.out.note("estimate", "No responsible developer to ask for an estimate")
            return
        self.out.reach(
            [developer],
            self.out.chats,
            f"{self.s.incident_id} is assigned to you. Please give an estimate for "
            f"resolution (incidentctl estimate {self.s.incident_id} MINUTES).",
            f"estimate:request:{self.s.reopens}",
        )
        self.out.note("estimate", f"Asked {developer} for an estimate")

    async def check_back_on_estimates(self) -> None:
        """Seed 002/004: when an estimate elapses, check back with whoever gave it."""
        deadline = self.clock.deadline(lambda: self._when_open(self.s.estimate_due))
        while True:
            due = await deadline.passed()
            who = self.s.estimate_by or self.s.assigned.get(Role.RESPONSIBLE_DEVELOPER, "")
            self.s.estimate_due = None
            self.out.reach(
                [who],
                self.out.chats,
                f"Your estimate for {self.s.incident_id} has elapsed: where are we? "
                f"(incidentctl note / estimate {self.s.incident_id})",
                f"estimate:elapsed:{due:%Y%m%d%H%M}",
            )
            self.out.note("estimate", f"Estimate elapsed; checked back with {who}")

    async def convene_call_without_progress(self) -> None:
        """Seed 002: no progress within the window -> a call with the developer, CTO and Account Manager."""
        deadline = self.clock.deadline(lambda: self._when_open(self.s.progress_due))
        while True:
            await deadline.passed()
            s = self.s
            s.calls_convened += 1
            s.progress_due = progress_window(self.policy, workflow.now())
            people = people_for(s, self.policy, self.policy.response.call_roles)
            text = (
                f"No progress on {s.incident_id} in {self.policy.response.progress_window_minutes} min: "
                f"join the call now: {s.conference_url or 'the incident channel'}"
            )
            self.out.reach(people, [Channel.PAGE, *self.out.chats], text, f"call:{s.calls_convened}")
            self.out.post(text, f"call:{s.calls_convened}", mentions=people)
            self.out.note("call", f"Call convened with {', '.join(people)} (no progress)")

    # --- seeds 002, 000: the update cadence -------------------------------------------------------

    async def remind_before_each_update(self) -> None:
        before = self.policy.cadence.nudge_before_minutes
        if not before:
            return
        deadline = self.clock.deadline(
            lambda: (
                None
                if self.s.update_nudged or not self.s.next_update_due
                else self._when_open(self.s.next_update_due - timedelta(minutes=before))
            )
        )
        while True:
            await deadline.passed()
            owner, due = update_owner(self.s, self.policy), self.s.next_update_due
            assert due is not None  # the deadline passes only while an update is due
            self.s.update_nudged = True
            self.out.reach(
                [owner],
                self.out.chats,
                f"A status update on {self.s.incident_id} is due at {local(self.policy, due)} "
                f"(incidentctl update {self.s.incident_id} TEXT).",
                f"update-nudge:{due:%Y%m%d%H%M}",
            )
            self.out.note("cadence", f"Reminded {owner}: status update due at {due:%H:%M}")

    async def report_missed_updates(self) -> None:
        deadline = self.clock.deadline(lambda: self._when_open(self.s.next_update_due))
        while True:
            missed = await deadline.passed()
            s, ic = self.s, incident_commander(self.s, self.policy)
            s.updates_missed += 1
            # the next interval counts from the missed one; an update given meanwhile moves it again
            s.next_update_due, s.update_nudged = cadence_due(self.policy, s.severity, missed), False
            self.out.reach(
                [ic],
                self.out.chats,
                f"The status update on {s.incident_id} due at {local(self.policy, missed)} was missed.",
                f"update-missed:{missed:%Y%m%d%H%M}",
            )
            self.out.note("cadence", f"Status update due at {missed:%H:%M} missed; told {ic}")
            if self.policy.cadence.no_change_updates:
                self._no_change_update(missed)

    def _no_change_update(self, missed: datetime) -> None:
        """Seed 003: everyone on the cadence hears from us, even when nothing has changed."""
        s = self.s
        last = next((e.at for e in reversed(s.timeline) if e.kind == "status_update"), s.opened_at)
        upcoming = f"; the next update is due by {local(self.policy, s.next_update_due)}" if s.next_update_due else ""
        text = f"no change since {local(self.policy, last)}: still in {s.phase.value}{upcoming}"
        self.distribute_status_update("policy", text, f"update:no-change:{missed:%Y%m%d%H%M}")
        self.out.note("cadence", f"No-change update sent: {text}")

    def distribute_status_update(self, actor: str, text: str, key: str) -> None:
        """Seed 002: the client and leads every 30 minutes; seed 000: centralised in the channel, and the internal
        lists; seed 003: departments and vendors too."""
        s, cadence = self.s, self.policy.cadence
        by = "" if actor == "policy" else f" from {actor}"
        body = f"Status update on {s.incident_id} ({s.phase.value}){by}: {text}"
        self.out.post(body, key)
        self.out.reach(expand(self.policy, cadence.leads, s.roles), self.out.chats, body, key)
        for address in cadence.lists:
            self.out.email(address, f"Update: {s.title}", body, f"{key}:{address}")
        outside = ([CLIENT_CONTACTS] if cadence.notify_client_contacts else []) + cadence.parties
        if outside:
            self.approvals.offer("status update", f"Update: {s.title}", body, outside, actor)

    async def invite_parties_to_bridge(self) -> None:
        """Seed 003's vendor liaison: the parties the policy names are e-mailed the bridge's link once it is open."""
        parties = self.policy.response.bridge_parties
        if not parties:
            return
        await workflow.wait_condition(lambda: bool(self.s.conference_url) or self.s.status is Status.CLOSED)
        s = self.s
        if not s.conference_url:
            return
        text = f"{s.incident_id}: {s.title}. You are part of the recovery: please join the bridge, {s.conference_url}"
        self.approvals.offer("bridge invitation", f"Join the bridge: {s.title}", text, parties, "policy")

    # --- seed 003: RTO and RPO ----------------------------------------------------------------------

    def _rto_watched(self, due: datetime | None) -> datetime | None:
        return None if service_restored(self.s) else self._when_open(due)

    async def warn_before_rto(self) -> None:
        deadline = self.clock.deadline(
            lambda: None if self.s.rto_warned else self._rto_watched(rto_warning_at(self.s, self.policy))
        )
        while True:
            await deadline.passed()
            s, service = self.s, self.policy.services[self.s.service]
            s.rto_warned = True
            text = (
                f"RTO warning: {s.incident_id} has used {int(self.policy.response.rto_warning_ratio * 100)} % "
                f"of the {service.rto_minutes} min RTO for {s.service}"
            )
            ic = incident_commander(s, self.policy)
            self.out.post(text, f"rto:warning:{s.reopens}", mentions=[ic])
            self.out.note("rto", text)

    async def escalate_rto_breach(self) -> None:
        deadline = self.clock.deadline(lambda: None if self.s.rto_breached else self._rto_watched(self.s.rto_due))
        while True:
            await deadline.passed()
            s = self.s
            s.rto_breached = True
            minutes = self.policy.services[s.service].rto_minutes
            self.escalate_breach(
                f"RTO breached: {s.service} not restored within {minutes} min", f"rto:breach:{s.reopens}"
            )

    def check_data_loss(self, minutes: int) -> None:
        """Seed 003's RPO: warn at the policy's share of the objective, escalate a breach."""
        service = self.policy.services.get(self.s.service)
        if not (service and service.rpo_minutes):
            return
        if minutes > service.rpo_minutes:
            self.escalate_breach(
                f"RPO breached: {minutes} min of data lost, objective {service.rpo_minutes} min",
                f"rpo:breach:{minutes}",
            )
        elif minutes >= service.rpo_minutes * self.policy.response.rto_warning_ratio:
            text = f"RPO warning: {minutes} min of data lost, objective {service.rpo_minutes} min"
            self.out.post(f"{self.s.incident_id}: {text}", f"rpo:warning:{minutes}")
            self.out.note("rpo", text)

    def escalate_breach(self, text: str, key: str) -> None:
        people = expand(self.policy, self.policy.response.breach_notify, self.s.roles)
        message = f"{self.s.incident_id}: {text}"
        self.out.reach(people, self.policy.response.breach_channels, message, key)
        self.out.post(message, key)
        self.out.note("breach", f"{text}; escalated to {', '.join(people) or 'nobody'}")

    # --- seed 002: leadership out of hours ----------------------------------------------------------

    def reach_leadership_if_out_of_hours(self) -> None:
        """Seed 002: out of working hours or at weekends, leadership is contacted via Telegram, acked or not."""
        hours = self.policy.business_hours
        if hours.contains(workflow.now()):
            return
        s = self.s
        people = expand(self.policy, hours.out_of_hours_notify, s.roles)

        def record(reached: Reached) -> None:
            self.out.note(
                "out_of_hours",
                f"Out of business hours ({hours.timezone}): leadership reached: "
                + "; ".join(reached.lines or ["nobody"]),
            )

        self.out.reach(
            people,
            hours.out_of_hours_channels,
            f"Out of hours: [{s.severity.value}] {s.incident_id}: {s.title}. Immediate attention needed. "
            f"{self.ui_url}".strip(),
            f"out-of-hours:{s.reopens}",
            then=record,
        )

    # --- seed 001: disturbances are followed up ------------------------------------------------------

    def tell_disturbance_owner(self) -> None:
        """The owner of a disturbance (classified or downgraded so) hears it is theirs and when to follow it up."""
        s = self.s
        if s.disturbances_told >= s.disturbances_taken_up or s.follow_up_due is None:
            return
        s.disturbances_told = s.disturbances_taken_up
        owner = scope_owner(s, self.policy)
        self.out.reach(
            [owner],
            self.out.chats,
            f"Disturbance {s.incident_id}: {s.title}. It is yours to follow up by "
            f"{local(self.policy, s.follow_up_due, with_date=True)}. Complete it: incidentctl close {s.incident_id} "
            f"--stakeholders-satisfied --measures TEXT; if it is an incident after all: incidentctl classify "
            f"{s.incident_id} --kind incident --note REASON.",
            f"disturbance:{s.disturbances_taken_up}",
        )
        self.out.log_entry("disturbance", log="project")
        self.out.note("disturbance", f"told {owner or 'nobody'} the disturbance is theirs to follow up")

    async def remind_of_disturbance_follow_up(self) -> None:
        """On the follow-up date, and each period after, the owner is reminded until the disturbance is completed."""
        s = self.s

        def follow_up_due() -> datetime | None:
            return s.follow_up_due if s.kind is IncidentKind.DISTURBANCE and s.status is Status.OPEN else None

        deadline = self.clock.deadline(follow_up_due)
        while True:
            due = await deadline.passed()
            s.follow_ups += 1
            s.follow_up_due = due + timedelta(hours=self.policy.triage.disturbance_follow_up_hours)
            owner = scope_owner(s, self.policy)
            self.out.reach(
                [owner],
                self.out.chats,
                f"Follow up the disturbance {s.incident_id} ({s.title}): complete it (incidentctl close "
                f"{s.incident_id} --stakeholders-satisfied --measures TEXT) or upgrade it to an incident. Next "
                f"reminder {local(self.policy, s.follow_up_due, with_date=True)}.",
                f"disturbance:follow-up:{s.follow_ups}",
            )
            self.out.note("disturbance", f"follow-up due: reminded {owner or 'nobody'}")

    # --- seed 001: client-communication evaluation points ------------------------------------------

    def ask_about_clients(self, point: EvaluationPoint, label: str) -> None:
        """At the policy's evaluation points the owner is asked whether and how to tell clients."""
        s = self.s
        e = open_evaluation(s, self.policy, point, label, workflow.now())
        if e is None:
            return
        text = (
            f"Evaluation point on {s.incident_id} ({label}): do we tell clients now, and how? "
            f"incidentctl clients {s.incident_id} --now|--not-now --reason TEXT "
            f"[--audience {'|'.join(client_audiences(self.policy))}]"
        )
        key = f"evaluation:{e.number}:{e.asks}"
        self.out.reach([e.asked_of], self.out.chats, text, key)
        self.out.post(text, key, mentions=[e.asked_of])
        self.out.note("evaluation", f"asked {e.asked_of or 'nobody'} whether and how to tell clients ({label})")

    def _answers(self) -> int:
        return sum(e.tell is not None for e in self.s.evaluations)

    def _answer(self, n: int) -> ClientsEvaluated:
        """The n-th answer given at an evaluation point (from 0), as the message loop hears it."""
        e = [e for e in self.s.evaluations if e.tell is not None][n]
        return ClientsEvaluated(
            number=e.number, phase=e.phase, tell=bool(e.tell), audiences=e.audiences, reason=e.reason, by=e.decided_by
        )

    # --- seed 004: the business incident's message loop -------------------------------------------

    async def run_message_loop(self) -> None:
        """Start the Message Creation Loop once the incident is a business incident; tell it every phase, and
        who holds the roles whenever that changes (an assignment, a hand-over, a new shift on call)."""
        s = self.s
        await workflow.wait_condition(lambda: s.business_incident)
        told = len(s.phases_entered)  # the loop starts with the facts of now; a phase entered meanwhile is told
        # a new loop hears every answer given at an evaluation point; a loop that ran before this run, those since
        self._told_evaluations = self._answers() if s.comms_workflow_id else 0
        if not s.comms_workflow_id:
            await self._start_message_loop()
        self._told = told
        self._told_roles = s.roles
        while True:
            await workflow.wait_condition(
                lambda: (
                    len(s.phases_entered) > self._told
                    or self._roles_changed()
                    or self._answers() > self._told_evaluations
                )
            )
            if len(s.phases_entered) > self._told:
                self._told_roles = s.roles
                phase = s.phases_entered[self._told]
                facts = s.facts(self.ui_url).model_copy(update={"phase": phase})  # the facts carry the roles
                await self._tell_message_loop(
                    CommsWorkflow.incident_phase_changed, PhaseChanged(phase=phase, facts=facts)
                )
                self._told += 1
            elif self._answers() > self._told_evaluations:
                answer = self._answer(self._told_evaluations)
                await self._tell_message_loop(CommsWorkflow.clients_evaluated, answer)
                self._told_evaluations += 1
            else:
                self._told_roles = s.roles
                await self._tell_message_loop(CommsWorkflow.incident_roles_changed, self._told_roles)

    def _roles_changed(self) -> bool:
        """Compared as dicts: this runs at every activation of a business incident."""
        return self.s.assigned != self._told_roles.assigned or self.s.on_call != self._told_roles.on_call

    def message_loop_caught_up(self) -> bool:
        """The message loop has heard of every phase (the incident waits for this before it ends)."""
        return not self.s.comms_workflow_id or self._told == len(self.s.phases_entered)

    async def _start_message_loop(self) -> None:
        """Started as a workflow of its own, not a child (activities/own_workflows.py says why)."""
        s = self.s
        workflow_id = comms_workflow_id(s.occurrence)
        start = LoopStart(
            workflow_id=workflow_id,
            input=CommsInput(
                facts=s.facts(self.ui_url),
                policy=self.policy,
                triggered_by=s.business_incident_by,
                reason=s.business_incident_reason,
            ),
        )
        started, failure = await attempt(
            "message loop",
            self.out.tracked(
                workflow.execute_activity_method(
                    OwnWorkflowActivities.start_message_loop, start, **starting_own_workflow(STAKEHOLDERS)
                )
            ),
        )
        if failure:
            self.out.note("business_incident", failure)
            return
        s.comms_workflow_id = workflow_id
        if started:
            self.out.note("business_incident", "Business incident: the message loop started")
        else:
            self.out.note("business_incident", f"Message loop {workflow_id} is already running")

    async def _tell_message_loop(self, signal: Any, news: PhaseChanged | RoleHolders | ClientsEvaluated) -> None:
        try:
            await self.out.tracked(workflow.get_external_workflow_handle(self.s.comms_workflow_id).signal(signal, news))
        except Exception:
            workflow.logger.info("message loop %s already finished", self.s.comms_workflow_id)
