"""incidentctl: declare, list, show and decide on incidents from a terminal.

Every decision goes to the HTTP service's API with the acting person's own credential (starter/cli/identity.py:
login, tokens); the service signs it and sends it as an Update on the incident's workflow under the registry's
name for it, judged by the same validators as Slack's buttons. A refusal prints one line and exits 1. A decision
carries one idempotency key, so however often it is sent it is applied once. --as (or INCIDENTCTL_USER) picks
whose credential acts.

Only typer and the models' enums (which the options name) load with the module; the Temporal SDK, the
workflow and activity code and Rich load when a command that needs them runs, so `--help` is quick.
"""

from __future__ import annotations

import gc
from datetime import datetime
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from starter.cli import approvals as cli_approvals
from starter.cli import common
from starter.cli import comms as cli_comms
from starter.cli import drill as cli_drill
from starter.cli import identity as cli_identity
from starter.cli import moving_in as cli_moving_in
from starter.cli import oncall as cli_oncall
from starter.cli import show as cli_show
from starter.cli import tasks as cli_tasks
from starter.cli.common import As, Id, Json
from workflows.contracts.vocabulary import (
    Audience,
    CriticalCriterion,
    IncidentKind,
    Phase,
    Role,
    Scope,
    Severity,
)
from workflows.incident.model import (
    Acknowledge,
    AddActionItem,
    AssignRole,
    Classify,
    CloseIncident,
    Estimate,
    EvaluateClients,
    PlanUpdated,
    ProgressNote,
    PublishPostmortem,
    Reopen,
    ReportDataLoss,
    Resolve,
    ReviewHeld,
    SendResolution,
    SetPhase,
    StatusUpdate,
    TriggerBusinessIncident,
)
from workflows.oncall.rotation import zone as tz

