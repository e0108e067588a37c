"""The drill's scenario: a YAML or TOML file of alerts and people's steps, checked against the policy and
turned into Actions ready to send. Every problem is one line naming the field (DrillError)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from client.decide import decision_model, known_decisions, step_result_type
from starter.drill.oncall import OverrideSpec, SilenceSpec
from workflows.contracts.policy import Policy
from workflows.contracts.vocabulary import AlertStatus, Severity
from workflows.incident.model import AlertEvent, Decision


class DrillError(Exception):
    """A policy, scenario or environment the drill cannot use; the message is one line naming the field."""


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
    """`at` minutes after the start, an alert arrives, or person `as` does `do` (a decision's name in the
    registry, workflows/contracts/decisions.py).

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
    overrides: list[OverrideSpec] = Field(default_factory=list)  # starter/drill/oncall.py
    silences: list[SilenceSpec] = Field(default_factory=list)

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
                raise ValueError(
                    f"steps[{i}] at minute {self.steps[i].at:g} comes before steps[{i - 1}] "
                    f"at minute {self.steps[i - 1].at:g}: list the steps in time order"
                )
        if self.until is not None and self.until < self.steps[-1].at:
            raise ValueError(f"until ({self.until:g}) is before the last step (minute {self.steps[-1].at:g})")
        return self


@dataclass(frozen=True)
class Action:
    """One scenario step made ready to send: an alert, or a decision with its validated input."""

    index: int
    at: float
    workflow: str  # "alert", "incident", "comms" or "on_call"
    name: str
    payload: AlertEvent | Decision | OverrideSpec | SilenceSpec
    result_type: Any  # what a step of the message loop answers
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
        raise DrillError(
            f"{path}: not valid {'TOML' if path.suffix == '.toml' else 'YAML'}: {' '.join(str(err).split())}"
        ) from err
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
    on_call: list[tuple[str, int, OverrideSpec | SilenceSpec]] = [
        *(("overrides", i, spec) for i, spec in enumerate(scenario.overrides)),
        *(("silences", i, spec) for i, spec in enumerate(scenario.silences)),
    ]
    for field, index, spec in on_call:
        try:
            spec.check(policy)
        except ValueError as err:
            raise DrillError(f"{path}: {field}[{index}].{err}") from err
        actions.append(Action(-1, spec.at, "on_call", field, spec, str, spec.label()))
    # On-call steps go before the scenario's own at the same minute: a window opened at 0 holds the alert at 0.
    actions.sort(key=lambda a: (a.at, a.workflow != "on_call"))
    return scenario, actions


def _action(index: int, step: StepSpec, policy: Policy, scenario_id: str) -> Action:
    if step.alert is not None:
        a = step.alert
        event = AlertEvent(
            source=a.source,
            dedup_key=scenario_id,
            fingerprint=a.fingerprint or a.title,
            status=a.status,
            title=a.title,
            description=a.description,
            severity=a.severity,
            service=a.service,
            labels=a.labels,
        )
        return Action(index, step.at, "alert", "alert", event, None, f"alert {a.status.value}: {a.title}")
    name, actor = step.do or "", step.as_ or ""
    where = f"steps[{index}]"
    if actor not in policy.people:
        raise ValueError(f"{where}.as: {actor!r} is not a person in the policy; known: {', '.join(policy.people)}")
    found = decision_model(name, about_a_message=step.message is not None)
    if found is None:
        raise ValueError(f"{where}.do: no step {name!r}; known: {', '.join(known_decisions())}")
    model, to_comms = found
    fields = dict(step.model_extra or {})
    unknown = sorted(set(fields) - set(model.model_fields))
    if unknown:
        allowed = sorted(set(model.model_fields) - {"actor", "message_id"})
        raise ValueError(f"{where}: {name} has no field {', '.join(unknown)}; it takes {', '.join(allowed) or 'none'}")
    if "message_id" in model.model_fields:
        if step.message is None:
            raise ValueError(
                f"{where}.message: {name} is a step on one message; name it, e.g. "
                "message: investigation/internal_stakeholders"
            )
        fields["message_id"] = step.message
    payload = model.model_validate({**fields, "actor": actor})
    details = " ".join(f"{k}={v}" for k, v in (step.model_extra or {}).items())
    label = " ".join(part for part in (actor, name, step.message or "", details) if part)
    if to_comms:
        return Action(index, step.at, "comms", name, payload, step_result_type(model), label)
    return Action(index, step.at, "incident", name, payload, str, label)


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
