"""A deadline that decisions can move or clear while a duty waits for it (samples-python's updatable_timer).

The time lives in the incident's state, so a decision moves it by changing the state, and a worker
restart or a continue-as-new carries it without anything else to save. The timer follows lazily: a
deadline moved later (a status update, a progress note) starts no timer at once; the running timer
fires, finds the deadline further off, and waits again. Only a deadline brought earlier replaces its
timer. So a decision issues only the commands of what it asked for, in one order on every worker.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from temporalio import workflow


class Deadline:
    def __init__(self, due: Callable[[], datetime | None]) -> None:
        self._due = due

    async def passed(self) -> datetime:
        """Return once the deadline, as it stands by then, has passed; return the time it was due."""
        while True:
            due = self._due()
            if due is None:
                await workflow.wait_condition(lambda: self._due() is not None)
                continue
            remaining = due - workflow.now()
            if remaining.total_seconds() <= 0:
                return due
            try:
                await workflow.wait_condition(lambda at=due: self._brought_forward(at), timeout=remaining)  # type: ignore[misc]
            except TimeoutError:
                pass

    def _brought_forward(self, than: datetime) -> bool:
        due = self._due()
        return due is not None and due < than
