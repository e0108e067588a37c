"""The duties of a confirmed, open incident, each on its own so that none waits for another.

Paging and the escalation ladder (seed 000's first step, seed 002's tiers); the bridge and the channel
(000, 002); the responsible developer's estimate and the call when there is no progress (002); the
update cadence (002, 000); the RTO watch (003); the stakeholder message loop (004). Each duty waits
for its own deadline or for the state to call for it, and hands its deliveries over (delivery/deliveries.py)
without waiting for them, so an outage of one peer delays nothing else.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from activities.conference import ConferenceActivities
    from workflows.contracts.activity_io import ChatChannelRequest, ConferenceRequest, FirstPost, Reached
    from workflows.contracts.policy import Policy
    from workflows.contracts.roles import expand, schedules_in_use
    from workflows.contracts.temporal.ids import ladder_workflow_id
    from workflows.contracts.temporal.priority import INCIDENT
    from workflows.contracts.vocabulary import Channel, Role, Status
    from workflows.delivery.deliveries import Deliveries
    from workflows.delivery.reach import CHAT, attempt, button, chat_ids, ensure_channel
    from workflows.escalation.ladder import EscalationWorkflow
    from workflows.incident.deadline import Clock
    from workflows.incident.derive import incident_commander, people_for
    from workflows.incident.inputs import EscalationInput, HandOn, StopEscalation, tier_page
    from workflows.incident.model import IncidentState
    from workflows.oncall.lookup import who_is_on_call

# How long the channel waits for the bridge's link before it opens without it (the link follows).
BRIDGE_PATIENCE = timedelta(seconds=20)
WELCOME = "channel:welcome"  # the key of the channel's first post
# After a channel could not be created (its retries spent), the next try.
CHANNEL_RETRY = timedelta(minutes=5)


class Response:
    def __init__(self, s: IncidentState, policy: Policy, out: Deliveries, clock: Clock, ui_url: str) -> None:
        self.s, self.policy, self.out, self.clock, self.ui_url = s, policy, out, clock, ui_url
        self._paged_round = 0  # the round whose first tier page_first_tier_now has paged
        # Tier 1's wait, which the incident keeps itself: the ladder child starts only if nobody acknowledged.
        self._tier_one_over = clock.deadline(lambda: self.s.ladder_due)
        self._bridge_patience: datetime | None = None  # until when the channel waits for the bridge's link

    def _open(self) -> bool:
        return self.s.status is Status.OPEN and self.s.confirmed

    # --- paging and the escalation ladder ----------------------------------------------------------

    async def page_until_acknowledged(self) -> None:
        """A ladder per round of paging (confirmation, each reopen or raise); an acknowledgement or the
        resolution stops it at once, whatever else is still being delivered."""
        s = self.s
        while True:
            await workflow.wait_condition(
                lambda: self._ladder_to_stop() or self._round_to_start() or self._tier_one_over.is_due()
            )
            if self._ladder_to_stop():
                await self._stop_ladder(
                    "acknowledged by " + s.acknowledged_by
                    if s.acknowledged_by
                    else (f"the incident is {s.status.value}" if s.confirmed else "downgraded to a disturbance")
                )
            if self._round_to_start():
                await self._start_ladder()
            elif self._tier_one_over.is_due():
                s.ladder_due = None
                await self._start_ladder_child(self._ladder())

    def _ladder_to_stop(self) -> bool:
        s = self.s
        return s.escalation_active and (
            bool(s.acknowledged_by)
            or s.status is not Status.OPEN
            or not s.confirmed  # downgraded to a disturbance (seed 001)
            or s.escalation_started < s.escalation_round
        )

    def _round_to_start(self) -> bool:
        s = self.s
        return s.escalation_started < s.escalation_round and self._open() and not s.acknowledged_by

    async def _start_ladder(self) -> None:
        s = self.s
        s.escalation_started, s.escalation_exhausted_at = s.escalation_round, None
        if not self.policy.escalation.tiers:
            self.out.note("escalation", "No escalation tiers in the policy: nobody is paged")
            return
        if s.escalation_round > 1 and s.on_call:  # paged afresh: whoever is on call now
            looking_up = who_is_on_call(self.policy, schedules_in_use(self.policy))
            s.on_call, problem = await self.out.tracked(looking_up)
            if problem:
                self.out.note("on_call", problem)
            # The lookup took time: an acknowledgement, a resolution or a later round may have landed meanwhile.
            if not self._open() or s.acknowledged_by or s.escalation_started != s.escalation_round:
                self.out.note("escalation", f"Escalation round {s.escalation_started} not paged: overtaken meanwhile")
                return
        s.escalation_active = True
        self._page_first_tier(self._ladder())
        s.ladder_due = workflow.now() + timedelta(minutes=self.policy.escalation.tiers[0].wait_minutes)
        self._note_round_started()

    async def _start_ladder_child(self, ladder: EscalationInput) -> None:
        try:
            await self.out.tracked(
                workflow.start_child_workflow(
                    EscalationWorkflow.run,
                    ladder,
                    id=ladder_workflow_id(self.s.occurrence, ladder.round),
                    parent_close_policy=ParentClosePolicy.ABANDON,
                    execution_timeout=timedelta(days=7),
                    priority=INCIDENT,
                )
            )
        except WorkflowAlreadyStartedError:
            self.out.note("escalation", f"Escalation round {ladder.round} was already running")

    def _note_round_started(self) -> None:
        s = self.s
        self.out.note(
            "escalation",
            f"Escalation round {s.escalation_round} started "
            f"({len(self.policy.escalation.tiers)} tiers, {s.severity.value})",
        )

    def _ladder(self) -> EscalationInput:
        """The ladder of the current round from tier 2 on: the incident pages tier 1 and waits it out itself."""
        s = self.s
        return EscalationInput(
            incident_id=s.incident_id,
            policy=self.policy,
            round=s.escalation_round,
            title=s.title,
            severity=s.severity,
            assigned=s.assigned,
            ui_url=self.ui_url,
            occurrence=s.occurrence,
        )

    def page_first_tier_now(self) -> None:
        """Seed 000's first step, as the incident is confirmed: the page is the first thing the confirming
        workflow task asks for (Deliveries.page_now), before the bridge, the channel and everybody's messages.
        The tier's other channels follow with the ladder."""
        tiers = self.policy.escalation.tiers
        if not tiers or Channel.PAGE not in tiers[0].channels or self.s.acknowledged_by:
            return  # acknowledged while it was being assessed: somebody has it, as the ladder also knows
        people = expand(self.policy, tiers[0].notify, self.s.roles)
        text, key = tier_page(self._ladder(), 0, 1)
        self.out.page_now(people, text, key, then=self._paged_first_tier)
        self._paged_round = self.s.escalation_round

    def _page_first_tier(self, ladder: EscalationInput) -> None:
        """Seed 000's first step, in the very workflow task that confirms the incident: under an alert storm
        a child's first task waits behind every other incident's, and the page must not."""
        tier = self.policy.escalation.tiers[0]
        people = expand(self.policy, tier.notify, self.s.roles)
        text, key = tier_page(ladder, 0, 1)
        for channel in tier.channels:  # each on its own, as the ladder does: a page is known while e-mail retries
            if channel is Channel.PAGE and self._paged_round == ladder.round:
                continue  # paged already (page_first_tier_now)
            self.out.reach(people, [channel], text, key, then=self._paged_first_tier, acknowledgeable=True)

    def _paged_first_tier(self, reached: Reached) -> None:
        s = self.s
        self.out.note(
            "page", "escalation tier 1: " + "; ".join(reached.lines + [f"FAILED: {f}" for f in reached.failures])
        )
        if reached.page_keys and s.acknowledged_by and s.status is Status.OPEN:
            self.out.acknowledge_pages(s.acknowledged_by, reached.page_keys)  # acknowledged while it was paging
        elif reached.page_keys and s.status is not Status.OPEN:
            self.out.resolve_pages(s.resolved_by, reached.page_keys)

    async def escalate_now(self, person: str) -> None:
        """The person paged handed it on: their own methods left stop; past tier 1 (whose wait the rules ended), the
        ladder pages its next tier."""
        s = self.s
        self.out.watch.handed_on.add(person)
        if s.ladder_due is not None or not s.escalation_active:
            return
        try:
            await self.out.tracked(
                workflow.get_external_workflow_handle(
                    ladder_workflow_id(self.s.occurrence, s.escalation_started)
                ).signal(EscalationWorkflow.next_tier, HandOn(person=person))
            )
        except Exception:
            self.out.note("escalation", "Escalation round already finished: no next tier to page")

    async def _stop_ladder(self, reason: str) -> None:
        s = self.s
        s.escalation_active = False
        if s.ladder_due is not None:  # still in tier 1, which the incident waits out itself: no ladder to stop
            s.ladder_due = None
            self.out.note("escalation", f"Escalation stopped: {reason}")
            return
        try:
            await self.out.tracked(
                workflow.get_external_workflow_handle(
                    ladder_workflow_id(self.s.occurrence, s.escalation_started)
                ).signal(EscalationWorkflow.stop, StopEscalation(reason=reason))
            )
        except Exception:
            workflow.logger.info("escalation round %s already finished", s.escalation_started)
        self.out.note("escalation", f"Escalation stopped: {reason}")

    def ladder_exhausted(self) -> None:
        """Nobody acknowledged through every tier: the Incident Commander and the breach list are told."""
        s = self.s
        s.escalation_active, s.escalation_exhausted_at = False, workflow.now()
        people = [
            incident_commander(s, self.policy),
            *expand(self.policy, self.policy.response.breach_notify, s.roles),
        ]
        text = (
            f"Nobody acknowledged {s.incident_id} ({s.severity.value}: {s.title}) through every escalation "
            f"tier. Take it: incidentctl ack {s.incident_id}"
        )
        self.out.reach(
            list(dict.fromkeys(people)),
            [*self.out.chats, Channel.EMAIL],
            text,
            f"escalation-exhausted:{s.escalation_started}",
            buttons=[button("Take it", "acknowledge", s.incident_id)],
        )
        self.out.post(text, f"escalation-exhausted:{s.escalation_started}")
        self.out.note("escalation", f"Ladder exhausted without an acknowledgement; told {', '.join(people)}")

    # --- the bridge and the channel --------------------------------------------------------------

    async def open_bridge_and_channel(self) -> None:
        """Seed 000: a call, then one Slack channel; the channel does not wait long for a slow bridge."""
        bridge: asyncio.Task[tuple[Any, str | None]] | None = None
        if not self.s.conference_url and not any(e.kind == "conference" for e in self.s.timeline):
            if self.policy.response.conference == "bridge":  # a standing bridge: nothing to create
                self._record_bridge(self.policy.response.conference_bridge_url)
            else:
                bridge = await self._meeting_within_patience()
        await asyncio.gather(*(self._channel_in(chat) for chat in self.out.chats))
        if bridge is not None:
            self._record_bridge(*_meeting_link(await bridge))
            if self.s.conference_url and self.s.channel:
                # The channel opened first: it gains the bridge's bookmark, and its welcome names the bridge,
                # so the channel reads the same whichever came first.
                ensured = [ensure_channel(chat, self._channel_request(chat)) for chat in self.s.chat_channels]
                failures = [f for _, f in await self.out.tracked(asyncio.gather(*ensured)) if f]
                self.out.post(self._welcome(), WELCOME, mentions=self._tagged(), revises=True)
                self.out.note(
                    "channel", "; ".join(failures) or "Conference bridge added to the channel's bookmarks and welcome"
                )

    async def _channel_in(self, chat: Channel) -> None:
        """The incident's channel in one chat, tried again until it opens: a chat that is down holds up no other."""
        while chat not in self.s.chat_channels and self.s.status is not Status.CLOSED:
            if not await self._open_channel(chat):
                await workflow.sleep(CHANNEL_RETRY)

    async def _meeting_within_patience(self) -> asyncio.Task[tuple[Any, str | None]] | None:
        """A meeting of the incident's own; None once its link is recorded, else the creation still under way."""
        creating = workflow.start_activity_method(
            ConferenceActivities.conference_create,
            ConferenceRequest(
                incident_id=self.s.incident_id,
                topic=f"{self.s.incident_id}: {self.s.title}",
                bridge_url=self.policy.response.conference_bridge_url,
            ),
            **CHAT,
        )
        created = asyncio.ensure_future(self.out.tracked(attempt("conference", creating)))
        self._bridge_patience = workflow.now() + BRIDGE_PATIENCE
        patience = self.clock.deadline(lambda: self._bridge_patience)
        await workflow.wait_condition(lambda: created.done() or patience.is_due())
        self._bridge_patience = None
        if not created.done():
            return created
        self._record_bridge(*_meeting_link(created.result()))
        return None

    def _record_bridge(self, join_url: str, failure: str | None = None) -> None:
        self.s.conference_url = join_url
        self.out.note(
            "conference",
            failure
            or (
                f"Conference bridge: {self.s.conference_url}"
                if self.s.conference_url
                else "No conference bridge configured"
            ),
        )

    async def _open_channel(self, chat: Channel) -> bool:
        """One channel per incident, the people of seed 002 invited and tagged, links bookmarked."""
        tagged = self._tagged()
        welcome = FirstPost(
            text=self._welcome(),
            idempotency_key=f"{self.s.occurrence}:{WELCOME}",
            mention_user_ids=chat_ids(self.policy, chat, tagged),
        )
        request = self._channel_request(chat).model_copy(update={"first_post": welcome})
        result, failure = await self.out.tracked(ensure_channel(chat, request))
        if result is None:
            self.out.note("channel", f"{failure}; trying again in {CHANNEL_RETRY.seconds // 60} min")
            return False
        self.out.note(
            "channel",
            f"{chat.label} channel {result.name} opened; invited {', '.join(tagged) or 'nobody'}",
        )
        if result.first_post_failure:
            self.out.note("delivery", f"{chat.label} welcome in {result.name} failed: {result.first_post_failure}")
        # The welcome is posted first, by the call that opened the channel: everything queued meanwhile follows it.
        self.s.chat_channels[chat] = result.channel_id
        self.s.channel = self.s.channel or result.name
        return True

    def _tagged(self) -> list[str]:
        return people_for(self.s, self.policy, self.policy.response.tag_roles)

    def _channel_request(self, chat: Channel) -> ChatChannelRequest:
        """The channel as it should be now; ensuring it again adds what it lacks (a bridge that came later)."""
        s = self.s
        bookmarks = {"Incident in Temporal UI": self.ui_url} if self.ui_url else {}
        if s.conference_url:
            bookmarks["Conference"] = s.conference_url
        service = self.policy.services.get(s.service)
        if service and service.runbook_url:
            bookmarks["Runbook"] = service.runbook_url
        return ChatChannelRequest(
            incident_id=s.incident_id,
            title=s.title,
            invite_user_ids=chat_ids(self.policy, chat, self._tagged()),
            channel_prefix=self.policy.response.slack_channel_prefix,
            topic=f"{s.severity.value} · {s.phase.value} · IC {incident_commander(s, self.policy)}",
            purpose=f"All communication about {s.incident_id} happens here.",
            bookmarks=bookmarks,
        )

    def _welcome(self) -> str:
        s = self.s
        return (
            f"{s.severity.value} incident {s.incident_id}: {s.title}\n"
            f"Incident Commander: {incident_commander(s, self.policy)} · Communications Lead: "
            f"{s.assigned.get(Role.COMMUNICATIONS_LEAD, 'unassigned')}\n"
            + (f"Conference: {s.conference_url}\n" if s.conference_url else "")
            + "All communication about this incident happens in this channel."
        )


def _meeting_link(outcome: tuple[Any, str | None]) -> tuple[str, str | None]:
    """The conference activity's outcome as (join URL, failure)."""
    result, failure = outcome
    return (result.join_url if result else ""), failure