app = typer.Typer(
    help="Declare, list, show and decide on incidents. Log in first (incidentctl login); --as picks who acts.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    rich_markup_mode=None,
)
app.add_typer(cli_tasks.app, name="task")
action_app = typer.Typer(
    help="The postmortem's action items: follow-ups that become issues in Jira or Linear (policy follow_ups).",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(action_app, name="action")

Note = Annotated[str, typer.Option("--note", help="a line for the timeline")]

STATUSES = ("open", "resolved", "closed", "all")


# --- reads -------------------------------------------------------------------------------------


@app.command("list")
def list_incidents(
    status: Annotated[str, typer.Option(help="open, resolved, closed or all")] = "open",
    severity: Annotated[Severity | None, typer.Option(case_sensitive=False)] = None,
    phase: Annotated[Phase | None, typer.Option(case_sensitive=False)] = None,
    as_json: Json = False,
) -> None:
    """Incidents from Temporal's visibility store, newest first."""
    from temporalio.service import RPCError, RPCStatusCode

    from client.decide import Refused
    from starter.http.metrics import incidents_query
    from workflows.contracts.temporal import search_attributes as sa

    if status not in STATUSES:
        common.fail(f"--status must be one of {', '.join(STATUSES)}, not {status!r}")
    clauses = []
    if status != "all":
        clauses.append(f'{sa.STATUS.name}="{status}"')
    if severity:
        clauses.append(f'{sa.SEVERITY.name}="{severity.value}"')
    if phase:
        clauses.append(f'{sa.PHASE.name}="{phase.value}"')

    zone = tz(common.policy().business_hours.timezone)  # the team's clock, as every other time it reads

    async def rows() -> list[dict[str, Any]]:
        client = await common.connect()
        found = []
        try:
            async for run in client.list_workflows(incidents_query(*clauses)):
                attrs = run.typed_search_attributes
                memo = await run.memo()
                found.append(
                    {
                        "id": run.id,
                        "severity": attrs.get(sa.SEVERITY),
                        "phase": attrs.get(sa.PHASE),
                        "status": attrs.get(sa.STATUS),
                        "service": attrs.get(sa.SERVICE),
                        "acknowledged": attrs.get(sa.ACKNOWLEDGED),
                        "opened": run.start_time.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z"),
                        "title": memo.get("title", ""),
                    }
                )
        except RPCError as err:
            # A Temporal that `make run` did not start (or a new namespace) lacks the incident attributes.
            if err.status != RPCStatusCode.INVALID_ARGUMENT or "search attribute" not in err.message:
                raise
            raise Refused(
                f"Temporal at {client.service_client.config.target_host} ({client.namespace}) cannot "
                f"list incidents: {err.message}; use the server `make run` starts, which registers "
                "the incident search attributes"
            ) from err
        return found

    common.print_rows(
        common.run(rows),
        ["id", "severity", "phase", "status", "service", "acknowledged", "opened", "title"],
        as_json=as_json,
        title=f"Incidents ({status})",
        empty="no incidents" if status == "all" else f"no {status} incidents",
    )


@app.command()
def show(incident: Id, as_json: Json = False) -> None:
    """One incident: its facts, roles, alerts, tasks, who owes what, and its timeline."""
    current = common.read_state(common.incident_id_of(incident))
    if as_json:
        common.print_json(current)
    else:
        cli_show.print_state(current, common.policy())


# --- opening an incident -----------------------------------------------------------------------


@app.command()
def declare(
    title: Annotated[str, typer.Argument(help="what is wrong, in one line")],
    severity: Annotated[Severity | None, typer.Option(case_sensitive=False)] = None,
    service: Annotated[str, typer.Option(help="the affected service, as the policy names it")] = "",
    description: Annotated[str, typer.Option(help="more detail")] = "",
    as_: As = None,
) -> None:
    """Open an incident by hand, with you as its reporter (your credential says who you are)."""
    from client.alerts import incident_url

    person = common.actor(as_)
    body = {"title": title, "severity": severity, "service": service, "description": description}

    async def send() -> Any:
        return await common.call_api("incidents", common.credential(person), body, update_id=common.new_update_id())

    declared = common.run(send)
    incident_id = declared["incident_id"]
    typer.echo(f"{incident_id}: declared by {declared['reporter']} ({incident_url(common.settings(), incident_id)})")


# --- decisions -----------------------------------------------------------------------------------


@app.command()
def ack(incident: Id, note: Note = "", as_: As = None) -> None:
    """Acknowledge the incident: you are on it, escalation stops."""
    common.run_update(common.incident_id_of(incident), Acknowledge(actor=common.actor(as_), note=note))


@app.command("assign-role")
def assign_role(
    incident: Id,
    role: Annotated[Role, typer.Argument(case_sensitive=False)],
    person: Annotated[str, typer.Argument(help="person id from the policy")],
    as_: As = None,
) -> None:
    """Give a role on this incident to a person (e.g. incident_commander bob)."""
    common.run_update(common.incident_id_of(incident), AssignRole(actor=common.actor(as_), role=role, person=person))


@app.command()
def classify(
    incident: Id,
    kind: Annotated[IncidentKind | None, typer.Option(case_sensitive=False)] = None,
    severity: Annotated[Severity | None, typer.Option(case_sensitive=False)] = None,
    scope: Annotated[Scope | None, typer.Option(case_sensitive=False)] = None,
    criterion: Annotated[
        list[CriticalCriterion] | None, typer.Option(case_sensitive=False, help="a critical criterion; repeatable")
    ] = None,
    note: Note = "",
    as_: As = None,
) -> None:
    """The initial assessment: incident or disturbance, severity, scope, critical criteria."""
    decision = Classify(
        actor=common.actor(as_), kind=kind, severity=severity, scope=scope, criteria=criterion or [], note=note
    )
    common.run_update(common.incident_id_of(incident), decision)


@app.command()
def phase(
    incident: Id,
    to: Annotated[Phase, typer.Argument(case_sensitive=False, metavar="PHASE")],
    note: Note = "",
    as_: As = None,
) -> None:
    """Move the incident to a phase (investigation, identification, monitoring)."""
    common.run_update(common.incident_id_of(incident), SetPhase(actor=common.actor(as_), phase=to, note=note))


@app.command()
def estimate(
    incident: Id,
    minutes: Annotated[int, typer.Argument(help="minutes until the fix, by your estimate")],
    note: Note = "",
    as_: As = None,
) -> None:
    """The responsible developer's estimate (seed 002)."""
    common.run_update(common.incident_id_of(incident), Estimate(actor=common.actor(as_), minutes=minutes, note=note))


@app.command()
def note(incident: Id, text: Annotated[str, typer.Argument()], as_: As = None) -> None:
    """A progress note on the timeline (it also counts as progress)."""
    common.run_update(common.incident_id_of(incident), ProgressNote(actor=common.actor(as_), text=text))


@app.command()
def update(incident: Id, text: Annotated[str, typer.Argument()], as_: As = None) -> None:
    """A status update for the client and leads (the regular cadence of seed 002)."""
    common.run_update(common.incident_id_of(incident), StatusUpdate(actor=common.actor(as_), text=text))


@action_app.command("add")
def action_add(
    incident: Id,
    title: Annotated[str, typer.Argument()],
    owner: Annotated[str, typer.Option(help="person id")],
    due: Annotated[datetime | None, typer.Option(formats=["%Y-%m-%d"], help="YYYY-MM-DD")] = None,
    as_: As = None,
) -> None:
    """Add an action item to the postmortem; it becomes an issue where the policy says."""
    decision = AddActionItem(actor=common.actor(as_), title=title, owner=owner, due=due.date() if due else None)
    common.run_update(common.incident_id_of(incident), decision)


@app.command("data-loss")
def data_loss(
    incident: Id,
    minutes: Annotated[int, typer.Argument(help="minutes of data the recovery point loses")],
    as_: As = None,
) -> None:
    """Report data loss against the service's RPO (seed 003)."""
    common.run_update(common.incident_id_of(incident), ReportDataLoss(actor=common.actor(as_), minutes=minutes))


@app.command("business-incident")
def business_incident(
    incident: Id,
    reason: Annotated[str, typer.Option(help="why customers must hear about it")] = "",
    as_: As = None,
) -> None:
    """Declare a business incident: start the stakeholder message loop (seed 004)."""
    decision = TriggerBusinessIncident(actor=common.actor(as_), reason=reason)
    common.run_update(common.incident_id_of(incident), decision)


@app.command()
def clients(
    incident: Id,
    now: Annotated[bool, typer.Option("--now/--not-now", help="tell clients now, or not now")],
    reason: Annotated[str, typer.Option(help="why; on the timeline with the answer")],
    audience: Annotated[
        list[Audience] | None, typer.Option(help="how: a client audience to tell (repeatable); default: every one")
    ] = None,
    as_: As = None,
) -> None:
    """Answer an evaluation point (seed 001): tell clients now, and how, or not now; either with a reason."""
    decision = EvaluateClients(actor=common.actor(as_), tell=now, reason=reason, audiences=audience or [])
    common.run_update(common.incident_id_of(incident), decision)


@app.command()
def resolve(
    incident: Id,
    overview: Annotated[str, typer.Option(help="what happened")],
    how: Annotated[str, typer.Option(help="how it was resolved")],
    prevention: Annotated[str, typer.Option(help="what prevents a repeat")],
    root_cause: Annotated[str, typer.Option(help="the root cause, if known yet")] = "",
    as_: As = None,
) -> None:
    """Resolve the incident with seed 000's resolution message."""
    decision = Resolve(
        actor=common.actor(as_), overview=overview, how_resolved=how, prevention=prevention, root_cause=root_cause
    )
    common.run_update(common.incident_id_of(incident), decision)


@app.command()
def reopen(incident: Id, reason: Annotated[str, typer.Option(help="why it is not over")], as_: As = None) -> None:
    """Reopen a resolved incident."""
    common.run_update(common.incident_id_of(incident), Reopen(actor=common.actor(as_), reason=reason))


@app.command("review-held")
def review_held(
    incident: Id,
    notes: Annotated[str, typer.Option(help="what the review concluded")] = "",
    root_cause: Annotated[str, typer.Option(help="the root cause the review found")] = "",
    as_: As = None,
) -> None:
    """Record that the post-incident review took place; the postmortem draft is redone with its findings."""
    common.run_update(
        common.incident_id_of(incident), ReviewHeld(actor=common.actor(as_), notes=notes, root_cause=root_cause)
    )


@app.command("plan-updated")
def plan_updated(
    incident: Id,
    changes: Annotated[
        str, typer.Option(help="what the review changed in the response, communication or recovery plan")
    ],
    url: Annotated[str, typer.Option(help="where the updated plan lives")] = "",
    as_: As = None,
) -> None:
    """Record the review's changes to the plans (seeds 000, 003); the close waits for it where the policy asks."""
    decision = PlanUpdated(actor=common.actor(as_), changes=changes, url=url)
    common.run_update(common.incident_id_of(incident), decision)


@app.command("send-resolution")
def send_resolution(
    incident: Id,
    text: Annotated[str, typer.Option(help="your wording (default: the resolution as drafted)")] = "",
    as_: As = None,
) -> None:
    """The Communications Lead sends the resolution message to all relevant parties (seed 000)."""
    common.run_update(common.incident_id_of(incident), SendResolution(actor=common.actor(as_), text=text))


@app.command()
def publish(
    incident: Id, url: Annotated[str, typer.Option(help="where the postmortem lives")] = "", as_: As = None
) -> None:
    """Record that the postmortem is published."""
    common.run_update(common.incident_id_of(incident), PublishPostmortem(actor=common.actor(as_), url=url))


@app.command()
def close(
    incident: Id,
    stakeholders_satisfied: Annotated[
        bool, typer.Option("--stakeholders-satisfied", help="the stakeholders are satisfied (seed 001)")
    ] = False,
    measures: Annotated[str, typer.Option("--measures", help="the preventive measures in place (seed 001)")] = "",
    as_: As = None,
) -> None:
    """Close the incident once its documentation is complete, or complete a followed-up disturbance."""
    decision = CloseIncident(
        actor=common.actor(as_), stakeholders_satisfied=stakeholders_satisfied, preventive_measures=measures
    )
    common.run_update(common.incident_id_of(incident), decision)


cli_comms.register(app)
cli_approvals.register(app)
cli_drill.register(app)
cli_oncall.register(app)
cli_moving_in.register(app)
cli_identity.register(app)


def main() -> None:
    try:
        app(prog_name="incidentctl")
    except ValidationError as err:  # a value the decision cannot take, e.g. an estimate of 0 minutes
        from settings import describe_validation_error

        common.say_refusal(f"invalid value: {describe_validation_error(err)}")
        raise SystemExit(1) from None
    finally:
        gc.collect()  # settings.free_temporal, without importing the SDK here: `--help` loads none of it


if __name__ == "__main__":
    main()
