"""IncidentWorkflow: one incident's whole process, from the first alert to the closed incident log.

The procedure reads like the seeds: the report is assessed (000, 001); a disturbance is logged and
closed (001); a confirmed incident is paged first, then gets its call, its channel and its people
(000, 002), and from then on its duties run side by side (response.py, watches.py) until it is
resolved; then the resolution message, the records and the review (aftermath.py) until it closes.

Decisions arrive as Updates (and Signals) named in workflows/contracts/decisions.py; the rules in rules.py
refuse them or change the state, and the duties, which wait on the state, act. Nothing from outside
can fail a workflow task: what does not fit is refused, or recorded on the timeline and survived.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Sequence
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RawValue

with workflow.unsafe.imports_passed_through():
    from workflows.approvals.held import Approvals
    from workflows.contracts import limits
    from workflows.contracts.activity_io import DeliveryReport, RecordView
    from workflows.contracts.clock import local
    from workflows.contracts.decisions import INCIDENT_DECISIONS
    from workflows.contracts.roles import schedules_in_use
    from workflows.contracts.temporal import ids
    from workflows.contracts.trust import verify
    from workflows.contracts.vocabulary import AlertStatus, EvaluationPoint, IncidentKind, Phase, Role, Status
    from workflows.delivery.deliveries import Deliveries
    from workflows.incident import lifecycle, rules
    from workflows.incident.aftermath import Aftermath
    from workflows.incident.deadline import Clock
    from workflows.incident.derive import incident_commander, people_for, waiting_on
    from workflows.incident.inputs import EscalationNotice, IncidentInput
    from workflows.incident.model import (
        Acknowledge,
        AlertEvent,
        ApproveChannel,
        ApproveStatement,
        AssignTask,
        Classify,
        CompleteTask,
        Decision,
        DeclineChannel,
        DraftStatement,
        Escalate,
        EscalateTask,
        IncidentState,
        PlanUpdated,
        ReassignTask,
        Reopen,
        ReportDataLoss,
        ReprioritiseTask,
        RequestChannel,
        ReviewHeld,
        SendResolution,
        SetPhase,
        StatusUpdate,
        UpdateTask,
    )
    from workflows.incident.response import Response
    from workflows.incident.visibility import Visibility
    from workflows.incident.watches import Watches
    from workflows.oncall.lookup import MaintenanceWindow, who_is_on_call
    from workflows.oncall.model import SilenceLifted
    from workflows.records.keeper import RecordKeeper
    from workflows.records.writer import RecordNews
    from workflows.recovery.plan import RecoveryPlan


@workflow.defn(name=ids.INCIDENT_WORKFLOW)
class IncidentWorkflow:
    @workflow.init
    def __init__(self, input: IncidentInput) -> None:
        self.policy, self.ui_url, self.history_limit = input.policy, input.ui_url, input.history_limit
        self.s = input.state or IncidentState(
            incident_id=input.incident_id, title="(no alert yet)", opened_at=workflow.now()
        )
        self.out = Deliveries(self.s, self.policy)
        self.approvals = Approvals(self.s, self.policy, self.out)
        self.clock = Clock()
        self.response = Response(self.s, self.policy, self.out, self.clock, self.ui_url)
        self.watches = Watches(self.s, self.policy, self.out, self.approvals, self.clock, self.ui_url)
        self.aftermath = Aftermath(self.s, self.policy, self.out, self.approvals, self.clock)
        self.recovery = RecoveryPlan(self.s, self.policy, self.out, self.clock)
        self.window = MaintenanceWindow(self.s, self.out)
        self.record = RecordKeeper(self.s, self.policy, self.out, self.aftermath.draft_postmortem)
        self._duties: list[asyncio.Task[Any]] = []
        self._duties_started = False  # the duties of a confirmed incident run in this run
        self.visibility = Visibility(self.s, self.policy)
        self._first_alert = input.first_alert
        self._proofs = verify.Proofs()
        self._later_alerts = list(input.later_alerts)
        self._next_occurrence: list[AlertEvent] = []  # alerts that fired again once this one had closed

    # --- the procedure ----------------------------------------------------------------------------

    @workflow.run
    async def run(self, input: IncidentInput) -> IncidentState:
        self.out.after_local_activity()  # the run begins once its start's policy check has answered
        self._take_first_alert()
        self._start(
            self.out.post_queued(),
            self.visibility.keep_current(),
            self.clock.keep_time(),
            self.watches.remind_of_disturbance_follow_up(),
        )
        if not self.s.confirmed and self.s.status is Status.OPEN:
            cleared_in_window = await self.window.held_until_it_clears()
            if cleared_in_window:
                self.s.kind = IncidentKind.DISTURBANCE
            else:
                await self._assess()
            if self.s.kind is not IncidentKind.DISTURBANCE:
                await self._look_up_on_call()
            if self.s.kind is IncidentKind.DISTURBANCE:  # classified so, perhaps while on call was looked up
                if cleared_in_window or not self.policy.triage.disturbance_follow_up_hours:
                    await self._log_disturbance_and_close()
                    return self._next_occurrence_or(self.s)
                if not await self._follow_up_disturbance():
                    return self._next_occurrence_or(self.s)
                await self._look_up_on_call()
            self._confirm_incident()
        self._start_duties()
        await workflow.wait_condition(lambda: self.s.status is Status.CLOSED or self._history_is_long())
        if self.s.status is not Status.CLOSED:
            await self._continue_as_new()
        await self._finish(self.aftermath.close())
        return self._next_occurrence_or(self.s)

    async def _assess(self) -> None:
        """Seeds 000, 001: somebody assesses severity, impact, incident or disturbance, and scope, in time."""
        s = self.s
        if not s.alert_count:  # the first alert came with the start: the task that confirms it goes on
            await workflow.wait_condition(lambda: s.alert_count > 0)
        if lifecycle.confirmed_at_once(s, self.policy):
            self._confirm_at_once()
            return
        if not s.assessment_requested:
            self._ask_for_initial_assessment()
        while s.kind is None and not lifecycle.confirmed_at_once(s, self.policy):
            assert s.assessment_due is not None
            try:
                await workflow.wait_condition(
                    lambda: s.kind is not None or lifecycle.confirmed_at_once(s, self.policy),
                    timeout=max(s.assessment_due - workflow.now(), timedelta(0)),
                )
            except TimeoutError:
                self.out.note("assessed", lifecycle.unassessed_in_time(s, self.policy, workflow.now()), "policy")
                if s.kind is None:
                    self._ask_for_initial_assessment()
        if s.kind is None:
            self._confirm_at_once()

    def _confirm_at_once(self) -> None:
        self.s.kind = IncidentKind.INCIDENT
        self.out.note("assessed", f"{self.s.severity.value} is confirmed at once by policy", "policy")

    def _ask_for_initial_assessment(self) -> None:
        """Ask the assessors; asked again each period while the policy leaves the decision to them."""
        s = self.s
        s.assessment_requested = True
        assert s.assessment_due is not None  # the first alert set it
        assessors = people_for(s, self.policy, [Role.INCIDENT_COMMANDER, Role.RESPONDER])
        again = s.assessment_reminders
        self.out.reach(
            assessors,
            self.out.chats,
            f"{'Still unassessed' if again else 'New report'} {s.incident_id}: {s.title} "
            f"(provisional {s.severity.value}). Assess it by {local(self.policy, s.assessment_due)}: "
            f"incidentctl classify {s.incident_id} --kind incident|disturbance --severity SEVn --scope local|global",
            f"assessment:request:{again}" if again else "assessment:request",
        )
        self.out.note(
            "assessment", f"Initial assessment {'asked again' if again else 'asked'} of {', '.join(assessors)}"
        )

    async def _look_up_on_call(self) -> None:
        """Who is on call in the policy's schedules now: roles held by a schedule go to them."""
        self.s.on_call, problem = await who_is_on_call(self.policy, schedules_in_use(self.policy))
        if problem:
            self.out.note("on_call", problem)

    def _confirm_incident(self) -> None:
        """Seed 000: once confirmed, paging first, then the rest side by side."""
        for kind, note in lifecycle.confirm(self.s, self.policy, workflow.now()):
            self.out.note(kind, note)
        self.response.page_first_tier_now()
        self.watches.reach_leadership_if_out_of_hours()
        self.out.log_entry("opened")
        self.record.kick()
        self.watches.ask_for_estimate()
        self.watches.ask_about_clients(EvaluationPoint.CONFIRMED, "confirmed")

    def _start_duties(self) -> None:
        """Every duty of a confirmed incident, paging first; each waits only for its own deadline or peer."""
        r, w, a = self.response, self.watches, self.aftermath
        self._duties_started = True
        self._start(
            r.page_until_acknowledged(),
            r.open_bridge_and_channel(),
            w.check_back_on_estimates(),
            w.convene_call_without_progress(),
            w.remind_before_each_update(),
            w.report_missed_updates(),
            w.warn_before_rto(),
            w.escalate_rto_breach(),
            w.run_message_loop(),
            a.follow_each_resolution(),
            a.remind_until_reviewed(),
            self.recovery.chase_late_tasks(),
            w.invite_parties_to_bridge(),
        )

    async def _follow_up_disturbance(self) -> bool:
        """Seed 001: a disturbance is owned and followed up until it is completed (False) or upgraded to an
        incident (True)."""
        s = self.s
        if not s.disturbances_taken_up:
            text = lifecycle.take_up_disturbance(s, self.policy, workflow.now())
            self.out.note("disturbance", f"Classified as {text}", s.assessed_by)
        self.watches.tell_disturbance_owner()
        await workflow.wait_condition(
            lambda: s.kind is IncidentKind.INCIDENT or s.status is Status.CLOSED or self._history_is_long()
        )
        if s.status is Status.CLOSED:
            self.out.log_entry("closed", log="project")
            await self._finish(self.out.drained())
            return False
        if s.kind is IncidentKind.DISTURBANCE:
            await self._continue_as_new()
        return True

    async def _log_disturbance_and_close(self) -> None:
        """Seed 001: a disturbance is logged and closed; nobody is paged."""
        s = self.s
        self.out.log_entry("disturbance", log="project")
        s.status, s.closed_at = Status.CLOSED, workflow.now()
        s.enter(Phase.CLOSED)
        self.out.note("closed", "Classified as a disturbance: logged and closed without paging", s.assessed_by)
        await self._finish(self.out.drained())

    async def _finish(self, last_steps: Coroutine[Any, Any, None]) -> None:
        await workflow.wait_condition(workflow.all_handlers_finished)
        await last_steps
        await workflow.wait_condition(self.watches.message_loop_caught_up)
        await self.record.written_out()
        self.visibility.refresh()
        for duty in self._duties:
            duty.cancel()

    def _next_occurrence_or(self, closed: IncidentState) -> IncidentState:
        """The incident closed; an alert of its group that fired while it was finishing its close-out opens the
        next occurrence: a new run of the same id, as if the alert had come a moment later."""
        if not self._next_occurrence:
            return closed
        first, *later = self._next_occurrence
        workflow.continue_as_new(
            IncidentInput(
                incident_id=self.s.incident_id,
                policy=self.policy,
                ui_url=self.ui_url,
                history_limit=self.history_limit,
                first_alert=first,
                later_alerts=later,
            ),
            memo={"title": first.title},
        )

    def _start(self, *duties: Coroutine[Any, Any, None]) -> None:
        self._duties += [asyncio.ensure_future(duty) for duty in duties]

    # --- what a decision sets going, besides the state it changed (rules.py) ------------------------

    def _follow_up(self, name: str, d: Decision) -> None:
        s, number = self.s, rules.number(self.s, name)
        text = s.timeline[-1].text
        match d:
            case Acknowledge():
                self.out.acknowledge_pages(d.actor)
                self.out.post(f"{s.incident_id} acknowledged by {d.actor}", f"ack:{number}")
            case Escalate():
                self.out.spawn(self.response.escalate_now(d.actor))
            case StatusUpdate():
                self.watches.distribute_status_update(d.actor, d.text, f"update:{number}")
            case AssignTask() | ReassignTask() | ReprioritiseTask() | UpdateTask() | CompleteTask() | EscalateTask():
                self.recovery.follow_up(d)
            case ReportDataLoss():
                self.watches.check_data_loss(d.minutes)
            case Reopen():
                self._reopened(d.actor, d.reason)
            case ReviewHeld() | PlanUpdated():
                self.out.spawn(self.aftermath.draft_postmortem())  # with the review's findings and plan changes
            case SendResolution():
                self.aftermath.send_resolution(d.actor, d.text)
            case DraftStatement() | ApproveStatement() | RequestChannel() | ApproveChannel() | DeclineChannel():
                self.approvals.follow_up(d)
            case Classify() if self._duties_started and s.kind is IncidentKind.DISTURBANCE and not s.confirmed:
                self.out.post(f"{s.incident_id}: {text} ({d.actor})", f"{name}:{number}")
                if s.disturbances_taken_up > s.disturbances_told:  # downgraded just now: its pages are over
                    self.out.resolve_pages(d.actor)
                    self.watches.tell_disturbance_owner()
            case Classify() if self._duties_started and s.kind is IncidentKind.INCIDENT and not s.confirmed:
                self._confirm_incident()  # upgraded again: paged afresh, its clocks restarted
            case Classify() | SetPhase() if s.confirmed:
                self.out.post(f"{s.incident_id}: {text} ({d.actor})", f"{name}:{number}")
            case _ if name in ("estimate", "progress_note", "trigger_business_incident"):
                self.out.post(f"{s.incident_id}: {text}", f"{name}:{number}")
        self._tell_of_handovers()
        if name in ("set_phase", "resolve"):
            self.watches.ask_about_clients(EvaluationPoint.PHASE, f"phase {s.phase.value}")
        elif name == "status_update":
            self.watches.ask_about_clients(EvaluationPoint.UPDATE, f"status update {number}")

    def _tell_of_handovers(self) -> None:
        """Seed 001: a change of scope changed the owner; the one handing over and the one taking over hear it."""
        s = self.s
        for n, handover in enumerate(s.handovers, start=1):
            if handover.told:
                continue
            handover.told = True
            self.out.reach(
                [handover.from_owner, handover.to_owner],
                self.out.chats,
                f"{s.incident_id} is now {handover.scope.value}: {handover.to_owner} owns it (action plan, status "
                f"updates, client communication, send approvals, resolution), taking over from "
                f"{handover.from_owner or 'nobody'}.",
                f"handover:{n}",
            )
            self.out.note("handover", f"told {handover.from_owner} and {handover.to_owner} of the hand-over")

    def _reopened(self, actor: str, reason: str) -> None:
        self.out.post(f"{self.s.incident_id} reopened by {actor}: {reason}", f"reopen:{self.s.reopens}")
        self.watches.reach_leadership_if_out_of_hours()
        self.watches.ask_for_estimate()
        self.watches.ask_about_clients(EvaluationPoint.PHASE, f"phase {self.s.phase.value}")

    # --- messages in ------------------------------------------------------------------------------

    @workflow.signal(name=ids.ALERT)
    def alert(self, event: AlertEvent) -> None:
        """An alert of this incident's group (the start, or signal-with-start, brings the first one)."""
        self._take_first_alert()
        self._record_alert(event)

    def _take_first_alert(self) -> None:
        """The alert in the start input counts first, even when a signalled one is handled before `run`."""
        if self._first_alert is not None:
            first, self._first_alert = self._first_alert, None
            self._record_alert(first)
        while self._later_alerts:
            self._record_alert(self._later_alerts.pop(0))

    def _record_alert(self, event: AlertEvent) -> None:
        s = self.s
        if s.status is Status.CLOSED:
            if event.status is AlertStatus.FIRING:  # it fires again: the next occurrence (_next_occurrence_or)
                self._next_occurrence.append(event)
                self.out.note("alert", f"firing alert after the incident closed, opens it afresh: {event.title}")
            else:
                self.out.note("alert", f"{event.status.value} alert after the incident closed: {event.title}")
            return
        self.window.saw(event)
        outcome = lifecycle.record_alert(s, self.policy, event, workflow.now())
        for kind, note in outcome.notes:
            self.out.note(kind, note)
        lifecycle.bound_timeline(s)
        if outcome.raised:
            self.out.post(f"{s.incident_id}: {outcome.raised}", f"raised:{s.escalation_round}")
        if outcome.reopened:
            self._reopened("policy", "the alert fired again")
        if outcome.recurred:
            self._tell_incident_commander(
                f"An alert of {s.incident_id} fires again while it is {s.phase.value}: {event.title}. Reopen it if "
                f"the incident is back (incidentctl reopen {s.incident_id} --reason ...).",
                f"recurrence:{s.resolutions}",
            )
        if outcome.flapping:
            quiet = lifecycle.FLAP_QUIET // timedelta(minutes=1)
            self._tell_incident_commander(
                f"An alert of {s.incident_id} is flapping: {outcome.flapping}. Its changes are not told one by one "
                f"until it has been quiet for {quiet} min.",
                f"flapping:{s.alert_count}",
            )
        if outcome.all_resolved:
            self._all_alerts_resolved(quiet=not s.alerts[event.fingerprint or event.dedup_key].flapping)

    def _tell_incident_commander(self, text: str, key: str) -> None:
        """A direct message to the Incident Commander, and the same words in the incident's channel."""
        ic = incident_commander(self.s, self.policy)
        self.out.reach([ic], self.out.chats, text, key)
        self.out.post(text, key)
        self.out.note("alert", f"told {ic}: {text}")

    def _all_alerts_resolved(self, quiet: bool) -> None:
        """Every alert has resolved. A person decides, except where the policy lets a low severity go; a flapping
        alert's resolution suggests nothing (the flapping notice said why)."""
        s = self.s
        if lifecycle.resolve_by_policy(s, self.policy, workflow.now()):
            self.out.note("resolve", f"All alerts resolved: {s.severity.value} resolved by policy", "policy")
            return
        if not s.confirmed or not quiet:
            return  # still being assessed: the assessment decides (lifecycle.unassessed_in_time)
        ic = incident_commander(s, self.policy)
        text = (
            f"All alerts of {s.incident_id} have resolved. Incident Commander, resolve it when you are sure "
            f"(incidentctl resolve {s.incident_id})."
        )
        self.out.reach([ic], self.out.chats, text, f"suggest-resolve:{s.alert_count}")
        self.out.post(text, f"suggest-resolve:{s.alert_count}")
        self.out.note("alert", f"All alerts resolved; resolution suggested to {ic}")

    @workflow.signal(name=ids.SILENCE_LIFTED)
    def silence_lifted(self, lifted: SilenceLifted) -> None:
        """The maintenance window holding this incident was expired early (SilencesWorkflow)."""
        self.window.lift(lifted)

    @workflow.signal(name=ids.ESCALATION_NOTICE)
    def escalation_notice(self, notice: EscalationNotice) -> None:
        """What the ladder did, for the timeline; pages that crossed an acknowledgement are closed too."""
        s = self.s
        if notice.occurrence != s.occurrence:
            return  # a ladder left over from an earlier incident of the same alert group
        new_keys = [k for k in notice.page_keys if k not in s.page_keys]
        s.page_keys += new_keys
        self.out.note("page", notice.text)
        if new_keys and s.acknowledged_by and s.status is Status.OPEN:
            self.out.acknowledge_pages(s.acknowledged_by, new_keys)
        elif new_keys and s.status is not Status.OPEN:
            self.out.resolve_pages(s.resolved_by, new_keys)
        if (
            notice.exhausted
            and notice.round == s.escalation_started
            and s.status is Status.OPEN
            and not s.acknowledged_by
        ):
            self.response.ladder_exhausted()

    @workflow.signal(name=ids.DELIVERY_REPORT)
    def delivery_report(self, report: DeliveryReport) -> None:
        """A provider says a direct page it accepted did not arrive: that person's next method goes now."""
        self.out.watch.failed[report.idempotency_key] = report.reason

    @workflow.update(dynamic=True)
    def decide(self, name: str, args: Sequence[RawValue]) -> str:
        """A person's decision: the rules change the state, the duties act on it. An update id seen before
        (a retry that reached the next run after a continue-as-new, its proof made for the run before) gets
        the answer it got then, and changes nothing."""
        update_id = workflow.current_update_info().id  # type: ignore[union-attr]
        if update_id in self.s.applied_updates:
            return self.s.applied_updates[update_id]
        text = self._take(name, *self._decision(name, args))
        rules.remember_update(self.s, update_id, text)
        return text

    @decide.validator
    def _validate(self, name: str, args: Sequence[RawValue]) -> None:
        if workflow.current_update_info().id in self.s.applied_updates:  # type: ignore[union-attr]
            return  # applied already: answered, not checked again
        rules.check(self.s, self.policy, name, self._decision(name, args)[0])

    @workflow.signal(dynamic=True)
    def decide_by_signal(self, name: str, args: Sequence[RawValue]) -> None:
        """Every decision is also a signal (the Temporal UI); a refused one goes on the timeline."""
        try:
            decision, nonce = self._decision(name, args)
            rules.check(self.s, self.policy, name, decision)
        except Exception as err:
            self.out.note("rejected", f"signal {name} refused: {err}")
            return
        self._take(name, decision, nonce)

    def _take(self, name: str, decision: Decision, nonce: str) -> str:
        self._proofs.spend(nonce)
        text = rules.apply(self.s, self.policy, name, decision, workflow.now())
        self.out.note(name, text, decision.actor)
        self._follow_up(name, decision)
        self.record.kick()
        return text

    def _decision(self, name: str, args: Sequence[RawValue]) -> tuple[Decision, str]:
        """The decision as the service signed it, and its proof's nonce; refused without a valid proof."""
        model = INCIDENT_DECISIONS.get(name)
        if model is None:
            raise rules.Refusal(f"{name!r} is not a decision; known: {', '.join(INCIDENT_DECISIONS)}")
        if len(args) != 1:
            raise rules.Refusal(f"{name} takes one argument, not {len(args)}")
        try:
            decision: Decision = workflow.payload_converter().from_payload(args[0].payload, model)
        except Exception as err:
            raise rules.Refusal(f"{name}: {err}") from err
        return self._proofs.read(decision, name)

    @workflow.signal(name=ids.RECORD_NEWS)
    def record_news(self, news: RecordNews) -> None:
        """What the record's writer wrote (workflows/records/writer.py)."""
        self.record.heard(news)

    @workflow.query(name=ids.RECORD_VIEW)
    def record_view(self) -> RecordView:
        return self.record.view()

    @workflow.query(name=ids.INCIDENT_STATE)
    def state(self) -> IncidentState:
        return self.s.model_copy(update={"waiting_on": waiting_on(self.s, self.policy)})

    # --- continue-as-new --------------------------------------------------------------------------

    def _history_is_long(self) -> bool:
        # Our own limits, not the server's suggestion: the time-skipping test server suggests it early and
        # often, and a run that continues as new at once would suggest it again. Bytes as well as events:
        # a few large signals reach the server's 50 MB limit, which ends the run, long before 5,000 events.
        info = workflow.info()
        return info.get_current_history_length() > self.history_limit or (
            info.get_current_history_size() > limits.HISTORY_BYTES
        )

    async def _continue_as_new(self) -> None:
        """Everything in flight lands first; the state carries every deadline and queued post."""
        await self.out.drained()
        await workflow.wait_condition(workflow.all_handlers_finished)
        await self.out.drained()
        workflow.continue_as_new(
            IncidentInput(
                incident_id=self.s.incident_id,
                policy=self.policy,
                ui_url=self.ui_url,
                state=self.s,
                history_limit=self.history_limit,
            ),
            memo=workflow.memo(),
        )  # the title `incidentctl list` shows
