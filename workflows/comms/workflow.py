"""CommsWorkflow: the message-creation loop, a child of IncidentWorkflow.

This module is the procedure and its waits, so it reads like the loop's steps: drafting, reviews, approvals,
sending, and chasing whoever owes the message in hand. What it applies are plain functions tested without a
server: rules (who may take which step, and what it changes), waiting (who owes what), phases (which messages
a phase gets, which are in hand), notices (what people are told: asks, check-backs, the Business Lead's
news); delivery reaches people and audiences.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RawValue, RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.statements import StatementActivities
    from workflows.comms import notices, phases, rules
    from workflows.comms.delivery import cause, direct_message, distribute, message_key
    from workflows.comms.model import (
        ApprovalKind,
        CommsInput,
        CommsMessage,
        CommsState,
        CommsSummary,
        Draft,
        RenderStatement,
        ReviewStatus,
        Step,
    )
    from workflows.comms.waiting import approvals_owed, held_back, refresh, reviews_complete, version_of
    from workflows.contracts.policy import Policy
    from workflows.contracts.roles import RoleHolders
    from workflows.contracts.temporal import ids
    from workflows.contracts.trust import verify
    from workflows.contracts.vocabulary import Audience
    from workflows.incident.model import ClientsEvaluated, Decision, PhaseChanged

RENDER_TIMEOUT = timedelta(seconds=10)
RENDER_RETRY = RetryPolicy(maximum_attempts=3)


class Interrupted(Exception):
    """The message in hand was skipped, or the incident moved to a phase that supersedes it."""


@workflow.defn(name=ids.COMMS_WORKFLOW)
class CommsWorkflow:
    @workflow.init
    def __init__(self, input: CommsInput) -> None:
        self.policy: Policy = input.policy
        self.state = input.state or CommsState(
            incident_id=input.facts.incident_id,
            facts=input.facts,
            triggered_by=input.triggered_by,
            reason=input.reason,
            triggered_at=workflow.now(),
            phase=input.facts.phase,
            next_phase=PhaseChanged(phase=input.facts.phase, facts=input.facts),
            audience_order=list(input.policy.comms.audience_order),
        )
        if input.state is None:
            why = f": {input.reason}" if input.reason else ""
            self._log("triggered", f"business incident triggered during {input.facts.phase}{why}", input.triggered_by)
        # the trigger's phase opens its messages at once, so a step arriving with the start finds them
        self._follow_incident_phase()
        self._working_on: dict[str, asyncio.Task[None]] = {}  # message id -> its own task
        self._in_flight = 0  # activities under way: continue-as-new waits for none
        self._sending: set[asyncio.Task[None]] = set()  # direct messages on their own
        self._proofs = verify.Proofs()

    @workflow.run
    async def run(self, input: CommsInput) -> CommsSummary:
        await self._work_on_the_messages_side_by_side(input)
        self._show_status()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return phases.summary(self.state)

    async def _work_on_the_messages_side_by_side(self, input: CommsInput) -> None:
        """Seed 004's loop with every message in hand on its own task: the next audience is drafted while one
        is in review, and a message being distributed when the phase moves is finished and confirmed."""
        while True:
            self._follow_incident_phase()
            if phases.done(self.state, self.policy):
                break
            for m in self._unattended():
                self._working_on[m.message_id] = asyncio.ensure_future(self._work_on(m))
            if workflow.info().is_continue_as_new_suggested():
                await workflow.wait_condition(lambda: not self._in_flight and workflow.all_handlers_finished())
                workflow.continue_as_new(input.model_copy(update={"state": self.state}))
            await workflow.wait_condition(
                lambda: (
                    self.state.next_phase is not None
                    or bool(self.state.evaluations_heard)
                    or bool(self._unattended())
                    or workflow.info().is_continue_as_new_suggested()
                )
            )
        await workflow.wait_condition(lambda: not self._working_on)  # distributions under way finish

    def _unattended(self) -> list[CommsMessage]:
        """Messages in hand without their task, and the next audience to draft ahead."""
        ahead = phases.draft_next(self.state, self.policy)
        held = phases.in_hand(self.state) + ([ahead] if ahead else [])
        return [m for m in held if m.message_id not in self._working_on]

    async def _work_on(self, m: CommsMessage) -> None:
        try:
            await self._create_message(m)
        finally:
            del self._working_on[m.message_id]

    # --- the Message Creation Loop, for one message ----------------------------------------------

    async def _create_message(self, m: CommsMessage) -> None:
        try:
            if m.step is Step.QUEUED:
                self._move(m, Step.DRAFTING)
                self._log("drafting", f"{m.message_id}: the Technical SLT is asked to draft")
            if m.step is Step.DRAFTING:
                await self._ask_technical_slt_to_draft(m)
            if m.step is Step.IN_REVIEW:
                await self._collect_reviews(m)
            if m.step is Step.APPROVAL:
                await self._alert_customer_liaison(m)
                await self._seek_elt_and_communications_lead_approval(m)
            if m.step is Step.SEND_APPROVAL:
                await self._tell_customer_liaison_it_is_ready(m)
                await self._seek_incident_commander_approval(m)
            if m.step is Step.DISTRIBUTING:
                await self._distribute(m)
            if m.step is Step.CONFIRMING:
                await self._wait_for_distributor_to_confirm(m)
        except Interrupted:
            pass  # the skip or the phase change is on record; the loop moves on
        refresh(self.policy, self.state.facts.roles, m, workflow.now())

    async def _ask_technical_slt_to_draft(self, m: CommsMessage) -> None:
        while m.step is Step.DRAFTING:
            await self._wait_for(m, lambda: m.pending_draft is not None)
            await self._render_draft(m)

    async def _render_draft(self, m: CommsMessage) -> None:
        draft = m.pending_draft
        assert draft is not None
        try:
            with self._acting():
                rendered = await workflow.execute_activity_method(
                    StatementActivities.render_statement,
                    RenderStatement(
                        phase=m.phase,
                        audience=m.audience,
                        facts=self.state.facts,
                        organisation=self.policy.organisation,
                        templates_dir=self.policy.comms.templates_dir,
                        timezone=self.policy.business_hours.timezone,
                        values=draft.values,
                        subject=draft.subject,
                        text=draft.text,
                    ),
                    start_to_close_timeout=RENDER_TIMEOUT,
                    retry_policy=RENDER_RETRY,
                )
        except ActivityError as err:
            m.draft_error = cause(err)
            self._log("draft_refused", f"{m.message_id}: {m.draft_error}", draft.actor)
            m.pending_draft = None
            return
        m.pending_draft = None
        if m.step is not Step.DRAFTING:
            raise Interrupted
        m.draft_error = ""
        m.drafted_by = draft.actor
        rules.add_version(
            m,
            workflow.now(),
            draft.actor,
            rendered.subject,
            rendered.text,
            rendered.html,
            source=rendered.template or "written by the drafter",
        )
        m.reviews = [ReviewStatus(role=role) for role in self.policy.comms.reviewers]
        self._move(m, Step.IN_REVIEW)
        self._log("drafted", f"{m.message_id}: v1 ready for review", draft.actor)

    async def _collect_reviews(self, m: CommsMessage) -> None:
        await self._wait_for(m, lambda: reviews_complete(m))
        self._move(m, Step.APPROVAL)
        self._log("reviewed", f"{m.message_id}: reviews complete on v{version_of(m)}")

    async def _alert_customer_liaison(self, m: CommsMessage) -> None:
        if m.liaison_alerted:
            return
        m.liaison_alerted = True
        await self._send(m, notices.liaison_alert(self.policy, self.state.facts, m, self._about(m)))

    async def _seek_elt_and_communications_lead_approval(self, m: CommsMessage) -> None:
        await self._wait_for(m, lambda: not approvals_owed(self.policy, m))
        self._move(m, Step.SEND_APPROVAL)

    async def _tell_customer_liaison_it_is_ready(self, m: CommsMessage) -> None:
        if m.liaison_told_ready:
            return
        m.liaison_told_ready = True
        await self._send(m, notices.liaison_ready(self.policy, self.state.facts.roles, m, self._about(m)))

    async def _seek_incident_commander_approval(self, m: CommsMessage) -> None:
        await self._wait_for(m, lambda: m.approved(ApprovalKind.SEND) is not None)
        self._move(m, Step.DISTRIBUTING)

    async def _distribute(self, m: CommsMessage) -> None:
        version = m.current
        assert version is not None
        held = held_back(self.policy, m)
        if held is not None:  # never reached through the steps; the gate stands where the message leaves
            step, missing = held
            self._log("held_back", f"{m.message_id}: not distributed without {missing}")
            self._move(m, step)
            return
        with self._acting():
            await distribute(self.state, self.policy, m, version)
        m.sent_at = workflow.now()
        self._move(m, Step.CONFIRMING)
        failed = [d for d in m.deliveries if d.error]
        self._log(
            "distributed",
            f"{m.message_id}: v{version.number} sent to {len(m.deliveries)} "
            f"destination(s){f', {len(failed)} failed' if failed else ''}",
        )

    async def _wait_for_distributor_to_confirm(self, m: CommsMessage) -> None:
        await self._wait_for(m, lambda: m.step is Step.SENT)

    # --- phases ----------------------------------------------------------------------------------

    def _follow_incident_phase(self) -> None:
        phases.follow(self.state, self.policy, workflow.now())
        phases.evaluated(self.state, self.policy, workflow.now())
        self._show_status()

    # --- queries, the incident's phase, and the steps ----------------------------------------------

    @workflow.query(name=ids.COMMS_STATE)
    def get_state(self) -> CommsState:
        return self.state

    @workflow.signal
    def incident_phase_changed(self, change: PhaseChanged) -> None:
        phases.hear(self.state, self.policy, change, workflow.now())

    @workflow.signal
    def clients_evaluated(self, answer: ClientsEvaluated) -> None:
        """The owner's answer at an evaluation point (seed 001); the loop acts on it after the phase it is about."""
        self.state.evaluations_heard.append(answer)

    @workflow.signal
    def incident_roles_changed(self, roles: RoleHolders) -> None:
        """Who holds the incident's roles now: the loop's approvals and reminders follow (roles.role_holders)."""
        self.state.facts.roles = roles

    # Every step of workflows/contracts/decisions.py's COMMS_DECISIONS is an Update of its name (validated by the rules)
    # and a Signal of the same name (a refusal goes to the log). Handlers record; the loop acts.

    @workflow.update(dynamic=True)
    async def take_step(self, name: str, args: Sequence[RawValue]) -> CommsMessage | list[Audience]:
        step, nonce = self._decode(name, args)
        self._proofs.spend(nonce)
        result = rules.apply(self.state, self.policy, name, step, workflow.now())
        self._show_status()
        if isinstance(step, Draft):
            return await self._rendered(rules.message_of(self.state, step))
        return result

    @take_step.validator
    def _check_step(self, name: str, args: Sequence[RawValue]) -> None:
        rules.check(self.state, self.policy, name, self._decode(name, args)[0])

    @workflow.signal(dynamic=True)
    def take_step_by_signal(self, name: str, args: Sequence[RawValue]) -> None:
        step: Decision | None = None
        try:
            step, nonce = self._decode(name, args)
            rules.check(self.state, self.policy, name, step)
        except ValueError as err:
            self._log("refused", f"{name}: {err}", step.actor if step else None)
            return
        self._proofs.spend(nonce)
        rules.apply(self.state, self.policy, name, step, workflow.now())
        self._show_status()

    def _decode(self, name: str, args: Sequence[RawValue]) -> tuple[Decision, str]:
        """The step as the service signed it, and its proof's nonce; refused without a valid proof."""
        return self._proofs.read(rules.decode(name, args, workflow.payload_converter()), name)

    async def _rendered(self, m: CommsMessage) -> CommsMessage:
        """The draft's answer waits for the loop to render it: the drafter hears of a missing placeholder."""
        await workflow.wait_condition(lambda: m.pending_draft is None or m.step is not Step.DRAFTING)
        if m.step is Step.DRAFTING:
            raise ApplicationError(m.draft_error, type="DraftRefused")
        if m.step in (Step.SKIPPED, Step.SUPERSEDED):
            raise ApplicationError(
                f"{m.message_id} was {m.step} before the draft was ready: {m.ended_reason}", type="DraftRefused"
            )
        return m

    # --- helpers ----------------------------------------------------------------------------------

    def _move(self, m: CommsMessage, step: Step) -> None:
        m.step = step
        refresh(self.policy, self.state.facts.roles, m, workflow.now())
        self._show_status()

    def _log(self, kind: str, text: str, actor: str | None = None) -> None:
        rules.log(self.state, workflow.now(), kind, text, actor)

    # --- who owes what, estimates and check-backs -------------------------------------------------

    async def _wait_for(self, m: CommsMessage, done: Callable[[], bool]) -> None:
        """Wait until `done`, asking each new owner and checking back when an estimate runs out."""
        while True:
            await self._tell_business_lead(m)
            if phases.interrupted(self.state, self.policy, m):
                raise Interrupted
            if done():
                return
            refresh(self.policy, self.state.facts.roles, m, workflow.now())
            await self._ask_owners(m)
            self._show_status()
            check_back = self._next_check_back(m)
            if check_back is not None and check_back <= workflow.now():
                await self._check_back(m)
                continue
            try:
                await self._until_something_changes(m, done, check_back)
            except TimeoutError:
                await self._check_back(m)

    async def _until_something_changes(
        self, m: CommsMessage, done: Callable[[], bool], check_back: datetime | None
    ) -> None:
        await workflow.wait_condition(
            lambda: (
                done()
                or phases.interrupted(self.state, self.policy, m)
                or self._next_check_back(m) != check_back
                or any(not o.asked for o in m.waiting_on)
                or notices.has_news(m)
            ),
            timeout=check_back - workflow.now() if check_back else None,
        )

    def _next_check_back(self, m: CommsMessage) -> datetime | None:
        return notices.next_check_back(self.policy, self.state, m)

    async def _ask_owners(self, m: CommsMessage) -> None:
        for owed in m.waiting_on:
            if owed.asked:
                continue
            m.asks += 1
            owed.asked = m.asks
            await self._send(m, notices.ask(self.policy, self.state, m, owed, self._about(m)))

    async def _check_back(self, m: CommsMessage) -> None:
        """An estimate ran out: the Business Lead hears who stays silent and the owner is reminded."""
        for notice in notices.check_backs(self.policy, self.state, m, workflow.now(), self._about(m)):
            await self._send(m, notice)
        self._show_status()

    async def _tell_business_lead(self, m: CommsMessage) -> None:
        """Seed 004: the Business Lead hears when the draft is ready and when each approval is given."""
        for notice in notices.news(self.policy, self.state.facts.roles, m, self._about(m)):
            m.told_business_lead.append(notice.key)
            await self._send(m, notice)

    async def _send(self, m: CommsMessage, notice: notices.Notice) -> None:
        """A direct message, on its own, so a slow chat holds back no step."""
        key = f"{message_key(self.state, m)}:{notice.key}"
        sending = direct_message(self.state, self.policy, notice.people, notice.text, key, list(notice.buttons))
        task = asyncio.ensure_future(self._counted(sending))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _counted(self, sending: Coroutine[Any, Any, None]) -> None:
        with self._acting():
            await sending

    @contextmanager
    def _acting(self) -> Iterator[None]:
        self._in_flight += 1
        try:
            yield
        finally:
            self._in_flight -= 1

    def _about(self, m: CommsMessage) -> str:
        return f"{self.state.incident_id} ({self.state.facts.title}) {m.message_id}"

    def _show_status(self) -> None:
        status = phases.status_line(self.state, self.policy)
        if status != self.state.status:
            self.state.status = status
            workflow.set_current_details(status)
