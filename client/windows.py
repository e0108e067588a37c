"""Which maintenance window an alert arrives in. The HTTP service marks each firing alert with the window
it falls in before recording it, so the incident it opens waits without asking anybody (workflows/oncall/lookup.py).

The open windows are read from the SilencesWorkflow at most every `ttl` per process (two seconds by
default: a new window takes effect that soon, and an alert storm costs one query, not one per alert).
Windows that cannot be read count as none: an alert is never silenced by a window nobody can read.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from temporalio.client import Client

from client import oncall as oncall_client
from workflows.contracts.policy import Policy
from workflows.contracts.vocabulary import AlertStatus
from workflows.incident.model import AlertEvent, Silence

log = logging.getLogger("webhook")

FRESH_FOR = timedelta(seconds=2)


class WindowCache:
    def __init__(self, ttl: timedelta = FRESH_FOR) -> None:
        self.ttl = ttl
        self._windows: list[Silence] = []
        self._read_at: datetime | None = None
        self._reading = asyncio.Lock()

    async def mark(
        self, client: Client, policy: Policy, events: list[AlertEvent], now: datetime | None = None
    ) -> list[AlertEvent]:
        """The events, each firing one inside an open window carrying it, unless the policy lets a critical alert
        pass (`silences.critical_passes`); `now` is Temporal's time (a drill's clock runs ahead of the wall's)."""
        now = now or datetime.now(UTC)
        windows = await self._open_windows(client, now)
        passes = policy.silences.critical_passes
        return [
            event if passes and event.critical(policy.triage.criterion_label) else _marked(event, windows, now)
            for event in events
        ]

    async def _open_windows(self, client: Client, now: datetime) -> list[Silence]:
        async with self._reading:
            if self._read_at is None or now - self._read_at >= self.ttl:
                try:
                    self._windows = await oncall_client.silences(client)
                except Exception as err:  # Temporal slow or down: page as if no window were open
                    log.warning("maintenance windows unreadable, alerts page as usual: %s", err)
                    self._windows = []
                self._read_at = now
            return self._windows


def _marked(event: AlertEvent, windows: list[Silence], now: datetime) -> AlertEvent:
    if event.status is not AlertStatus.FIRING:
        return event
    service = event.service or event.labels.get("service", "")
    found = next((w for w in windows if w.matches(service, event.labels, now)), None)
    return event.model_copy(update={"silence": found.model_copy(update={"held": []})}) if found else event
