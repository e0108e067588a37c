"""Invariants of the alert path over random alert streams (hypothesis), on the time-skipping server.

Any sequence of firing and resolved notifications, repeats, severity changes, maintenance windows, assessments,
acknowledgements and waits: no workflow task ever fails, no tier of a round is paged after that round was
acknowledged, and a confirmed incident that nobody acknowledged is always paged.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Callable, Coroutine
from contextlib import suppress
from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from temporalio.api.enums.v1 import EventType, WorkflowTaskFailedCause
from temporalio.client import WorkflowUpdateFailedError
from temporalio.service import RPCError

from client.alerts import send_alert
from tests.conftest import run_under
from tests.workflows.helpers import make_policy, outbox, state
from workflows.contracts.temporal.ids import incident_id_for, ladder_workflow_id
from workflows.contracts.vocabulary import AlertStatus, IncidentKind, Severity, Status
from workflows.incident.model import Acknowledge, AlertEvent, Classify, IncidentState, Silence

STREAMS = hypothesis_settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture], database=None
)
STEP = re.compile(r"escalation:r(\d+):l\d+:t\d+")
# RACED_COMPLETION: a workflow that completes (a disturbance logged and closed) in the task an alert's signal
# arrives during is refused by the server with this cause, and the SDK runs the task again with the signal.
# It is how Temporal delivers a signal that raced a completion, not a task our code failed.
UNHANDLED_COMMAND = WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_UNHANDLED_COMMAND

alerts = st.builds(
    lambda fingerprint, firing, severity, windowed: ("alert", fingerprint, firing, severity, windowed),
    st.sampled_from(["fp1", "fp2"]),
    st.booleans(),
    st.sampled_from([None, Severity.SEV1, Severity.SEV2, Severity.SEV3]),
    st.booleans(),
)
steps = st.one_of(
    alerts,
    st.tuples(st.just("ack"), st.sampled_from(["bob", "alice"])),
    st.tuples(st.just("classify"), st.sampled_from([IncidentKind.INCIDENT, IncidentKind.DISTURBANCE])),
    st.tuples(st.just("wait"), st.integers(min_value=0, max_value=20)),
)


def on_loop(check: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Hypothesis drives sync functions: run it in a thread and send each example to the test's loop."""
    loop = asyncio.get_running_loop()

    def blocking(**example: Any) -> None:
        asyncio.run_coroutine_threadsafe(check(**example), loop).result()

    return blocking


def round_pages(settings, occurrence: str) -> dict[int, set[str]]:
    """Round -> the step keys paged in it, for one occurrence of an incident."""
    found: dict[int, set[str]] = {}
    for entry in outbox(settings, "opsgenie", "page"):
        if f"{occurrence}:" in entry["key"] and (m := STEP.search(entry["key"])):
            found.setdefault(int(m.group(1)), set()).add(m.group(0))
    return found


async def test_any_alert_stream_never_fails_a_task_never_pages_past_an_ack_and_always_pages_the_unacknowledged(
    ts_env, settings, worker
):
    policy = run_under(settings, make_policy())  # the worker runs only what its policy file holds
    found: list[str] = []

    @on_loop
    async def check(first: tuple[Any, ...], stream: list[tuple[Any, ...]]) -> None:
        group = uuid.uuid4().hex
        incident_id = incident_id_for("test", group)

        async def event(step: tuple[Any, ...]) -> AlertEvent:
            _, fingerprint, firing, severity, windowed = step
            now = await ts_env.get_current_time()
            window = (
                Silence(silence_id="S9", service="checkout", start=now, until=now + timedelta(minutes=10), reason="w")
                if windowed and firing
                else None
            )
            return AlertEvent(
                source="test",
                dedup_key=group,
                fingerprint=fingerprint,
                status=AlertStatus.FIRING if firing else AlertStatus.RESOLVED,
                title="Checkout is failing",
                severity=severity,
                service="checkout",
                silence=window,
            )

        await send_alert(ts_env.client, settings, policy, await event(first))  # the way every alert comes in
        handle = ts_env.client.get_workflow_handle(incident_id)  # its latest run: a closed one may open anew
        runs: set[str] = set()
        acknowledged: dict[tuple[str, int], set[str]] = {}  # (run, round) -> what it had paged when acknowledged
        for step in stream:
            with suppress(RPCError):  # no incident runs for a group whose alerts all recovered
                runs.add((await handle.describe()).run_id)
            match step:
                case ("alert", *_):
                    await send_alert(ts_env.client, settings, policy, await event(step))
                case ("ack", person):
                    try:
                        await handle.execute_update("acknowledge", Acknowledge(actor=person))
                    except (WorkflowUpdateFailedError, RPCError):
                        continue  # refused (not open, acknowledged already, closed): fine
                    await asyncio.sleep(0.3)  # pages already under way land
                    s = await state(handle)
                    key = (s.occurrence, s.escalation_round)
                    acknowledged[key] = round_pages(settings, s.occurrence).get(s.escalation_round, set())
                case ("classify", kind):
                    with suppress(WorkflowUpdateFailedError, RPCError):
                        await handle.execute_update("classify", Classify(actor="alice", kind=kind))
                case ("wait", minutes):
                    await ts_env.sleep(timedelta(minutes=minutes, seconds=1))
        await ts_env.sleep(timedelta(seconds=10))
        try:
            s = await state(handle)
        except RPCError:
            assert all(not e[2] for e in [first, *stream] if e[0] == "alert"), "a firing alert opened nothing"
            found.append("no incident: every alert had recovered")
            return
        runs.add((await handle.describe()).run_id)
        for run in runs:
            history = ts_env.client.get_workflow_handle(incident_id, run_id=run).fetch_history_events()
            async for history_event in history:
                failed = history_event.workflow_task_failed_event_attributes
                assert history_event.event_type != EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED or (
                    failed.cause == UNHANDLED_COMMAND  # the server's, not ours: see RACED_COMPLETION
                ), (failed.failure.message, first, stream)
        for (occurrence, round_), before in acknowledged.items():
            after = round_pages(settings, occurrence).get(round_, set()) - before
            assert not after, f"paged {sorted(after)} after round {round_} was acknowledged: {first} {stream}"
        if s.confirmed and s.status is Status.OPEN and not s.acknowledged_by:
            paged = round_pages(settings, s.occurrence)
            assert paged.get(s.escalation_round), f"round {s.escalation_round} unacknowledged, unpaged: {stream}"
        found.append(f"{s.status.value}/{s.kind}/{s.severity.value}/round {s.escalation_round}")
        await stop(handle.id, s)

    async def stop(incident_id: str, s: IncidentState) -> None:
        """The example is over: its incident and ladders leave the server, so that their timers do not slow the
        examples after it (the test server skips time for all of them)."""
        ids = [incident_id, *(ladder_workflow_id(s.occurrence, r) for r in range(1, s.escalation_round + 1))]
        for workflow_id in ids:
            with suppress(RPCError):
                await ts_env.client.get_workflow_handle(workflow_id).terminate("the example is over")

    await asyncio.to_thread(STREAMS(given(first=alerts, stream=st.lists(steps, max_size=10))(check)))
    assert found, "the streams ran"
