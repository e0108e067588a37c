"""Helpers for drill tests: run a seed's policy through its scenario, and read the report's timeline."""

from __future__ import annotations

from pathlib import Path

from policy_file import load_policy
from settings import ROOT
from starter.drill.report import DrillEvent, DrillReport
from starter.drill.runner import run_drill
from starter.drill.scenario import load_scenario

POLICIES = ROOT / "examples" / "policies"
SCENARIOS = ROOT / "examples" / "scenarios"
SEEDS = ("000-payments", "001-process-flow", "002-agency", "003-disaster-recovery", "004-pagerduty-business")


async def drill(policy_file: Path, scenario_file: Path) -> DrillReport:
    policy = load_policy(policy_file)
    scenario, actions = load_scenario(scenario_file, policy)
    return await run_drill(policy, scenario, actions, policy_file=str(policy_file), scenario_file=str(scenario_file))


async def drill_seed(seed: str) -> DrillReport:
    return await drill(POLICIES / f"{seed}.toml", SCENARIOS / f"{seed}.yaml")


def events(report: DrillReport, source: str | None = None, kind: str | None = None, text: str = "") -> list[DrillEvent]:
    """The timeline's events of one source and kind whose text contains `text`, in time order."""
    return [e for e in report.events if source in (None, e.source) and kind in (None, e.kind) and text in e.text]


def minutes(found: list[DrillEvent]) -> list[float]:
    return [e.minute for e in found]


def step_minute(report: DrillReport, step: str) -> float:
    """When the scenario step starting with `step` (e.g. "paula resolve") was sent."""
    return next(s.minute for s in report.steps if s.step.startswith(step))
