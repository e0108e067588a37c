"""A deadline that decisions can move or clear while a duty waits for it (samples-python's updatable_timer).

The time lives in the incident's state, so a decision moves it by changing the state, and a worker
restart or a continue-as-new carries it without anything else to save.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from temporalio import workflow


class Deadline:
    def __init__(self, due: Callable[[], datetime | None]) -> None:
        self._due = due

    async def passed(self) -> datetime:
        """Return once the deadline, as it stands by then, has passed; return the time it was due.

        While there is no deadline, wait for one. When a decision moves it, wait for the new time.
        """
        while True:
            due = self._due()
            if due is None:
                await workflow.wait_condition(lambda: self._due() is not None)
                continue
            remaining = due - workflow.now()
            if remaining.total_seconds() <= 0:
                return due
            try:
                await workflow.wait_condition(lambda at=due: self._due() != at, timeout=remaining)  # type: ignore[misc]
            except TimeoutError:
                if self._due() == due:
                    return due
