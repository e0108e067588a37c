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
    from workflows.contracts.clock import local
    from workflows.contracts.policy import Policy
    from workflows.contracts.temporal import ids
    from workflows.contracts.temporal.ids import SILENCES_ID
    from workflows.contracts.temporal.priority import INCIDENT
    from workflows.contracts.vocabulary import AlertStatus
    from workflows.delivery.deliveries import Deliveries
    from workflows.delivery.reach import ActivityOptions
    from workflows.incident.lifecycle import alerts_cleared, released_from_window
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
    window ends (or is expired) with the alert still firing, the incident proceeds as any other, as if the
    alert had arrived then.

    Which window an alert falls in the HTTP service finds as the alert arrives (client/windows.py), so
    the incident needs no lookup before its first page. Every window one of its alerts arrived in holds it:
    the incident waits for the last of them to end, and each is told, so that expiring it early reaches here.
    """

    def __init__(self, s: IncidentState, out: Deliveries) -> None:
        self.s, self.out = s, out
        self._changes = 0  # windows seen or lifted
        self._ended_early: dict[str, str] = {}  # window -> why it ended before its time
        self._held_by: set[str] = set()  # the windows told that they hold this incident

    def saw(self, event: AlertEvent) -> None:
        """A firing alert inside a window, before anybody was paged."""
        silence, s = event.silence, self.s
        if silence and not s.confirmed and event.status is AlertStatus.FIRING:
            if all(w.silence_id != silence.silence_id for w in s.windows):
                s.windows.append(silence)
                self._changes += 1

    def lift(self, lifted: SilenceLifted) -> None:
        """A window ended early (expired, or already over when the incident asked it to hold)."""
        now = workflow.now()
        self.s.windows = [
            w.model_copy(update={"until": min(w.until, now)}) if w.silence_id == lifted.silence_id else w
            for w in self.s.windows
        ]
        self._ended_early[lifted.silence_id] = lifted.reason
        self._changes += 1

    def _holding(self) -> Silence | None:
        """The latest-ending window not over yet."""
        now = workflow.now()
        return max((w for w in self.s.windows if w.until > now), key=lambda w: w.until, default=None)

    async def held_until_it_clears(self) -> bool:
        """Wait out the windows the incident's alerts fall in; True when every alert cleared meanwhile."""
        s = self.s
        if not s.alert_count:  # the first alert comes with the start: no need to yield for it
            await workflow.wait_condition(lambda: s.alert_count > 0)
        noted: set[str] = set()
        last: Silence | None = None
        while (silence := self._holding()) is not None:
            s.silence = last = silence
            if silence.silence_id not in noted:
                noted.add(silence.silence_id)
                self.out.note(
                    "silenced",
                    f"Inside maintenance window {silence.silence_id} ({silence.reason}) until "
                    f"{local(self.out.policy, silence.until, with_date=True)}: recorded, nobody paged",
                    silence.by or None,
                )
            # Counted before the windows are told: one already over answers with a lift while its hold is still
            # being sent, and that lift must end this wait, not the window's original end.
            seen = self._changes
            for window in list(s.windows):
                await self._hold_me(window)
            try:
                await workflow.wait_condition(
                    lambda: self._changes != seen or alerts_cleared(s),  # noqa: B023 (awaited in this iteration)
                    timeout=max(silence.until - workflow.now(), timedelta(0)),
                )
            except TimeoutError:
                pass
            if alerts_cleared(s):
                self.out.note("silenced", f"Every alert cleared inside maintenance window {silence.silence_id}")
                return True
        if last is not None:
            ended = self._ended_early.get(last.silence_id, "ended")
            self.out.note(
                "silenced",
                f"Maintenance window {last.silence_id} {ended} and the alert still fires: it counts as arriving now",
            )
            released_from_window(s, self.out.policy, workflow.now())
        return False

    async def _hold_me(self, silence: Silence) -> None:
        """Tell the window, so that expiring it early reaches this incident (once per window)."""
        if silence.silence_id in self._held_by:
            return
        self._held_by.add(silence.silence_id)
        try:
            await workflow.get_external_workflow_handle(SILENCES_ID).signal(
                ids.HOLD_INCIDENT, HoldIncident(silence_id=silence.silence_id, incident_id=self.s.incident_id)
            )
        except Exception:
            workflow.logger.info("maintenance windows gone; %s waits for its window's end", self.s.incident_id)
