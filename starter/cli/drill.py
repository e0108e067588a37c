"""incidentctl's `drill` and `policy check`: rehearse a policy, and find what it points at that is missing.

`register(app)` adds both to incidentctl. Neither needs a Temporal server: `policy check` reads the file,
`drill` runs the real workflows on an in-process time-skipping test server.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from starter.cli import common
from starter.cli.common import Json

if TYPE_CHECKING:
    from workflows.contracts.policy import Policy


policy_app = typer.Typer(
    help="Check a policy file before incidents depend on it.", no_args_is_help=True, rich_markup_mode=None
)


def register(app: typer.Typer) -> None:
    """Add `drill` and the `policy` sub-commands to the incidentctl app."""
    app.command("drill")(drill)
    app.add_typer(policy_app, name="policy")


def _load(path: Path) -> Policy:
    from policy_file import PolicyError, load_policy

    try:
        return load_policy(path)
    except PolicyError as err:
        common.fail(str(err))


@policy_app.command("check")
def check(
    file: Annotated[Path, typer.Argument(help="policy TOML file", metavar="FILE")], as_json: Json = False
) -> None:
    """Validate a policy and report dangling references, one line each naming the field; exit 1 if any."""
    from starter.cli.policy_check import check_policy

    problems = check_policy(_load(file))
    if as_json:
        common.print_json(
            {
                "file": str(file),
                "ok": not problems,
                "problems": [{"path": p.path, "message": p.message} for p in problems],
            }
        )
    elif problems:
        for problem in problems:
            typer.echo(f"{file}: {problem}")
        typer.echo(f"{file}: {len(problems)} problem(s)")
    else:
        typer.echo(f"{file}: ok")
    if problems:
        raise typer.Exit(1)


def drill(
    policy: Annotated[Path, typer.Option("--policy", help="policy TOML file", metavar="FILE")],
    scenario: Annotated[Path, typer.Option("--scenario", help="scenario YAML or TOML file", metavar="FILE")],
    as_json: Json = False,
) -> None:
    """Rehearse an incident: the real workflows, a scripted scenario, hours of incident in seconds.

    Prints who would have been paged and messaged when, every deadline that fired, every approval
    asked and given, every refused step, and what was still owed at the end. Nothing is sent.
    """
    # The wall time a person waits counts loading the workflows too, not only the run on the test server.
    began = time.perf_counter()
    # Imported here, not at the top: it loads the worker and every workflow and activity.
    from starter.drill.report import render_text
    from starter.drill.runner import run_drill
    from starter.drill.scenario import DrillError, load_scenario

    current = _load(policy)
    try:
        script, actions = load_scenario(scenario, current)
        report = asyncio.run(run_drill(current, script, actions, policy_file=str(policy), scenario_file=str(scenario)))
    except DrillError as err:
        common.fail(str(err))
    report = report.model_copy(update={"wall_seconds": round(time.perf_counter() - began, 3)})
    if as_json:
        common.print_json(report)
    else:
        typer.echo(render_text(report))
