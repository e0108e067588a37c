"""Who owes what in the message loop, and chasing them: each owner asked, the Business Lead's news and
check-backs when an estimate runs out, the direct messages that carry them, and the loop's status line.

CommsWorkflow inherits this; it is apart only to keep each file readable.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.comms import notices, phases
    from workflows.comms.delivery import direct_message, message_key
    from workflows.comms.model import CommsMessage, CommsState
    from workflows.comms.waiting import refresh
    from workflows.contracts.policy import Policy


class Interrupted(Exception):
    """The message in hand was skipped, or the incident moved to a phase that supersedes it."""


class Chasing:
    state: CommsState
    policy: Policy
    _in_flight: int  # activities under way: continue-as-new waits for none
    _sending: set[asyncio.Task[None]]  # direct messages on their own

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
        """A direct message, on its own, so a slow Slack holds back no step."""
        key = f"{message_key(self.state, m)}:{notice.key}"
        sending = direct_message(self.state, self.policy, notice.people, notice.text, key)
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
