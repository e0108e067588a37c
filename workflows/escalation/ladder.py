"""EscalationWorkflow: walk the policy's ladder of tiers until somebody acknowledges.

A child of IncidentWorkflow, one per escalation round (a reopened incident starts a new round), started only
when tier 2 is due: the incident pages tier 1 and waits it out itself, so an incident acknowledged within
tier 1 runs no ladder at all. Each later tier is reached, then given its wait; the parent's `stop` signal (an
acknowledgement, a resolution) ends the ladder at once. Every delivery is reported to the incident's timeline.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.contracts.activity_io import DeliveryReport
    from workflows.contracts.roles import RoleHolders, expand, schedules_named
    from workflows.contracts.temporal import ids
    from workflows.contracts.vocabulary import Channel
    from workflows.delivery.direct import Watch
    from workflows.delivery.reach import reach
    from workflows.incident.inputs import (
        EscalationInput,
        EscalationNotice,
        EscalationResult,
        HandOn,
        StopEscalation,
        tier_page,
    )
    from workflows.oncall.lookup import who_is_on_call


@workflow.defn(name=ids.ESCALATION_WORKFLOW)
class EscalationWorkflow:
    @workflow.init
    def __init__(self, input: EscalationInput) -> None:
        self._stop_reason = ""
        self._result = EscalationResult()
        self._deliveries: list[asyncio.Future[None]] = []
        self._watch = Watch(stopped=lambda: bool(self._stop_reason))  # people paged directly stop on `stop`
        self._tier_handed_on = False  # the person paged asked for the next tier now (an Escalate decision)

    @workflow.signal
    def stop(self, request: StopEscalation) -> None:
        self._stop_reason = self._stop_reason or request.reason

    @workflow.signal
    def next_tier(self, request: HandOn) -> None:
        """The incident took an Escalate decision: the tier being waited out ends now, and so do the methods left
        of whoever handed it on."""
        self._tier_handed_on = True
        self._watch.handed_on.add(request.person)

    @workflow.signal(name=ids.DELIVERY_REPORT)
    def delivery_report(self, report: DeliveryReport) -> None:
        """A provider says a direct page it accepted did not arrive: that person's next method goes now."""
        self._watch.failed[report.idempotency_key] = report.reason

    @workflow.query
    def progress(self) -> EscalationResult:
        return self._result

    @workflow.run
    async def run(self, input: EscalationInput) -> EscalationResult:
        policy = input.policy
        for ladder in range(policy.escalation.repeat + 1):
            for number, tier in enumerate(policy.escalation.tiers, start=1):
                if self._stop_reason:
                    break
                self._result.tiers_reached += 1
                if ladder == 0 and number == 1:
                    continue  # the incident paged tier 1 and waited it out before it started this ladder
                text, key = tier_page(input, ladder, number)
                # The tier's wait starts when it is paged, not when every delivery to it has landed; each
                # channel reports on its own, so a page is known (and can be acknowledged) while e-mail retries.
                on_call = await self._on_call_now(input, tier.notify)
                people = expand(policy, tier.notify, RoleHolders(assigned=input.assigned, on_call=on_call))
                self._deliveries += [
                    asyncio.ensure_future(self._notify(input, number, people, [channel], text, key=key))
                    for channel in tier.channels
                ]
                await self._wait_for_acknowledgement(timedelta(minutes=tier.wait_minutes))
        self._result.stopped_because = self._stop_reason or "ladder exhausted without an acknowledgement"
        if not self._stop_reason:  # told at once: a delivery still retrying (SMTP down) must not delay it
            await self._tell_incident(
                input,
                EscalationNotice(
                    at=workflow.now(),
                    tier=len(policy.escalation.tiers),
                    round=input.round,
                    people=[],
                    channels=[],
                    text="escalation ladder exhausted without an acknowledgement",
                    occurrence=input.occurrence,
                    exhausted=True,
                ),
            )
        await asyncio.gather(*self._deliveries)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._result

    async def _on_call_now(self, input: EscalationInput, targets: list[str]) -> dict[str, str]:
        """Who the tier's schedules have on call when it is paged, overrides added since included."""
        on_call, problem = await who_is_on_call(input.policy, schedules_named(input.policy, targets))
        if problem:
            notice = EscalationNotice(
                at=workflow.now(),
                tier=0,
                round=input.round,
                people=[],
                channels=[],
                text=problem,
                occurrence=input.occurrence,
            )
            await self._tell_incident(input, notice)
        return on_call

    async def _wait_for_acknowledgement(self, wait: timedelta) -> None:
        self._tier_handed_on = False
        try:
            await workflow.wait_condition(lambda: bool(self._stop_reason) or self._tier_handed_on, timeout=wait)
        except TimeoutError:
            pass

    async def _notify(
        self, input: EscalationInput, tier: int, people: list[str], channels: list[Channel], text: str, key: str
    ) -> None:
        reached = await reach(
            input.policy,
            people,
            channels,
            text,
            key,
            incident_id=input.incident_id,
            severity=input.severity,
            occurrence=input.occurrence,
            subject=f"{input.incident_id}: {input.title}",
            watch=self._watch,
            acknowledgeable=True,
        )
        self._result.page_keys += reached.page_keys
        lines = reached.lines + [f"FAILED: {f}" for f in reached.failures]
        await self._tell_incident(
            input,
            EscalationNotice(
                at=workflow.now(),
                tier=tier,
                round=input.round,
                people=people,
                channels=channels,
                text=f"escalation tier {tier}: " + "; ".join(lines),
                page_keys=reached.page_keys,
                occurrence=input.occurrence,
            ),
        )

    async def _tell_incident(self, input: EscalationInput, notice: EscalationNotice) -> None:
        try:
            await workflow.get_external_workflow_handle(input.incident_id).signal(ids.ESCALATION_NOTICE, notice)
        except Exception:
            # The incident is gone (terminated by an operator): nobody is left to acknowledge, so stop.
            workflow.logger.warning("incident %s gone; escalation stops", input.incident_id)
            self._stop_reason = self._stop_reason or "the incident is gone"
