"""Paging people directly (`paging_provider = "direct"`): each person paged follows their notification rules.

"Push at once, SMS after 2 minutes, a call after 5 if still unacknowledged": every step waits on a durable
timer, and none goes once the page is answered (`Watch.stopped`). A step that fails, at once (the provider
refuses it) or later (its status callback says undelivered, `Watch.failed`), moves to the next step at once.
High urgency (SEV1, SEV2) follows the `high` rules, the rest `low`, which wait out the person's quiet hours.
The rules themselves (`plan`) are a plain function; the ladder is run by the incident for tier 1 and by its
escalation workflow for the later tiers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.contracts.activity_io import Reached
    from workflows.contracts.people import NotificationRules, NotificationStep, Person, QuietHours
    from workflows.contracts.vocabulary import Channel, Severity
    from workflows.oncall.rotation import zone

if TYPE_CHECKING:
    from workflows.delivery.reach import Step

URGENT = (Severity.SEV1, Severity.SEV2)


@dataclass
class Watch:
    """What a workflow that pages directly knows while the rules run: whether the page is answered, who handed it
    on to the next tier (an Escalate decision), and which deliveries the providers reported as failed (by
    idempotency key, DeliveryReport)."""

    stopped: Callable[[], bool] = lambda: False
    failed: dict[str, str] = field(default_factory=dict)
    handed_on: set[str] = field(default_factory=set)
    # Where a failed step is told at once (the incident's timeline); None: with the rest, once the rules are done.
    tell: Callable[[str], None] | None = None

    def stops(self, person: str) -> bool:
        """No more of `person`'s methods: the page is answered, or they handed it on, as acknowledging does."""
        return self.stopped() or person in self.handed_on


def plan(rules: NotificationRules, severity: Severity, now: datetime) -> list[tuple[NotificationStep, timedelta]]:
    """Each step of the rules for this urgency, with when it is due after the page (quiet hours delay low)."""
    steps = rules.high if severity in URGENT else rules.low
    delay = timedelta(0) if severity in URGENT or rules.quiet_hours is None else _quiet_left(rules.quiet_hours, now)
    return [
        (step, delay + timedelta(minutes=step.after_minutes)) for step in sorted(steps, key=lambda s: s.after_minutes)
    ]


def _quiet_left(quiet: QuietHours, now: datetime) -> timedelta:
    """How long until the quiet hours end (zero outside them); they may span midnight."""
    there = now.astimezone(zone(quiet.timezone))
    start = there.replace(hour=quiet.start.hour, minute=quiet.start.minute, second=0, microsecond=0)
    end = there.replace(hour=quiet.end.hour, minute=quiet.end.minute, second=0, microsecond=0)
    if quiet.start <= quiet.end:
        inside = start <= there < end
    else:  # 22:00-07:00
        inside = there >= start or there < end
        if there >= start:
            end += timedelta(days=1)
    return end - there if inside else timedelta(0)


Sender = Callable[["Step", dict[str, str]], Awaitable[Reached]]


def page_directly(step: Step, people: list[str], senders: dict[Channel, Sender]) -> Awaitable[Reached]:
    """Follow each person's rules side by side. What is due at once is asked for before this returns, so a
    page that must go first does (Deliveries.page_now)."""
    policy, started = step.policy, workflow.now()
    ladders = []
    for person_id in people:
        person = policy.people.get(person_id)
        if person is None:
            continue
        steps = [
            (s, due) for s, due in plan(policy.rules_for(person), step.severity, started) if person.contact(s.channel)
        ]
        ladders.append(_Ladder(step, person_id, person, steps, senders, started))
    firsts = [ladder.start() for ladder in ladders]

    async def all_of_them() -> Reached:
        reached = Reached()
        for part in await asyncio.gather(*(ladder.run(first) for ladder, first in zip(ladders, firsts, strict=True))):
            reached.lines += part.lines
            reached.failures += part.failures
        return reached

    return all_of_them()


class _Ladder:
    def __init__(
        self,
        step: Step,
        person_id: str,
        person: Person,
        steps: list[tuple[NotificationStep, timedelta]],
        senders: dict[Channel, Sender],
        started: datetime,
    ) -> None:
        self.step, self.person_id, self.person, self.steps = step, person_id, person, steps
        self.senders, self.started = senders, started
        self.reached = Reached()

    def start(self) -> Awaitable[Reached] | None:
        """The first step's delivery, asked for now when it is due at once."""
        if self.steps and self.steps[0][1] <= timedelta(0) and not self.step.watch.stops(self.person_id):
            return self._send(0)
        return None

    def _send(self, number: int) -> Awaitable[Reached]:
        """The step's delivery, under its own key: the sender keys it `<that>:<person>` (`_delivery`)."""
        channel = self.steps[number][0].channel
        keyed = replace(self.step, key=f"{self.step.key}:m{number}", acknowledgeable=True)
        return self.senders[channel](keyed, {self.person_id: self.person.contact(channel)})

    def _delivery(self, number: int) -> str:
        """The idempotency key of a step's delivery, which the provider's reports name."""
        return f"{self.step.key}:m{number}:{self.person_id}"

    async def run(self, first: Awaitable[Reached] | None) -> Reached:
        watch, moved_on = self.step.watch, False
        for number, (rule, due) in enumerate(self.steps):
            if number or first is None:
                left = self.started + due - workflow.now()
                if not moved_on and left > timedelta(0):
                    try:
                        await workflow.wait_condition(lambda: watch.stops(self.person_id), timeout=left)
                    except TimeoutError:
                        pass
                if watch.stops(self.person_id):
                    break
                sending = self._send(number)
            else:
                sending = first
            part = await sending
            self.reached.lines += part.lines
            self._failures(part.failures)
            if part.failures:
                moved_on = True  # refused: the next method at once
                continue
            key = self._delivery(number)
            moved_on = await self._failed_later(key, next_due=self._next_due(number))
            if moved_on:
                self._failures([f"{rule.channel.label} {self.person_id} failed: {watch.failed[key]}"])
        return self.reached

    def _failures(self, lines: list[str]) -> None:
        tell = self.step.watch.tell
        if tell is None:
            self.reached.failures += lines
            return
        for line in lines:
            tell(line)

    def _next_due(self, number: int) -> datetime | None:
        return self.started + self.steps[number + 1][1] if number + 1 < len(self.steps) else None

    async def _failed_later(self, key: str, next_due: datetime | None) -> bool:
        """Until the next step is due: True when the provider reports this delivery failed."""
        if next_due is None:
            return False
        watch = self.step.watch
        left = next_due - workflow.now()
        if left <= timedelta(0):
            return key in watch.failed
        try:
            await workflow.wait_condition(lambda: key in watch.failed or watch.stops(self.person_id), timeout=left)
        except TimeoutError:
            return False
        return key in watch.failed
