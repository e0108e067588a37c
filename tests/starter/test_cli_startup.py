"""incidentctl starts quickly: `--help` loads no Temporal SDK, settings, workflow or activity code, and a
decision loads no workflow or activity code (slack_sdk, aiohttp and the workflows behind them cost a second).

Each run is a fresh interpreter, so what it imports is what a person waits for."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from settings import ROOT, Settings
from tests.api import decision_api

# Run incidentctl's main() with these arguments, then write the names of the modules it imported.
RUN = """
import json, sys
sys.argv = ["incidentctl", *json.loads(sys.argv[1])]
from starter.cli.main import main
try:
    main()
except SystemExit:
    pass
with open({out!r}, "w") as out:
    json.dump(sorted(sys.modules), out)
"""

NEVER_FOR_HELP = (
    "temporalio",
    "settings",
    "policy_file",
    "rich",
    "slack_sdk",
    "aiohttp",
    "activities",
    "workflows.incident.workflow",
    "workflows.comms.workflow",
    "prometheus_client",
)
NEVER_FOR_A_DECISION = (
    "slack_sdk",
    "aiohttp",
    "activities",
    "workflows.incident.workflow",
    "workflows.comms.workflow",
    "prometheus_client",
    "fastapi",
)


def imported(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> tuple[subprocess.CompletedProcess, list[str]]:
    listing = tmp_path / "modules.json"
    done = subprocess.run(
        [sys.executable, "-c", RUN.format(out=str(listing)), json.dumps(args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    return done, json.loads(listing.read_text())


def loaded(modules: list[str], prefixes: tuple[str, ...]) -> list[str]:
    return [m for m in modules if m in prefixes or m.startswith(tuple(f"{p}." for p in prefixes))]


def test_help_loads_no_sdk_settings_workflow_or_activity_code(tmp_path: Path) -> None:
    done, modules = imported(tmp_path, "--help")
    assert "Declare, list, show and decide on incidents" in done.stdout, done.stderr
    assert loaded(modules, NEVER_FOR_HELP) == []


@pytest.mark.parametrize(
    ("args", "stderr"),
    [
        (
            ("note", "INC-NOSUCH00", "checked the dashboards"),
            "incidentctl: no incident INC-NOSUCH00 (incidentctl list shows open ones)",
        ),
        (("list", "--json"), ""),
    ],
)
async def test_a_decision_or_a_list_loads_no_workflow_or_activity_code(
    tmp_path: Path, dev_env: WorkflowEnvironment, settings: Settings, args: tuple[str, ...], stderr: str
) -> None:
    async with decision_api(dev_env.client, settings) as api_env:
        env = {
            "PATH": "/usr/bin:/bin",
            "TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host,
            "TEMPORAL_CONFIG_FILE": "/dev/null",
            "INCIDENTCTL_USER": "bob",
            **api_env,
        }
        done, modules = await asyncio.to_thread(imported, tmp_path, *args, env=env)
    assert done.stderr.strip() == stderr
    assert "temporalio.client" in modules  # it did reach Temporal
    assert loaded(modules, NEVER_FOR_A_DECISION) == []
