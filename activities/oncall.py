"""The on-call workflows' one outside system is Temporal itself: a schedule's overrides are held by a
workflow, and a missed heartbeat opens an incident the way an alert does.

These activities use the worker's own client (`activity.client()`), so the worker builds nothing for them.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import activity
from temporalio.exceptions import ApplicationError

from policy_file import PolicyError, load_policy
from settings import Settings
from workflows.oncall_model import (
    AlertSent,
    HeartbeatAlert,
    OverridesAnswer,
    OverridesRequest,
)
from workflows.vocabulary import incident_id_for

SILENCES_ID = "silences"  # the one SilencesWorkflow
# A query is answered by the worker holding the workflow: within a second or two, unless no worker polls
# its task queue. Shorter than the lookup's attempt (workflows/oncall.py), so an attempt ends cleanly.
QUERY_TIMEOUT = timedelta(seconds=3)


def schedule_workflow_id(schedule: str) -> str:
    return f"schedule-{schedule}"


def heartbeat_workflow_id(name: str) -> str:
    return f"heartbeat-{name}"


class OnCallActivities:
    """The heartbeat's incident is opened under the worker's policy file (INCIDENT_POLICY), read when it
    opens: the HTTP service would have used the same file for an alert, and a heartbeat workflow lives
    for months, so it carries no policy of its own."""

    def __init__(self, settings: Settings) -> None:
        # Imported here: it imports the workflows, which import this module.
        from starter.windows import WindowCache

        self.settings = settings
        # A heartbeat alert is rare: it reads the maintenance windows afresh every time.
        self._windows = WindowCache(ttl=timedelta(0))

    @activity.defn
    async def schedule_overrides(self, request: OverridesRequest) -> OverridesAnswer:
        """Each schedule's overrides as its ScheduleWorkflow holds them; none where nobody ever overrode it."""
        # Imported here: it imports the workflows, which import this module.
        from starter import oncall_client

        client = activity.client()
        found = await asyncio.gather(*(oncall_client.overrides(client, name) for name in request.schedules))
        return OverridesAnswer(overrides=dict(zip(request.schedules, found, strict=True)))

    @activity.defn
    async def heartbeat_alert(self, request: HeartbeatAlert) -> AlertSent:
        """A missed or resumed heartbeat, recorded on its incident by the alert path (signal-with-start)."""
        # Imported here: it imports the workflows, which import this module.
        from starter.alerts import send_alert

        try:
            policy = load_policy(self.settings.incident_policy)
        except PolicyError as err:
            raise ApplicationError(str(err), non_retryable=True) from err
        info = activity.info()  # Temporal's time, not this machine's: the windows are on its clock
        (event,) = await self._windows.mark(
            activity.client(), [request.event], info.current_attempt_scheduled_time or info.started_time
        )
        opened = await send_alert(activity.client(), self.settings, policy, event)
        return AlertSent(incident_id=incident_id_for(request.event.source, request.event.dedup_key), opened=opened)
