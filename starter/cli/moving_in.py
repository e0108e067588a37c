"""`incidentctl import ...`: another tool's API export as a policy fragment to append to the policy.

The fragment goes to stdout (`>> policy.toml`); what could not be carried over is listed at its top as
comments and on stderr, one line per item, and the overrides still to come as `incidentctl override add`
commands to run once the stack is up.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from starter.cli import common

if TYPE_CHECKING:
    from collections.abc import Callable

    from starter.importers.fragment import Fragment

import_app = typer.Typer(help="Bring configuration from other tools.", no_args_is_help=True, rich_markup_mode=None)

Export = Annotated[Path, typer.Argument(help="the directory the README's export commands wrote", metavar="DIR")]
EscalationName = Annotated[
    str | None, typer.Option("--escalation", help="the escalation to write (a policy has one ladder)")
]


def register(app: typer.Typer) -> None:
    app.add_typer(import_app, name="import")


@import_app.command("opsgenie")
def import_opsgenie(export: Export, escalation: EscalationName = None) -> None:
    """Print OpsGenie's users, contact methods, notification rules, schedules and an escalation as policy TOML."""
    from starter.importers.opsgenie import import_opsgenie as build

    _print(export, lambda: build(export, common.policy(), escalation, datetime.now(UTC)))


@import_app.command("pagerduty")
def import_pagerduty(export: Export, escalation: EscalationName = None) -> None:
    """Print PagerDuty's users, contact methods, notification rules, schedules and an escalation policy as TOML."""
    from starter.importers.pagerduty import import_pagerduty as build

    _print(export, lambda: build(export, common.policy(), escalation, datetime.now(UTC)))


@import_app.command("grafana-oncall")
def import_grafana_oncall(export: Export, escalation: EscalationName = None) -> None:
    """Print Grafana OnCall's users, notification policies, schedules and an escalation chain as policy TOML."""
    from starter.importers.grafana_oncall import import_grafana_oncall as build

    _print(export, lambda: build(export, common.policy(), escalation, datetime.now(UTC)))


def _print(export: Path, build: Callable[[], Fragment]) -> None:
    from starter.importers.fragment import ImportRefused

    if not export.is_dir():
        common.fail(f"{export} is not a directory; export into one first (README, 'Moving in')")
    try:
        fragment = build()
    except ImportRefused as err:
        common.fail(f"{export}: {err}")
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        common.fail(
            f"{export}: not what the API exports ({type(err).__name__}: {err}); export again as the README says"
        )
    typer.echo(fragment.toml(), nl=False)
    for line in fragment.dropped:
        typer.echo(f"not carried over: {line}", err=True)
    if fragment.commands:
        typer.echo(f"{len(fragment.commands)} override(s) to run once the stack is up: the '# run:' lines", err=True)


@import_app.command("opsgenie-schedule")
def import_opsgenie_schedule(
    file: Annotated[Path, typer.Argument(help="JSON of GET /v2/schedules/{id}", metavar="FILE")],
    rotations: Annotated[
        Path | None, typer.Option("--rotations", help="JSON of GET /v2/schedules/{id}/rotations")
    ] = None,
    name: Annotated[str | None, typer.Option("--name", help="the schedule's name in the policy")] = None,
) -> None:
    """Print one OpsGenie schedule as the policy's TOML; its users must be people of the policy."""
    from starter.importers.fragment import ImportRefused, schedule_toml
    from starter.importers.opsgenie import schedule_from_opsgenie

    policy = common.policy()
    try:
        text = file.read_text(encoding="utf-8")
        rotations_text = rotations.read_text(encoding="utf-8") if rotations else ""
    except OSError as err:
        common.fail(f"cannot read {err.filename}: {err.strerror}")
    try:
        found, schedule = schedule_from_opsgenie(text, policy, rotations_text)
    except ImportRefused as err:
        common.fail(f"{file}: {err}")
    if (name or found) in policy.schedules:
        common.fail(f"the policy already has a schedule {name or found!r}; choose another with --name")
    typer.echo("\n".join(schedule_toml(name or found, schedule)) + "\n", nl=False)
