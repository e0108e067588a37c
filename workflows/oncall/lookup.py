"""On call and maintenance windows, as an incident and its ladder see them when they page.

Who is on call is computed here, from `workflow.now()` and the schedule in the policy
(workflows/oncall/rotation.py); only the overrides come from outside, from the schedules' workflows, through
an activity whose answer the history records (so a replay pages the same person). A lookup that
fails pages from the rotation alone: paging never waits on the overrides.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.oncall import OnCallActivities
    from workflows.contracts import ids
    from workflows.contracts.clock import local
    from workflows.contracts.ids import SILENCES_ID
    from workflows.contracts.policy import Policy
    from workflows.contracts.priority import INCIDENT
    from workflows.contracts.vocabulary import AlertStatus
    from workflows.delivery.deliveries import Deliveries
    from workflows.delivery.reach import ActivityOptions
    from workflows.incident.lifecycle import alerts_cleared
    from workflows.incident.model import AlertEvent, IncidentState, Silence
    from workflows.oncall.model import HoldIncident, OverridesRequest, SilenceLifted
    from workflows.oncall.rotation import on_call


# A lookup is a query to a workflow on this same Temporal: seconds at most, then page without it. Ahead of
# deliveries on the task queue, like the page it precedes.
LOOKUP: ActivityOptions = {
    "start_to_close_timeout": timedelta(seconds=5),
    "schedule_to_close_timeout": timedelta(seconds=15),
    "retry_policy": RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_attempts=3),
    "priority": INCIDENT,
}


async def who_is_on_call(policy: Policy, schedules: list[str]) -> tuple[dict[str, str], str]:
    """Schedule name -> who is on call in it now, with its overrides; and what went wrong, if anything."""
    if not schedules:
        return {}, ""
    problem = ""
    try:
        answer = await workflow.execute_activity_method(
            OnCallActivities.schedule_overrides, OverridesRequest(schedules=schedules), **LOOKUP
        )
        overrides = answer.overrides
    except ActivityError as err:
        overrides, problem = (
            {},
            f"overrides of {', '.join(schedules)} unreadable ({err.cause or err}): paged from the rotation",
        )
    # An override sent past incidentctl (the Temporal UI) may name somebody this policy does not know.
    strangers = [o for found in overrides.values() for o in found if o.who not in policy.people]
    if strangers:
        problem = "; ".join(
            f"override {o.override_id} names {o.who!r}, no person of the policy: ignored" for o in strangers
        )
    usable = {name: [o for o in found if o.who in policy.people] for name, found in overrides.items()}
    now = workflow.now()
    return {name: on_call(policy.schedules[name], usable.get(name, []), now) for name in schedules}, problem


class MaintenanceWindow:
    """OpsGenie's maintenance windows: an alert inside a window is recorded and pages nobody; when the
    window ends (or is expired) with the alert still firing, the incident proceeds as any other.

    Which window an alert falls in the HTTP service finds as the alert arrives (client/windows.py), so
    the incident needs no lookup before its first page.
    """

    def __init__(self, s: IncidentState, out: Deliveries) -> None:
        self.s, self.out = s, out
        self._lifted: SilenceLifted | None = None

    def saw(self, event: AlertEvent) -> None:
        """A firing alert inside a window, before anybody was paged: the latest-ending window holds."""
        silence, s = event.silence, self.s
        if silence and not s.confirmed and event.status is AlertStatus.FIRING:
            if s.silence is None or silence.until > s.silence.until:
                s.silence = silence

    def lift(self, lifted: SilenceLifted) -> None:
        self._lifted = lifted

    async def held_until_it_clears(self) -> bool:
        """Wait out the window the incident's alerts fall in; True when every alert cleared meanwhile."""
        s = self.s
        if not s.alert_count:  # the first alert comes with the start: no need to yield for it
            await workflow.wait_condition(lambda: s.alert_count > 0)
        told: set[str] = set()
        while s.silence is not None and self._lifted is None and workflow.now() < s.silence.until:
            silence = s.silence
            if silence.silence_id not in told:
                told.add(silence.silence_id)
                self.out.note(
                    "silenced",
                    f"Inside maintenance window {silence.silence_id} ({silence.reason}) until "
                    f"{local(self.out.policy, silence.until, with_date=True)}: recorded, nobody paged",
                    silence.by or None,
                )
                await self._hold_me(silence)
            try:
                await workflow.wait_condition(
                    lambda: self._lifted is not None or alerts_cleared(s) or s.silence != silence,  # noqa: B023 (awaited in this iteration)
                    timeout=silence.until - workflow.now(),
                )
            except TimeoutError:
                pass
            if alerts_cleared(s):
                self.out.note("silenced", f"Every alert cleared inside maintenance window {silence.silence_id}")
                return True
        if s.silence is not None:
            ended = self._lifted.reason if self._lifted else "ended"
            self.out.note("silenced", f"Maintenance window {s.silence.silence_id} {ended} and the alert still fires")
        return False

    async def _hold_me(self, silence: Silence) -> None:
        """Tell the window, so that expiring it early reaches this incident."""
        try:
            await workflow.get_external_workflow_handle(SILENCES_ID).signal(
                ids.HOLD_INCIDENT, HoldIncident(silence_id=silence.silence_id, incident_id=self.s.incident_id)
            )
        except Exception:
            workflow.logger.info("maintenance windows gone; %s waits for its window's end", self.s.incident_id)
