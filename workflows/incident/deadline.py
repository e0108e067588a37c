"""An incident's deadlines, which decisions can move or clear while a duty waits, and one timer for them all.

Each deadline is a function of the incident's state, so a decision moves it by changing the state, and a
worker restart or a continue-as-new carries it without anything else to save. The duties wait for their own
deadline to pass; the `Clock` keeps ONE timer, for the nearest of them, and restarts it only when the nearest
changes. A timer is an event in the history and a workflow task when it fires: an incident's half-dozen
clocks (the ladder's tier, the estimate, the progress window, the update cadence, the RTO, the review)
cost one timer at a time, not one each.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress
from datetime import datetime, timedelta

from temporalio import workflow

Due = Callable[[], datetime | None]
LET_FIRE = timedelta(seconds=1)  # a timer with less than this to run is not replaced when deadlines move later


class Deadline:
    def __init__(self, due: Due) -> None:
        self._due = due

    def is_due(self) -> bool:
        due = self._due()
        return due is not None and due <= workflow.now()

    async def passed(self) -> datetime:
        """Return once the deadline, as it stands by then, has passed; return the time it was due."""
        while True:
            await workflow.wait_condition(self.is_due)
            due = self._due()
            if due is not None and due <= workflow.now():  # another duty may have moved it meanwhile
                return due


class Clock:
    """The one timer of an incident: it wakes the workflow at the nearest deadline still ahead."""

    def __init__(self) -> None:
        self._dues: list[Due] = []

    def deadline(self, due: Due) -> Deadline:
        self._dues.append(due)
        return Deadline(due)

    def nearest(self) -> datetime | None:
        now = workflow.now()
        return min((d for due in self._dues if (d := due()) is not None and d > now), default=None)

    async def keep_time(self) -> None:
        while True:
            nearest = self.nearest()
            if nearest is None:
                await workflow.wait_condition(lambda: self.nearest() is not None)
                continue
            with suppress(TimeoutError):  # the timer fired: the deadlines due now pass, the next one is timed
                await workflow.wait_condition(lambda at=nearest: self._retime(at), timeout=nearest - workflow.now())  # type: ignore[misc]

    def _retime(self, running: datetime) -> bool:
        """Replace the running timer when a deadline comes before it, or when the nearest moved and the timer
        still has a while to run; a timer about to fire is left to fire (it costs less than a cancellation, and
        never races its own firing)."""
        nearest = self.nearest()
        if nearest == running:
            return False
        return (nearest is not None and nearest < running) or running - workflow.now() > LET_FIRE
