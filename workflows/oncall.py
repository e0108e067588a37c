"""On call and maintenance windows, as an incident and its ladder see them when they page.

Who is on call is computed here, from `workflow.now()` and the schedule in the policy
(workflows/schedules.py); only the overrides come from outside, from the schedules' workflows, through
an activity whose answer the history records (so a replay pages the same person). A lookup that
fails pages from the rotation alone: paging never waits on the overrides. Likewise a maintenance window
that cannot be checked pages: a valid alert is never lost to a silence nobody can read.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.oncall import OnCallActivities
    from workflows.deliveries import Deliveries
    from workflows.lifecycle import alerts_cleared
    from workflows.model import AlertEvent, IncidentState
    from workflows.oncall_model import OverridesRequest, Silence, SilenceCheck, SilenceLifted
    from workflows.policy import Policy
    from workflows.priority import INCIDENT
    from workflows.reach import ActivityOptions
    from workflows.schedules import on_call
    from workflows.vocabulary import Status

# Markers in new histories; histories recorded before schedules and windows existed replay without them.
ON_CALL_PATCH = "on-call-schedules"
WINDOWS_PATCH = "maintenance-windows"

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
    if not schedules or not workflow.patched(ON_CALL_PATCH):
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
    window ends (or is expired) with the alert still firing, the incident proceeds as any other."""

    def __init__(self, s: IncidentState, out: Deliveries) -> None:
        self.s, self.out = s, out
        self._lifted: SilenceLifted | None = None

    def lift(self, lifted: SilenceLifted) -> None:
        self._lifted = lifted

    async def held_until_it_clears(self) -> bool:
        """Wait out every window the incident's alert falls in; True when its alerts cleared meanwhile."""
        s = self.s
        await workflow.wait_condition(lambda: s.alert_count > 0)
        if not workflow.patched(WINDOWS_PATCH):
            return False
        while s.status is Status.OPEN:
            silence = await self._window()
            if silence is None:
                return False
            self._lifted = None
            self.out.note(
                "silenced",
                f"Inside maintenance window {silence.silence_id} ({silence.reason}) until "
                f"{silence.until:%Y-%m-%d %H:%M} UTC: recorded, nobody paged",
                silence.by or None,
            )
            try:
                await workflow.wait_condition(
                    lambda: self._lifted is not None or alerts_cleared(s),
                    timeout=max(silence.until - workflow.now(), timedelta(0)),
                )
            except TimeoutError:
                pass
            if alerts_cleared(s):
                self.out.note("silenced", f"Every alert cleared inside maintenance window {silence.silence_id}")
                return True
            ended = self._lifted.reason if self._lifted else "ended"
            self.out.note("silenced", f"Maintenance window {silence.silence_id} {ended} and the alert still fires")
        return False

    def saw(self, event: AlertEvent) -> None:
        """The labels a window's matchers look at: the first alert's, which named the incident."""
        if not self.s.alert_labels:
            self.s.alert_labels = dict(event.labels)

    async def _window(self) -> Silence | None:
        s = self.s
        try:
            answer = await workflow.execute_activity_method(
                OnCallActivities.silence_check,
                SilenceCheck(incident_id=s.incident_id, service=s.service, labels=s.alert_labels),
                **LOOKUP,
            )
        except ActivityError as err:
            self.out.note("silenced", f"Maintenance windows unreadable ({err.cause or err}): paging as usual")
            return None
        return answer.silence
