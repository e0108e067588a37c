"""HeartbeatWorkflow: a dead man's switch per declared heartbeat (workflow id `heartbeat-<name>`).

Each beat (`POST /heartbeats/<name>`, signal-with-start) moves the deadline to interval + grace after it.
When the deadline passes without a beat, the policy file is read again: a heartbeat it no longer declares
stops, a longer interval moves the deadline; otherwise an incident opens through the alert path, as a
firing alert of the heartbeat's alert group. The first beat after the miss (one arriving while the alert
is sent included) sends that alert resolved, and the incident resolves as the policy says for any alert.
The deadline is a Temporal timer: a restart of everything loses none.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.oncall import OnCallActivities
    from workflows.contracts.temporal import ids
    from workflows.contracts.temporal.priority import INCIDENT
    from workflows.contracts.vocabulary import AlertStatus
    from workflows.delivery.reach import ActivityOptions
    from workflows.incident.model import AlertEvent
    from workflows.oncall.model import (
        Beat,
        Heartbeat,
        HeartbeatAlert,
        HeartbeatInput,
        HeartbeatQuestion,
        HeartbeatState,
    )

ALERT_SOURCE = "heartbeat"
# Both activities read the worker's policy file, and retry for as long as it does not load: a miss is
# reported late rather than never, and the heartbeat's workflow never fails for a file being edited.
POLICY_FILE: ActivityOptions = {
    "start_to_close_timeout": timedelta(seconds=20),
    "retry_policy": RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30)),
    "priority": INCIDENT,
}


@workflow.defn(name=ids.HEARTBEAT_WORKFLOW)
class HeartbeatWorkflow:
    @workflow.init
    def __init__(self, input: HeartbeatInput) -> None:
        self.name, self.beats, self.missed_since = input.name, input.beats, input.missed_since
        self.heartbeat: Heartbeat | None = input.heartbeat
        self.last_beat: datetime | None = input.last_beat

    @workflow.signal(name=ids.BEAT)
    def beat(self, beat: Beat) -> None:
        self.heartbeat, self.last_beat = beat.heartbeat, workflow.now()
        self.beats += 1

    @workflow.query(name=ids.HEARTBEAT_STATE)
    def state(self) -> HeartbeatState:
        return HeartbeatState(
            name=self.name, beats=self.beats, last_beat=self.last_beat, due=self._due(), missed_since=self.missed_since
        )

    def _due(self) -> datetime | None:
        if self.heartbeat is None or self.last_beat is None:
            return None
        return self.last_beat + self.heartbeat.deadline()

    @workflow.run
    async def run(self, input: HeartbeatInput) -> None:
        seen = self.beats  # a beat counts once it is waited for: one landing while an alert is sent counts next
        while workflow.info().get_current_history_length() < input.history_limit:
            due = self._due()
            self._show(due)
            try:
                await workflow.wait_condition(
                    lambda: self.beats != seen,  # noqa: B023 (awaited in this iteration)
                    timeout=None if self.missed_since or due is None else max(due - workflow.now(), timedelta(0)),
                )
            except TimeoutError:
                if not await self._still_missed():
                    if self.heartbeat is None:
                        workflow.set_current_details(f"**Heartbeat {self.name}**: no longer in the policy; stopped")
                        return
                    continue  # declared with a longer deadline now: wait for that
                self.missed_since = workflow.now()
                await self._send(AlertStatus.FIRING)
                continue
            seen = self.beats
            if self.missed_since is not None:  # beating again
                await self._send(AlertStatus.RESOLVED)
                self.missed_since = None
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(
            input.model_copy(
                update={
                    "beats": self.beats,
                    "missed_since": self.missed_since,
                    "heartbeat": self.heartbeat,
                    "last_beat": self.last_beat,
                }
            )
        )

    async def _still_missed(self) -> bool:
        """The deadline passed under the declaration of the last beat; the policy may have changed since. A
        heartbeat no longer declared stops (heartbeat None); a longer interval moves the deadline."""
        declared = await workflow.execute_activity_method(
            OnCallActivities.heartbeat_declared, HeartbeatQuestion(name=self.name), **POLICY_FILE
        )
        self.heartbeat = declared.heartbeat
        due = self._due()
        return due is not None and due <= workflow.now()

    def _show(self, due: datetime | None) -> None:
        when = (
            f"missed since {self.missed_since:%Y-%m-%d %H:%M} UTC"
            if self.missed_since
            else f"next beat due by {due:%Y-%m-%d %H:%M:%S} UTC"
            if due
            else "waiting for its first beat"
        )
        workflow.set_current_details(f"**Heartbeat {self.name}**: {self.beats} beats; {when}")

    async def _send(self, status: AlertStatus) -> None:
        heartbeat = self.heartbeat
        # A deadline passes only once a beat declared the heartbeat; a miss stays declared as it was found.
        assert heartbeat is not None
        minutes = heartbeat.deadline() // timedelta(minutes=1)
        event = AlertEvent(
            source=ALERT_SOURCE,
            dedup_key=self.name,
            fingerprint=self.name,
            status=status,
            title=heartbeat.title or f"Heartbeat {self.name} missed",
            description=f"No beat from {self.name} for {minutes} min (interval {heartbeat.interval_minutes} min, "
            f"grace {heartbeat.grace_minutes} min)",
            severity=heartbeat.severity,
            service=heartbeat.service,
            labels={"heartbeat": self.name},
            received_at=workflow.now(),
        )
        alert = HeartbeatAlert(event=event)
        await workflow.execute_activity_method(OnCallActivities.heartbeat_alert, alert, **POLICY_FILE)
