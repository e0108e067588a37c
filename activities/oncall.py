"""The on-call workflows' one outside system is Temporal itself: a schedule's overrides are held by a
workflow, and a missed heartbeat opens an incident the way an alert does.

These activities use the worker's own client (`activity.client()`), so the worker builds nothing for them.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import activity
from temporalio.exceptions import ApplicationError

from client import oncall as oncall_client
from client.alerts import send_alert
from client.windows import WindowCache
from policy_file import PolicyError, load_policy
from settings import Settings
from workflows.contracts.policy import Policy
from workflows.contracts.temporal.ids import incident_id_for
from workflows.oncall.model import (
    AlertSent,
    HeartbeatAlert,
    HeartbeatDeclared,
    HeartbeatQuestion,
    OverridesAnswer,
    OverridesRequest,
)


class OnCallActivities:
    """The heartbeat's incident is opened under the worker's policy file (INCIDENT_POLICY), read when it
    opens: the HTTP service would have used the same file for an alert, and a heartbeat workflow lives
    for months, so it carries no policy of its own."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        # A heartbeat alert is rare: it reads the maintenance windows afresh every time.
        self._windows = WindowCache(ttl=timedelta(0))

    @activity.defn
    async def schedule_overrides(self, request: OverridesRequest) -> OverridesAnswer:
        """Each schedule's overrides as its ScheduleWorkflow holds them; none where nobody ever overrode it."""
        client = activity.client()
        found = await asyncio.gather(*(oncall_client.overrides(client, name) for name in request.schedules))
        return OverridesAnswer(overrides=dict(zip(request.schedules, found, strict=True)))

    @activity.defn
    async def heartbeat_declared(self, request: HeartbeatQuestion) -> HeartbeatDeclared:
        """The heartbeat as the policy file declares it now: a deadline passes under the policy of its day."""
        return HeartbeatDeclared(heartbeat=self._policy().heartbeats.get(request.name))

    @activity.defn
    async def heartbeat_alert(self, request: HeartbeatAlert) -> AlertSent:
        """A missed or resumed heartbeat, recorded on its incident by the alert path (signal-with-start)."""
        policy = self._policy()
        info = activity.info()  # Temporal's time, not this machine's: the windows are on its clock
        (event,) = await self._windows.mark(
            activity.client(), policy, [request.event], info.current_attempt_scheduled_time or info.started_time
        )
        opened = await send_alert(activity.client(), self.settings, policy, event)
        return AlertSent(incident_id=incident_id_for(request.event.source, request.event.dedup_key), opened=opened)

    def _policy(self) -> Policy:
        """A policy file that does not load (an edit half done) is retried until it does: the miss it was asked
        about is reported then, never dropped."""
        try:
            return load_policy(self.settings.incident_policy)
        except PolicyError as err:
            raise ApplicationError(f"{err}; retrying until the file loads") from err
