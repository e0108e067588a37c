"""incidentctl task: the recovery plan of an incident, each task ranked by the RTO of the systems it restores."""

from __future__ import annotations

from typing import Annotated

import typer

from starter.cli import common
from starter.cli.common import As, Id
from workflows.contracts.vocabulary import Severity
from workflows.incident.model import AssignTask, CompleteTask, EscalateTask, ReassignTask, ReprioritiseTask, UpdateTask
from workflows.recovery.model import TaskStatus

app = typer.Typer(
    help="The recovery plan (seed 003): add, assign, reprioritise, update, finish or escalate a task.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


Task = Annotated[str, typer.Argument(metavar="TASK", help="T1, T2, ... (incidentctl show lists them)")]
Systems = Annotated[
    str, typer.Option(help="services of the policy it restores, comma-separated: their RTO ranks the task")
]
Due = Annotated[int | None, typer.Option("--due", help="due in this many minutes (default: by its systems' RTO)")]


def _systems(systems: str) -> list[str]:
    return [name.strip() for name in systems.split(",") if name.strip()]


@app.command("add")
def task_add(
    incident: Id,
    title: Annotated[str, typer.Argument()],
    assignee: Annotated[str, typer.Option(help="person id")],
    systems: Systems = "",
    due: Due = None,
    impact: Annotated[Severity, typer.Option(case_sensitive=False, help="business impact")] = Severity.SEV3,
    as_: As = None,
) -> None:
    """Add a recovery task; the plan ranks it by the RTO of the systems it restores, then by impact."""
    decision = AssignTask(
        actor=common.actor(as_),
        title=title,
        assignee=assignee,
        systems=_systems(systems),
        due_minutes=due,
        business_impact=impact,
    )
    common.run_update(common.incident_id_of(incident), decision)


@app.command("assign")
def task_assign(
    incident: Id,
    task_id: Task,
    assignee: Annotated[str, typer.Argument(help="person id")],
    reason: Annotated[str, typer.Option(help="why")] = "",
    as_: As = None,
) -> None:
    """Give a task to someone else."""
    decision = ReassignTask(actor=common.actor(as_), task_id=task_id, assignee=assignee, reason=reason)
    common.run_update(common.incident_id_of(incident), decision)


@app.command("reprioritise")
def task_reprioritise(
    incident: Id,
    task_id: Task,
    reason: Annotated[str, typer.Option(help="why the priority changes")],
    systems: Annotated[str | None, typer.Option(help="the systems it restores now, comma-separated")] = None,
    due: Due = None,
    impact: Annotated[Severity | None, typer.Option(case_sensitive=False, help="business impact")] = None,
    as_: As = None,
) -> None:
    """Change what ranks a task (its systems, its impact) or when it is due."""
    decision = ReprioritiseTask(
        actor=common.actor(as_),
        task_id=task_id,
        systems=None if systems is None else _systems(systems),
        business_impact=impact,
        due_minutes=due,
        reason=reason,
    )
    common.run_update(common.incident_id_of(incident), decision)


@app.command("update")
def task_update(
    incident: Id,
    task_id: Task,
    note: Annotated[str, typer.Argument(help="how it stands")],
    status: Annotated[TaskStatus | None, typer.Option(case_sensitive=False, help="its status now")] = None,
    as_: As = None,
) -> None:
    """Progress on a task: a note, and perhaps its status."""
    decision = UpdateTask(actor=common.actor(as_), task_id=task_id, note=note, status=status)
    common.run_update(common.incident_id_of(incident), decision)


@app.command("done")
def task_done(
    incident: Id,
    task_id: Task,
    note: Annotated[str, typer.Option(help="what was done")] = "",
    as_: As = None,
) -> None:
    """Mark a recovery task done."""
    decision = CompleteTask(actor=common.actor(as_), task_id=task_id, note=note)
    common.run_update(common.incident_id_of(incident), decision)


@app.command("escalate")
def task_escalate(
    incident: Id,
    task_id: Task,
    recommendation: Annotated[str, typer.Option(help="the action you recommend to the decision-makers")],
    as_: As = None,
) -> None:
    """Take a task to the policy's decision-makers, with its context and your recommendation."""
    decision = EscalateTask(actor=common.actor(as_), task_id=task_id, recommendation=recommendation)
    common.run_update(common.incident_id_of(incident), decision)
