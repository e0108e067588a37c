"""CommsWorkflow: seed 004's Message Creation Loop, a child of IncidentWorkflow (id "<incident>-comms").

For each phase in `policy.comms.phases` the incident enters, one message per audience, in the Business
Lead's order, goes through: the Technical SLT drafts from the statement template -> the reviewers
(Messaging, Legal) review, edit, and may raise strong objections that block until resolved -> the
Customer Liaison is alerted -> the ELT Approver authorises and, for external audiences (seed 000),
the Communications Lead approves: both approve the reviewed text, in parallel, before the Incident
Commander is asked, so the IC's approval to send is the last gate and covers exactly what they
approved -> the workflow distributes -> the distributor confirms it reached its audience.

Every step a person owes has an estimate (the policy's default until they give one) and a check-back
timer: when it runs out, the Business Lead is nudged and the owner reminded, once per estimate. A
phase change supersedes the old phase's unsent messages. Each step is an Update (validated: role,
message state) and a Signal of the same name (a refused signal goes to the log). Handlers validate
and record; the main loop acts.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.email import EmailActivities
    from activities.slack import SlackActivities
    from activities.statements import StatementActivities
    from activities.statuspage import StatuspageActivities
    from workflows.comms_model import (
        FINISHED,
        UNSENT,
        Approval,
        ApprovalKind,
        Approve,
        CommsInput,
        CommsMessage,
        CommsState,
        CommsSummary,
        ConfirmSent,
        Delivery,
        Draft,
        Edit,
        GiveEstimate,
        MessageStep,
        Objection,
        Owed,
        RenderStatement,
        ResolveObjection,
        Review,
        ReviewStatus,
        SetAudienceOrder,
        Skip,
        Step,
        Verdict,
        Version,
    )
    from workflows.model import (
        Audience,
        EmailRequest,
        Phase,
        PhaseChanged,
        Role,
        SlackDirectMessage,
        SlackPost,
        StatuspageRequest,
        TimelineEntry,
        occurrence,
    )
    from workflows.policy import Policy

TITLES = {
    Role.BUSINESS_LEAD: "Business Lead",
    Role.TECHNICAL_SLT: "Technical SLT",
    Role.MESSAGING_OFFICER: "Messaging Officer",
    Role.LEGAL_OFFICER: "Legal Officer",
    Role.CUSTOMER_LIAISON: "Customer Liaison",
    Role.ELT_APPROVER: "ELT Approver",
    Role.COMMUNICATIONS_LEAD: "Communications Lead",
    Role.INCIDENT_COMMANDER: "Incident Commander",
    Role.DISTRIBUTOR: "distributor",
}

STEP_LABELS = {
    Step.QUEUED: "queued behind the phase's earlier audiences",
    Step.DRAFTING: "being drafted",
    Step.IN_REVIEW: "in review",
    Step.APPROVAL: "waiting for approval",
    Step.SEND_APPROVAL: "waiting for the Incident Commander's approval to send",
    Step.DISTRIBUTING: "being distributed",
    Step.CONFIRMING: "sent and waiting for the distributor's confirmation",
    Step.SENT: "already sent",
    Step.SKIPPED: "skipped",
    Step.SUPERSEDED: "superseded",
}

APPROVALS = {
    ApprovalKind.ELT: (Role.ELT_APPROVER, "authorize", Step.APPROVAL),
    ApprovalKind.EXTERNAL: (Role.COMMUNICATIONS_LEAD, "approve the external message", Step.APPROVAL),
    ApprovalKind.SEND: (Role.INCIDENT_COMMANDER, "approve sending", Step.SEND_APPROVAL),
}

# People are reached best-effort: a failed DM is logged, never blocks the loop.
NOTIFY_TIMEOUT = timedelta(seconds=30)
NOTIFY_RETRY = RetryPolicy(maximum_interval=timedelta(minutes=1), maximum_attempts=10)
# Deliveries to an audience keep trying through a provider's outage; the adapters mark business
# errors (unknown channel, rejected address) non-retryable.
DELIVER_TIMEOUT = timedelta(minutes=1)
DELIVER_RETRY = RetryPolicy(maximum_interval=timedelta(minutes=5), maximum_attempts=30)
RENDER_TIMEOUT = timedelta(seconds=10)
RENDER_RETRY = RetryPolicy(maximum_attempts=3)


S = TypeVar("S")


def title(role: Role) -> str:
    return TITLES.get(role, role.value.replace("_", " "))


class _Interrupted(Exception):
    """The message in hand was skipped, or the incident moved to a phase that supersedes it."""


@workflow.defn
class CommsWorkflow:
    @workflow.init
    def __init__(self, input: CommsInput) -> None:
        self.policy: Policy = input.policy
        self.state = input.state or CommsState(
            incident_id=input.facts.incident_id, facts=input.facts, triggered_by=input.triggered_by,
            reason=input.reason, triggered_at=workflow.now(), phase=input.facts.phase,
            next_phase=PhaseChanged(phase=input.facts.phase, facts=input.facts),
            audience_order=list(input.policy.comms.audience_order),
        )
        if input.state is None:
            why = f": {input.reason}" if input.reason else ""
            self._log("triggered", f"business incident triggered during {input.facts.phase}{why}",
                      input.triggered_by)
        # the trigger's phase opens its messages at once, so a step arriving with the start finds them
        self._follow_incident_phase()

    @workflow.run
    async def run(self, input: CommsInput) -> CommsSummary:
        while True:
            self._follow_incident_phase()
            if self._done():
                break
            if workflow.info().is_continue_as_new_suggested():
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(input.model_copy(update={"state": self.state}))
            message = self._next_message()
            if message is None:
                await self._wait_for_next_phase()
            else:
                await self._create_message(message)
        self._show_status()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._summary()

    # --- the Message Creation Loop, one message at a time ---------------------------------------

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
        except _Interrupted:
            pass  # the skip or the phase change is on record; the loop moves on
        self._refresh(m)

    async def _ask_technical_slt_to_draft(self, m: CommsMessage) -> None:
        while m.step is Step.DRAFTING:
            await self._wait_for(m, lambda: m.pending_draft is not None)
            await self._render_draft(m)

    async def _render_draft(self, m: CommsMessage) -> None:
        draft = m.pending_draft
        assert draft is not None
        try:
            rendered = await workflow.execute_activity_method(
                StatementActivities.render_statement,
                RenderStatement(phase=m.phase, audience=m.audience, facts=self.state.facts,
                                organisation=self.policy.organisation, values=draft.values,
                                subject=draft.subject, text=draft.text),
                start_to_close_timeout=RENDER_TIMEOUT, retry_policy=RENDER_RETRY,
            )
        except ActivityError as err:
            m.draft_error = _cause(err)
            self._log("draft_refused", f"{m.message_id}: {m.draft_error}", draft.actor)
            m.pending_draft = None
            return
        m.pending_draft = None
        if m.step is not Step.DRAFTING:
            raise _Interrupted
        m.draft_error = ""
        m.drafted_by = draft.actor
        self._add_version(m, draft.actor, rendered.subject, rendered.text, rendered.html,
                          source=rendered.template or "written by the drafter")
        m.reviews = [ReviewStatus(role=role) for role in self.policy.comms.reviewers]
        self._move(m, Step.IN_REVIEW)
        self._log("drafted", f"{m.message_id}: v1 ready for review", draft.actor)

    async def _collect_reviews(self, m: CommsMessage) -> None:
        await self._wait_for(m, lambda: self._reviews_complete(m))
        self._move(m, Step.APPROVAL)
        self._log("reviewed", f"{m.message_id}: reviews complete on v{_version(m)}")

    async def _alert_customer_liaison(self, m: CommsMessage) -> None:
        if m.liaison_alerted:
            return
        m.liaison_alerted = True
        await self._dm(self.policy.holders(Role.CUSTOMER_LIAISON),
                       f"{self._about(m)}: reviews are complete; a message will soon be pending for "
                       f"distribution. Please rejoin the business incident call and check v{_version(m)} "
                       "for technical accuracy.",
                       f"{self._key(m)}:liaison:coming:v{_version(m)}")

    async def _seek_elt_and_communications_lead_approval(self, m: CommsMessage) -> None:
        await self._wait_for(m, lambda: not self._approvals_owed(m))
        self._move(m, Step.SEND_APPROVAL)

    async def _tell_customer_liaison_it_is_ready(self, m: CommsMessage) -> None:
        if m.liaison_told_ready:
            return
        m.liaison_told_ready = True
        await self._dm(self.policy.holders(Role.CUSTOMER_LIAISON),
                       f"{self._about(m)}: v{_version(m)} is approved and ready. Please tell the Incident "
                       "Commander it needs their approval to send.",
                       f"{self._key(m)}:liaison:ready:v{_version(m)}")

    async def _seek_incident_commander_approval(self, m: CommsMessage) -> None:
        await self._wait_for(m, lambda: m.approved(ApprovalKind.SEND) is not None)
        self._move(m, Step.DISTRIBUTING)

    async def _distribute(self, m: CommsMessage) -> None:
        version = m.current
        assert version is not None
        key = f"{self._key(m)}:v{version.number}"
        recipients = self.policy.comms.recipients
        if m.audience is Audience.INTERNAL:
            if recipients.internal_slack_channel:
                await self._post_to_slack(m, recipients.internal_slack_channel, version, f"{key}:slack")
            if recipients.internal_email:
                await self._email(m, recipients.internal_email, version, f"{key}:email", personal=False)
        elif m.audience is Audience.STRATEGIC:
            for customer in recipients.strategic_customers:
                await self._email(m, customer.contacts, version, f"{key}:email:{customer.name}",
                                  personal=True)
        else:
            if recipients.statuspage:
                await self._update_statuspage(m, version, f"{key}:statuspage")
            if recipients.customer_mailing_list:
                await self._email(m, recipients.customer_mailing_list, version, f"{key}:email",
                                  personal=False)
        m.sent_at = workflow.now()
        self._move(m, Step.CONFIRMING)
        failed = [d for d in m.deliveries if d.error]
        self._log("distributed", f"{m.message_id}: v{version.number} sent to {len(m.deliveries)} "
                  f"destination(s){f', {len(failed)} failed' if failed else ''}")

    async def _wait_for_distributor_to_confirm(self, m: CommsMessage) -> None:
        await self._wait_for(m, lambda: m.step is Step.SENT)

    # --- phases ----------------------------------------------------------------------------------

    def _follow_incident_phase(self) -> None:
        move = self.state.next_phase
        if move is None:
            return
        self.state.next_phase = None
        if move.phase is Phase.CLOSED:
            self._supersede_round("the incident closed")
            self.state.closed = True
        elif self._supersedes(move.phase):
            self._supersede_round(f"the incident moved to {move.phase}")
            self._open_round(move.phase)

    def _supersedes(self, phase: Phase) -> bool:
        return phase is Phase.CLOSED or (phase in self.policy.comms.phases and phase != self.state.round_phase)

    def _supersede_round(self, reason: str) -> None:
        for m in self._round():
            if m.step in UNSENT:
                m.ended_reason = reason
                self._move(m, Step.SUPERSEDED)
                self._log("superseded", f"{m.message_id}: {reason}")

    def _open_round(self, phase: Phase) -> None:
        # earlier rounds of this phase, whatever audiences they had ("identification", "identification-2")
        earlier = len({m.message_id.rsplit("/", 1)[0] for m in self.state.messages if m.phase is phase})
        label = phase.value if not earlier else f"{phase.value}-{earlier + 1}"
        self.state.round_phase = phase
        self.state.round = []
        for audience in self.policy.comms.audience_order:
            m = CommsMessage(message_id=f"{label}/{audience.value}", phase=phase, audience=audience,
                             created_at=workflow.now())
            nobody = self._no_recipients(audience)
            if nobody:
                m.step, m.ended_by, m.ended_reason = Step.SKIPPED, "policy", nobody
            self.state.messages.append(m)
            self.state.round.append(m.message_id)
        self._log("phase", f"{phase}: messages {', '.join(self.state.round)}")

    def _no_recipients(self, audience: Audience) -> str:
        r = self.policy.comms.recipients
        has = {
            Audience.INTERNAL: bool(r.internal_slack_channel or r.internal_email),
            Audience.STRATEGIC: any(c.contacts for c in r.strategic_customers),
            Audience.ALL_CUSTOMERS: bool(r.statuspage or r.customer_mailing_list),
        }[audience]
        return "" if has else f"the policy names no recipients for {audience} (comms.recipients)"

    async def _wait_for_next_phase(self) -> None:
        self._show_status()
        await workflow.wait_condition(
            lambda: self.state.next_phase is not None or workflow.info().is_continue_as_new_suggested())

    def _done(self) -> bool:
        if self.state.closed:
            return True
        order = list(Phase)
        last = max((order.index(p) for p in self.policy.comms.phases), default=-1)
        return order.index(self.state.phase) > last and self._next_message() is None

    def _round(self) -> list[CommsMessage]:
        return [self._message(mid) for mid in self.state.round]

    def _next_message(self) -> CommsMessage | None:
        """The message in hand, else the first queued one in the Business Lead's order."""
        open_ = [m for m in self._round() if m.step not in FINISHED]
        started = [m for m in open_ if m.step is not Step.QUEUED]
        if started:
            return started[0]
        queued = sorted(open_, key=lambda m: self.state.audience_order.index(m.audience))
        return queued[0] if queued else None

    # --- who owes what, estimates and check-backs -------------------------------------------------

    async def _wait_for(self, m: CommsMessage, done: Callable[[], bool]) -> None:
        """Wait until `done`, asking each new owner and checking back when an estimate runs out."""
        while True:
            if self._interrupted(m):
                raise _Interrupted
            if done():
                return
            self._refresh(m)
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

    async def _until_something_changes(self, m: CommsMessage, done: Callable[[], bool],
                                       check_back: datetime | None) -> None:
        await workflow.wait_condition(
            lambda: done() or self._interrupted(m) or self._next_check_back(m) != check_back
            or any(not o.asked for o in m.waiting_on),
            timeout=check_back - workflow.now() if check_back else None,
        )

    def _interrupted(self, m: CommsMessage) -> bool:
        move = self.state.next_phase
        return m.step in (Step.SKIPPED, Step.SUPERSEDED) or (move is not None and self._supersedes(move.phase))

    def _owed(self, m: CommsMessage) -> list[tuple[str, str, Role]]:
        """(key, what, role) of everything people owe on the message right now."""
        version = _version(m)
        if m.step is Step.DRAFTING:
            return [("draft", "draft", Role.TECHNICAL_SLT)]
        if m.step is Step.IN_REVIEW:
            objections = m.open_objections()
            blocked = {o.role for o in objections}
            return [(f"resolve:{o.number}", f"resolve objection {o.number} ({o.by})", Role.TECHNICAL_SLT)
                    for o in objections] + [
                (f"review:{r.role}", f"review v{version}", r.role) for r in m.reviews
                if r.role not in blocked and not _approved_current(m, r)]
        if m.step is Step.APPROVAL:
            return [(kind.value, APPROVALS[kind][1], APPROVALS[kind][0]) for kind in self._approvals_owed(m)]
        if m.step is Step.SEND_APPROVAL:
            return [("approve_send", "approve sending", Role.INCIDENT_COMMANDER)]
        if m.step is Step.CONFIRMING:
            return [("confirm_sent", "confirm it reached its audience", Role.DISTRIBUTOR)]
        return []

    def _refresh(self, m: CommsMessage) -> None:
        """Recompute who the message waits on, keeping the estimates already given."""
        now = workflow.now()
        default = timedelta(minutes=self.policy.comms.default_estimate_minutes)
        before = {o.key: o for o in m.waiting_on}
        m.waiting_on = []
        for key, what, role in self._owed(m):
            owed = before.get(key) or Owed(key=key, what=what, role=role, people=self.policy.holders(role),
                                           since=now, due=now + default)
            owed.what = what
            m.waiting_on.append(owed)
        m.owner = ", ".join(dict.fromkeys(p for o in m.waiting_on for p in o.people))
        m.due = min((o.due for o in m.waiting_on), default=None)

    def _next_check_back(self, m: CommsMessage) -> datetime | None:
        return min((o.due for o in m.waiting_on if not o.nudged), default=None)

    async def _ask_owners(self, m: CommsMessage) -> None:
        for owed in m.waiting_on:
            if owed.asked:
                continue
            m.asks += 1
            owed.asked = m.asks
            await self._dm(owed.people,
                           f"{self._about(m)}: please {owed.what} {m.message_id} and give an estimate "
                           f"(incidentctl message-estimate {self.state.incident_id} {m.message_id} MINUTES); "
                           f"until then the Business Lead checks back at {owed.due:%H:%M} UTC.",
                           f"{self._key(m)}:ask:{owed.asked}")

    async def _check_back(self, m: CommsMessage) -> None:
        """An estimate ran out: nudge the Business Lead and remind the owner, once per estimate."""
        now = workflow.now()
        for owed in m.waiting_on:
            if owed.nudged or owed.due > now:
                continue
            owed.nudged = True
            who = f"{title(owed.role)} ({', '.join(owed.people) or 'nobody holds the role'})"
            self._log("check_back", f"{m.message_id}: {who} was to {owed.what} by {owed.due:%H:%M}")
            key = f"{self._key(m)}:check-back:{owed.asked}:{owed.estimate_number}"
            await self._dm(self.policy.holders(Role.BUSINESS_LEAD),
                           f"{self._about(m)}: check back with {who}: {owed.what} {m.message_id} was due "
                           f"at {owed.due:%H:%M} UTC.", f"{key}:lead")
            await self._dm(owed.people,
                           f"{self._about(m)}: reminder: {owed.what} {m.message_id} was due at "
                           f"{owed.due:%H:%M} UTC. Please finish it or give a new estimate "
                           f"(incidentctl message-estimate {self.state.incident_id} {m.message_id} MINUTES).",
                           f"{key}:owner")
        self._show_status()

    def _reviews_complete(self, m: CommsMessage) -> bool:
        return not m.open_objections() and all(_approved_current(m, r) for r in m.reviews)

    def _approvals_owed(self, m: CommsMessage) -> list[ApprovalKind]:
        comms = self.policy.comms
        owed = []
        if comms.require_elt_approval and not m.approved(ApprovalKind.ELT):
            owed.append(ApprovalKind.ELT)
        if m.external and comms.communications_lead_approves_external and not m.approved(ApprovalKind.EXTERNAL):
            owed.append(ApprovalKind.EXTERNAL)
        return owed

    # --- distribution ----------------------------------------------------------------------------

    async def _post_to_slack(self, m: CommsMessage, channel: str, version: Version, key: str) -> None:
        async def post() -> str:
            result = await workflow.execute_activity_method(
                SlackActivities.slack_post,
                SlackPost(channel=channel, text=f"{version.subject}\n\n{version.text}", idempotency_key=key),
                start_to_close_timeout=DELIVER_TIMEOUT, retry_policy=DELIVER_RETRY)
            return result.delivered_to
        await self._deliver(m, "slack", channel, key, post)

    async def _email(self, m: CommsMessage, to: list[str], version: Version, key: str, *, personal: bool) -> None:
        async def send() -> str:
            result = await workflow.execute_activity_method(
                EmailActivities.send_email,
                EmailRequest(to=to, subject=version.subject, text=version.text, html=version.html,
                             idempotency_key=key, personal=personal),
                start_to_close_timeout=DELIVER_TIMEOUT, retry_policy=DELIVER_RETRY)
            return result.delivered_to
        await self._deliver(m, "email", ", ".join(to), key, send)

    async def _update_statuspage(self, m: CommsMessage, version: Version, key: str) -> None:
        async def upsert() -> str:
            result = await workflow.execute_activity_method(
                StatuspageActivities.statuspage_upsert,
                StatuspageRequest(incident_id=self.state.incident_id, name=version.subject, phase=m.phase,
                                  body=version.text, idempotency_key=key,
                                  statuspage_incident_id=self.state.statuspage_incident_id),
                start_to_close_timeout=DELIVER_TIMEOUT, retry_policy=DELIVER_RETRY)
            self.state.statuspage_incident_id = result.statuspage_incident_id
            return result.delivered_to
        await self._deliver(m, "statuspage", "status page", key, upsert)

    async def _deliver(self, m: CommsMessage, channel: str, target: str, key: str,
                       send: Callable[[], Awaitable[str]]) -> None:
        """One destination; a failure is recorded for the distributor to see, not fatal to the rest."""
        delivery = Delivery(channel=channel, target=target, idempotency_key=key)
        try:
            delivery.delivered_to = await send()
        except ActivityError as err:
            delivery.error = _cause(err)
            self._log("delivery_failed", f"{m.message_id}: {channel} {target}: {delivery.error}")
        m.deliveries.append(delivery)

    async def _dm(self, people: list[str], text: str, key: str) -> None:
        for person in people:
            user = self.policy.people.get(person)
            if user is None or not user.slack_user_id:
                self._log("unreachable", f"{person} has no Slack user id in the policy: {text}")
                continue
            try:
                await workflow.execute_activity_method(
                    SlackActivities.slack_direct_message,
                    SlackDirectMessage(user_id=user.slack_user_id, text=text, idempotency_key=f"{key}:{person}"),
                    start_to_close_timeout=NOTIFY_TIMEOUT, retry_policy=NOTIFY_RETRY)
            except ActivityError as err:
                self._log("unreachable", f"{person}: direct message failed: {_cause(err)}")

    # --- queries and the incident's phase --------------------------------------------------------

    @workflow.query(name="state")
    def get_state(self) -> CommsState:
        return self.state

    @workflow.signal
    def incident_phase_changed(self, change: PhaseChanged) -> None:
        self.state.facts, self.state.phase = change.facts, change.phase
        waiting = self.state.next_phase
        # Resolution then Analysis heard in one go: the Resolution round still has to be opened, so a
        # phase without messages does not replace a waiting phase that has them (the end always does).
        if (waiting is None or change.phase in self.policy.comms.phases or change.phase is Phase.CLOSED
                or waiting.phase not in self.policy.comms.phases):
            self.state.next_phase = change
        self._log("phase", f"the incident moved to {change.phase}")

    # --- the steps: an Update (validated) and a Signal of the same name each ---------------------

    @workflow.update(name="draft")
    async def draft(self, step: Draft) -> CommsMessage:
        m = self._draft(step)
        await workflow.wait_condition(lambda: m.pending_draft is None or m.step is not Step.DRAFTING)
        if m.step is Step.DRAFTING:
            raise ApplicationError(m.draft_error, type="DraftRefused")
        if m.step in (Step.SKIPPED, Step.SUPERSEDED):
            raise ApplicationError(f"{m.message_id} was {m.step} before the draft was ready: {m.ended_reason}",
                                   type="DraftRefused")
        return m

    @draft.validator
    def _validate_draft(self, step: Draft) -> None:
        self._check_draft(step)

    @workflow.signal(name="draft")
    def draft_signal(self, step: Draft) -> None:
        self._from_signal("draft", self._check_draft, self._draft, step)

    @workflow.update(name="edit")
    def edit(self, step: Edit) -> CommsMessage:
        return self._edit(step)

    @edit.validator
    def _validate_edit(self, step: Edit) -> None:
        self._check_edit(step)

    @workflow.signal(name="edit")
    def edit_signal(self, step: Edit) -> None:
        self._from_signal("edit", self._check_edit, self._edit, step)

    @workflow.update(name="review")
    def review(self, step: Review) -> CommsMessage:
        return self._review(step)

    @review.validator
    def _validate_review(self, step: Review) -> None:
        self._check_review(step)

    @workflow.signal(name="review")
    def review_signal(self, step: Review) -> None:
        self._from_signal("review", self._check_review, self._review, step)

    @workflow.update(name="resolve_objection")
    def resolve_objection(self, step: ResolveObjection) -> CommsMessage:
        return self._resolve_objection(step)

    @resolve_objection.validator
    def _validate_resolve_objection(self, step: ResolveObjection) -> None:
        self._check_resolve_objection(step)

    @workflow.signal(name="resolve_objection")
    def resolve_objection_signal(self, step: ResolveObjection) -> None:
        self._from_signal("resolve_objection", self._check_resolve_objection, self._resolve_objection, step)

    @workflow.update(name="authorize")
    def authorize(self, step: Approve) -> CommsMessage:
        return self._approve(ApprovalKind.ELT, step)

    @authorize.validator
    def _validate_authorize(self, step: Approve) -> None:
        self._check_approval(ApprovalKind.ELT, step)

    @workflow.signal(name="authorize")
    def authorize_signal(self, step: Approve) -> None:
        self._from_signal("authorize", lambda s: self._check_approval(ApprovalKind.ELT, s),
                          lambda s: self._approve(ApprovalKind.ELT, s), step)

    @workflow.update(name="approve_external")
    def approve_external(self, step: Approve) -> CommsMessage:
        return self._approve(ApprovalKind.EXTERNAL, step)

    @approve_external.validator
    def _validate_approve_external(self, step: Approve) -> None:
        self._check_approval(ApprovalKind.EXTERNAL, step)

    @workflow.signal(name="approve_external")
    def approve_external_signal(self, step: Approve) -> None:
        self._from_signal("approve_external", lambda s: self._check_approval(ApprovalKind.EXTERNAL, s),
                          lambda s: self._approve(ApprovalKind.EXTERNAL, s), step)

    @workflow.update(name="approve_send")
    def approve_send(self, step: Approve) -> CommsMessage:
        return self._approve(ApprovalKind.SEND, step)

    @approve_send.validator
    def _validate_approve_send(self, step: Approve) -> None:
        self._check_approval(ApprovalKind.SEND, step)

    @workflow.signal(name="approve_send")
    def approve_send_signal(self, step: Approve) -> None:
        self._from_signal("approve_send", lambda s: self._check_approval(ApprovalKind.SEND, s),
                          lambda s: self._approve(ApprovalKind.SEND, s), step)

    @workflow.update(name="confirm_sent")
    def confirm_sent(self, step: ConfirmSent) -> CommsMessage:
        return self._confirm_sent(step)

    @confirm_sent.validator
    def _validate_confirm_sent(self, step: ConfirmSent) -> None:
        self._check_confirm_sent(step)

    @workflow.signal(name="confirm_sent")
    def confirm_sent_signal(self, step: ConfirmSent) -> None:
        self._from_signal("confirm_sent", self._check_confirm_sent, self._confirm_sent, step)

    @workflow.update(name="skip")
    def skip(self, step: Skip) -> CommsMessage:
        return self._skip(step)

    @skip.validator
    def _validate_skip(self, step: Skip) -> None:
        self._check_skip(step)

    @workflow.signal(name="skip")
    def skip_signal(self, step: Skip) -> None:
        self._from_signal("skip", self._check_skip, self._skip, step)

    @workflow.update(name="estimate")
    def estimate(self, step: GiveEstimate) -> CommsMessage:
        return self._estimate(step)

    @estimate.validator
    def _validate_estimate(self, step: GiveEstimate) -> None:
        self._check_estimate(step)

    @workflow.signal(name="estimate")
    def estimate_signal(self, step: GiveEstimate) -> None:
        self._from_signal("estimate", self._check_estimate, self._estimate, step)

    @workflow.update(name="set_audience_order")
    def set_audience_order(self, step: SetAudienceOrder) -> list[Audience]:
        return self._set_audience_order(step)

    @set_audience_order.validator
    def _validate_set_audience_order(self, step: SetAudienceOrder) -> None:
        self._check_set_audience_order(step)

    @workflow.signal(name="set_audience_order")
    def set_audience_order_signal(self, step: SetAudienceOrder) -> None:
        self._from_signal("set_audience_order", self._check_set_audience_order, self._set_audience_order, step)

    def _from_signal(self, name: str, check: Callable[[S], None], apply: Callable[[S], object], step: S) -> None:
        try:
            check(step)
        except ValueError as err:
            self._log("refused", f"{name}: {err}", getattr(step, "actor", None))
            return
        apply(step)

    # --- validators: plain checks that raise with a message a person can act on ------------------

    def _check_draft(self, step: Draft) -> None:
        m = self._checked(step, [Role.TECHNICAL_SLT], "draft", Step.DRAFTING)
        if m.pending_draft is not None:
            raise ValueError(f"a draft of {m.message_id} by {m.pending_draft.actor} is being rendered; wait for it")

    def _check_edit(self, step: Edit) -> None:
        roles = [Role.TECHNICAL_SLT, *self.policy.comms.reviewers, Role.CUSTOMER_LIAISON]
        self._checked(step, roles, "edit", Step.IN_REVIEW, hint="edits are made during the reviews")
        if not step.text.strip():
            raise ValueError("an edit needs the new text")

    def _check_review(self, step: Review) -> None:
        m = self._checked(step, self.policy.comms.reviewers, "review", Step.IN_REVIEW)
        roles = self._reviewer_roles(step.actor)
        if step.actor == m.drafted_by:
            raise ValueError(f"{step.actor} drafted {m.message_id} and cannot review it; another "
                             f"{' or '.join(title(r) for r in roles)} must")
        if step.verdict is Verdict.OBJECT and not step.reason.strip():
            raise ValueError("a strong objection needs a reason the Technical SLT can act on")
        own = [o for o in m.open_objections() if o.by == step.actor]
        if own:
            raise ValueError(f"your objection {own[0].number} on {m.message_id} is open; the Technical SLT "
                             f"resolves it (incidentctl resolve-objection) before you review again")
        if step.verdict is Verdict.APPROVE and all(
                _approved_current(m, r) for r in m.reviews if r.role in roles):
            raise ValueError(f"you already approved v{_version(m)} of {m.message_id}")

    def _check_resolve_objection(self, step: ResolveObjection) -> None:
        m = self._checked(step, [Role.TECHNICAL_SLT], "resolve an objection on", Step.IN_REVIEW)
        found = next((o for o in m.objections if o.number == step.objection), None)
        if found is None or found.resolved_by is not None:
            open_ = ", ".join(str(o.number) for o in m.open_objections()) or "none"
            raise ValueError(f"{m.message_id} has no open objection {step.objection}; open: {open_}")
        if not step.resolution.strip():
            raise ValueError("say how the objection was resolved")

    def _check_approval(self, kind: ApprovalKind, step: Approve) -> None:
        role, doing, at = APPROVALS[kind]
        m = self._message_of(step)
        self._require_role(step.actor, [role], doing)
        if kind is ApprovalKind.ELT and not self.policy.comms.require_elt_approval:
            raise ValueError("this policy does not ask the ELT Approver to authorize messages")
        external = m.external and self.policy.comms.communications_lead_approves_external
        if kind is ApprovalKind.EXTERNAL and not external:
            raise ValueError(f"{m.message_id} needs no Communications Lead approval: only external audiences do")
        if m.step is not at:
            hint = {ApprovalKind.SEND: "; the Incident Commander approves sending after the reviews and the "
                    "ELT's authorization"}.get(kind, "; approvals come after the reviews")
            raise ValueError(f"cannot {doing} {m.message_id}: it is {self._describe(m)}{hint}")
        if m.approved(kind):
            raise ValueError(f"{m.message_id} v{_version(m)} is already approved for this")

    def _check_confirm_sent(self, step: ConfirmSent) -> None:
        self._checked(step, [Role.DISTRIBUTOR], "confirm sending", Step.CONFIRMING)

    def _check_skip(self, step: Skip) -> None:
        self._checked(step, [Role.BUSINESS_LEAD], "skip", *UNSENT)
        if not step.reason.strip():
            raise ValueError("say why this audience gets no message in this phase")

    def _check_estimate(self, step: GiveEstimate) -> None:
        m = self._message_of(step)
        if not any(step.actor in o.people for o in m.waiting_on):
            raise ValueError(f"{step.actor} owes nothing on {m.message_id}; it is {self._describe(m)}")

    def _check_set_audience_order(self, step: SetAudienceOrder) -> None:
        self._require_role(step.actor, [Role.BUSINESS_LEAD], "set the audience order")
        known = self.policy.comms.audience_order
        if len(set(step.order)) != len(step.order) or set(step.order) != set(known):
            raise ValueError(f"give each audience once: {', '.join(a.value for a in known)} "
                             "(to leave one out, skip its message)")

    def _checked(self, step: MessageStep, roles: list[Role], doing: str, *steps: Step,
                 hint: str = "") -> CommsMessage:
        m = self._message_of(step)
        self._require_role(step.actor, roles, doing)
        if m.step not in steps:
            raise ValueError(f"cannot {doing} {m.message_id}: it is {self._describe(m)}"
                             f"{f'; {hint}' if hint else ''}")
        return m

    def _message_of(self, step: MessageStep) -> CommsMessage:
        found = next((m for m in self.state.messages if m.message_id == step.message_id), None)
        if found is None:
            known = ", ".join(m.message_id for m in self.state.messages) or "none yet"
            raise ValueError(f"no message {step.message_id!r} on {self.state.incident_id}; messages: {known}")
        return found

    def _require_role(self, actor: str, roles: list[Role], doing: str) -> None:
        if any(self.policy.holds(actor, role) for role in roles):
            return
        who = [f"{title(r)} ({', '.join(self.policy.holders(r)) or 'nobody'})" for r in dict.fromkeys(roles)]
        listed = who[0] if len(who) == 1 else f"{', '.join(who[:-1])} or {who[-1]}"
        raise ValueError(f"only the {listed} can {doing}; you are {actor}")

    def _reviewer_roles(self, actor: str) -> list[Role]:
        return [r for r in self.policy.comms.reviewers if self.policy.holds(actor, r)]

    def _describe(self, m: CommsMessage) -> str:
        text = STEP_LABELS[m.step]
        if m.step in (Step.SKIPPED, Step.SUPERSEDED):
            return f"{text} ({m.ended_reason})"
        if m.waiting_on:
            return f"{text}, waiting on {self._waiting_on(m)}"
        return text

    # --- recording: what handlers do once a step is valid ----------------------------------------

    def _draft(self, step: Draft) -> CommsMessage:
        m = self._message_of(step)
        m.pending_draft = step
        return self._recorded(m, "draft", "draft submitted", step.actor)

    def _edit(self, step: Edit) -> CommsMessage:
        m = self._message_of(step)
        current = m.current
        assert current is not None
        self._add_version(m, step.actor, step.subject or current.subject, step.text.strip(), "",
                          source="edit", note=step.note)
        return self._recorded(m, "edit", f"v{_version(m)}{f': {step.note}' if step.note else ''}", step.actor)

    def _review(self, step: Review) -> CommsMessage:
        m = self._message_of(step)
        roles = self._reviewer_roles(step.actor)
        now = workflow.now()
        for review in m.reviews:
            if review.role in roles:
                review.verdict, review.by, review.at, review.version = step.verdict, step.actor, now, _version(m)
        if step.verdict is Verdict.OBJECT:
            m.objections.append(Objection(number=len(m.objections) + 1, by=step.actor, role=roles[0],
                                          reason=step.reason.strip(), at=now, version=_version(m)))
            return self._recorded(m, "objection", f"objection {len(m.objections)}: {step.reason}", step.actor)
        return self._recorded(m, "review", f"approved v{_version(m)}", step.actor)

    def _resolve_objection(self, step: ResolveObjection) -> CommsMessage:
        m = self._message_of(step)
        objection = next(o for o in m.objections if o.number == step.objection)
        objection.resolved_by, objection.resolved_at = step.actor, workflow.now()
        objection.resolution = step.resolution.strip()
        if step.text.strip():
            current = m.current
            assert current is not None
            self._add_version(m, step.actor, step.subject or current.subject, step.text.strip(), "",
                              source=f"objection {objection.number} resolved", note=objection.resolution)
        for review in m.reviews:
            if review.role is objection.role:
                review.verdict = None  # the objector reviews the resolution
        return self._recorded(m, "objection_resolved", f"objection {objection.number}: {step.resolution}",
                              step.actor)

    def _approve(self, kind: ApprovalKind, step: Approve) -> CommsMessage:
        m = self._message_of(step)
        m.approvals.append(Approval(kind=kind, by=step.actor, at=workflow.now(), version=_version(m),
                                    note=step.note))
        return self._recorded(m, f"approved_{kind}", f"{APPROVALS[kind][1]}: v{_version(m)}", step.actor)

    def _confirm_sent(self, step: ConfirmSent) -> CommsMessage:
        m = self._message_of(step)
        m.step, m.confirmed_by, m.confirmed_at = Step.SENT, step.actor, workflow.now()
        return self._recorded(m, "sent", f"confirmed sent{f': {step.note}' if step.note else ''}", step.actor)

    def _skip(self, step: Skip) -> CommsMessage:
        m = self._message_of(step)
        m.step, m.ended_by, m.ended_reason = Step.SKIPPED, step.actor, step.reason.strip()
        return self._recorded(m, "skipped", step.reason, step.actor)

    def _estimate(self, step: GiveEstimate) -> CommsMessage:
        m = self._message_of(step)
        due = workflow.now() + timedelta(minutes=step.minutes)
        for owed in m.waiting_on:
            if step.actor in owed.people:
                owed.due, owed.estimated_by, owed.nudged = due, step.actor, False
                owed.estimate_number += 1
        return self._recorded(m, "estimate", f"done by {due:%H:%M} UTC{f': {step.note}' if step.note else ''}",
                              step.actor)

    def _set_audience_order(self, step: SetAudienceOrder) -> list[Audience]:
        self.state.audience_order = list(step.order)
        self._log("audience_order", ", ".join(a.value for a in step.order), step.actor)
        self._show_status()
        return self.state.audience_order

    def _recorded(self, m: CommsMessage, kind: str, text: str, actor: str) -> CommsMessage:
        self._log(kind, f"{m.message_id}: {text}", actor)
        self._refresh(m)
        self._show_status()
        return m

    # --- helpers ----------------------------------------------------------------------------------

    def _move(self, m: CommsMessage, step: Step) -> None:
        m.step = step
        self._refresh(m)
        self._show_status()

    def _message(self, message_id: str) -> CommsMessage:
        return next(m for m in self.state.messages if m.message_id == message_id)

    def _add_version(self, m: CommsMessage, author: str, subject: str, text: str, html: str, *,
                     source: str, note: str = "") -> None:
        m.versions.append(Version(number=len(m.versions) + 1, author=author, at=workflow.now(),
                                  subject=subject, text=text, html=html, source=source, note=note))

    def _key(self, m: CommsMessage) -> str:
        """Idempotency keys: incident, message (phase x audience) and what, never the attempt."""
        return f"{occurrence(self.state.incident_id, self.state.facts.opened_at)}:comms:{m.message_id}"

    def _about(self, m: CommsMessage) -> str:
        return f"{self.state.incident_id} ({self.state.facts.title}) {m.message_id}"

    def _waiting_on(self, m: CommsMessage) -> str:
        return ", ".join(f"{title(o.role)} ({', '.join(o.people) or 'nobody holds the role'}) to {o.what} "
                         f"until {o.due:%H:%M}" for o in m.waiting_on)

    def _show_status(self) -> None:
        m = self._next_message()
        if self.state.closed or self._done():
            summary = self._summary()
            status = (f"done: {len(summary.sent)} sent, {len(summary.unconfirmed)} unconfirmed, "
                      f"{len(summary.skipped)} skipped, {len(summary.superseded)} superseded")
        elif m is None:
            status = f"{self.state.phase}: nothing pending; waiting for the incident's next phase"
        elif m.waiting_on:
            status = f"{m.message_id}: waiting on {self._waiting_on(m)}"
        else:
            status = f"{m.message_id}: {STEP_LABELS[m.step]}"
        if status != self.state.status:
            self.state.status = status
            workflow.set_current_details(status)

    def _log(self, kind: str, text: str, actor: str | None = None) -> None:
        self.state.log.append(TimelineEntry(at=workflow.now(), kind=kind, text=text, actor=actor))

    def _summary(self) -> CommsSummary:
        def ids(*steps: Step) -> list[str]:
            return [m.message_id for m in self.state.messages if m.step in steps]
        return CommsSummary(incident_id=self.state.incident_id, sent=ids(Step.SENT),
                            unconfirmed=ids(Step.CONFIRMING), skipped=ids(Step.SKIPPED),
                            superseded=ids(Step.SUPERSEDED),
                            statuspage_incident_id=self.state.statuspage_incident_id)


def _version(m: CommsMessage) -> int:
    return m.current.number if m.current else 0


def _approved_current(m: CommsMessage, review: ReviewStatus) -> bool:
    return review.verdict is Verdict.APPROVE and review.version == _version(m)


def _cause(err: ActivityError) -> str:
    cause = err.cause
    return cause.message if isinstance(cause, ApplicationError) else str(cause or err)
