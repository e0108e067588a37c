"""incidentctl's commands for seed 004's Message Creation Loop, on the incident's CommsWorkflow.

Each step is an Update, under its name in the registry, on the message loop the incident's state names;
it is judged by the loop's validators (role, message state). A refusal prints one line and exits 1.
`register(app)` adds the commands to incidentctl. The loop's models, the registry and the Temporal SDK load
when a command runs, not with incidentctl.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer
from pydantic import ValidationError

from starter.cli import common
from starter.cli.common import As, Id, Json
from workflows.contracts.vocabulary import Audience
from workflows.incident.model import Decision

if TYPE_CHECKING:
    from workflows.comms.model import CommsMessage, CommsState
    from workflows.contracts.policy import Policy

Message = Annotated[str, typer.Argument(help="message id, e.g. investigation/internal_stakeholders", metavar="MESSAGE")]
Note = Annotated[str, typer.Option("--note", help="a line for the message's log")]

COLUMNS = ("message", "step", "version", "waiting on", "until", "notes")


def register(app: typer.Typer) -> None:
    """Add the message loop's commands to the incidentctl app, each named after its function
    (resolve_objection: `incidentctl resolve-objection`)."""
    for command in (
        messages,
        draft,
        edit,
        accept_edit,
        decline_edit,
        review,
        resolve_objection,
        authorize,
        approve_external,
        approve_send,
        confirm_sent,
        skip,
        message_estimate,
        audience_order,
    ):
        app.command()(command)


# --- reads -------------------------------------------------------------------------------------


def messages(incident: Id, as_json: Json = False) -> None:
    """The business incident's messages: where each is in the loop and who owes what by when."""
    from client.decide import loop_state

    incident_id = common.incident_id_of(incident)

    async def work() -> CommsState:
        return await loop_state(await common.connect(), incident_id)

    state = common.run(work)
    if as_json:
        common.print_json(state.messages)
        return
    policy = common.policy()
    common.print_rows(
        [_row(policy, m) for m in state.messages],
        COLUMNS,
        as_json=False,
        title=f"{incident_id} messages: {state.status}",
        empty=f"no messages on {incident_id} yet",
    )


def _row(policy: Policy, m: CommsMessage) -> dict[str, Any]:
    notes = [f"objection {o.number} ({o.by}): {o.reason}" for o in m.open_objections()]
    notes += [f"draft refused: {m.draft_error}"] if m.draft_error else []
    notes += [m.ended_reason] if m.ended_reason else []
    notes += [f"{d.channel} {d.target} failed: {d.error}" for d in m.deliveries if d.error]
    return {
        "message": m.message_id,
        "step": m.step.value,
        "version": f"v{m.current.number} by {m.current.author}" if m.current else "",
        "waiting on": "; ".join(f"{o.what}: {', '.join(o.people) or o.role.value}" for o in m.waiting_on),
        "until": _hhmm(policy, m.due),
        "notes": "; ".join(notes),
    }


# --- the steps ---------------------------------------------------------------------------------


def draft(
    incident: Id,
    message: Message,
    values: Annotated[
        list[str] | None,
        typer.Option("--set", help="a placeholder's value, NAME=TEXT (repeat), e.g. --set impact='payments fail'"),
    ] = None,
    subject: Annotated[str, typer.Option(help="a subject instead of the template's")] = "",
    text: Annotated[str, typer.Option(help="your own text instead of the template")] = "",
    as_: As = None,
) -> None:
    """Technical SLT: draft the message from its statement template (placeholders from --set)."""
    from workflows.comms.model import Draft

    m = _step(
        incident,
        lambda who: Draft(actor=who, message_id=message, values=_pairs(values or []), subject=subject, text=text),
        as_,
    )
    version = m.current
    if version is not None:
        typer.echo(f"Subject: {version.subject}\n\n{version.text}\n")


def edit(
    incident: Id,
    message: Message,
    text: Annotated[str, typer.Option(help="the new text of the message")],
    subject: Annotated[str, typer.Option(help="a new subject")] = "",
    note: Note = "",
    as_: As = None,
) -> None:
    """The Technical SLT: a new version (the reviews start over on it). Reviewers, Customer Liaison: a suggestion,
    which becomes the text only if the Technical SLT accepts it."""
    from workflows.comms.model import Edit

    _step(incident, lambda who: Edit(actor=who, message_id=message, text=text, subject=subject, note=note), as_)


Suggestion = Annotated[
    int, typer.Argument(help="its number (incidentctl messages --json lists them)", metavar="SUGGESTION")
]


def accept_edit(incident: Id, message: Message, suggestion: Suggestion, as_: As = None) -> None:
    """Technical SLT: take a reviewer's suggested wording as the new version."""
    _decide_edit(accept_edit, incident, message, suggestion, "", as_)


def decline_edit(
    incident: Id,
    message: Message,
    suggestion: Suggestion,
    reason: Annotated[str, typer.Option(help="why the wording stays")] = "",
    as_: As = None,
) -> None:
    """Technical SLT: keep your wording; the suggestion is recorded as declined."""
    _decide_edit(decline_edit, incident, message, suggestion, reason, as_)


def _decide_edit(
    command: Callable[..., None], incident: str, message: str, suggestion: int, reason: str, as_: str | None
) -> None:
    from workflows.comms.model import DecideEdit

    _step(
        incident,
        lambda who: DecideEdit(actor=who, message_id=message, suggestion=suggestion, reason=reason),
        as_,
        name=command.__name__,
    )


def review(
    incident: Id,
    message: Message,
    approve: Annotated[bool, typer.Option("--approve", help="approve the current version")] = False,
    objection: Annotated[
        str, typer.Option("--object", metavar="REASON", help="raise a strong objection: it blocks until resolved")
    ] = "",
    as_: As = None,
) -> None:
    """Messaging / Legal Officer: approve the draft or raise a strong objection."""
    from workflows.comms.model import Review, Verdict

    if approve == bool(objection):
        common.fail("review needs exactly one of --approve or --object REASON")
    verdict = Verdict.APPROVE if approve else Verdict.OBJECT
    _step(incident, lambda who: Review(actor=who, message_id=message, verdict=verdict, reason=objection), as_)


def resolve_objection(
    incident: Id,
    message: Message,
    objection: Annotated[int, typer.Argument(help="the objection's number (incidentctl messages)")],
    resolution: Annotated[str, typer.Option(help="how it was resolved")],
    text: Annotated[str, typer.Option(help="the revised text, when the resolution changes it")] = "",
    as_: As = None,
) -> None:
    """Technical SLT: resolve a strong objection (the objector then reviews again)."""
    from workflows.comms.model import ResolveObjection

    _step(
        incident,
        lambda who: ResolveObjection(
            actor=who, message_id=message, objection=objection, resolution=resolution, text=text
        ),
        as_,
    )


# The three approvals share one model; each command is named after its decision in the registry.


def authorize(incident: Id, message: Message, note: Note = "", as_: As = None) -> None:
    """ELT Approver: authorise the reviewed message for release."""
    _approve(authorize, incident, message, note, as_)


def approve_external(incident: Id, message: Message, note: Note = "", as_: As = None) -> None:
    """Communications Lead: approve a message to customers (seed 000: every external message)."""
    _approve(approve_external, incident, message, note, as_)


def approve_send(incident: Id, message: Message, note: Note = "", as_: As = None) -> None:
    """Incident Commander: approve sending (after the reviews and the approvals); distribution starts."""
    _approve(approve_send, incident, message, note, as_)


def _approve(command: Callable[..., None], incident: str, message: str, note: str, as_: str | None) -> None:
    from workflows.contracts.decisions import COMMS_DECISIONS

    model = COMMS_DECISIONS[command.__name__]
    _step(
        incident,
        lambda who: model.model_validate({"actor": who, "message_id": message, "note": note}),
        as_,
        name=command.__name__,
    )


def confirm_sent(incident: Id, message: Message, note: Note = "", as_: As = None) -> None:
    """Distributor: confirm the message reached its audience."""
    from workflows.comms.model import ConfirmSent

    _step(incident, lambda who: ConfirmSent(actor=who, message_id=message, note=note), as_)


def skip(
    incident: Id,
    message: Message,
    reason: Annotated[str, typer.Option(help="why this audience gets no message in this phase")],
    as_: As = None,
) -> None:
    """Business Lead: send this audience nothing in this phase."""
    from workflows.comms.model import Skip

    _step(incident, lambda who: Skip(actor=who, message_id=message, reason=reason), as_)


def message_estimate(
    incident: Id,
    message: Message,
    minutes: Annotated[int, typer.Argument(help="minutes until your step on the message is done")],
    note: Note = "",
    as_: As = None,
) -> None:
    """Whoever owes a step on a message: when it will be done (the Business Lead checks back then)."""
    from workflows.comms.model import GiveEstimate

    _step(incident, lambda who: GiveEstimate(actor=who, message_id=message, minutes=minutes, note=note), as_)


def audience_order(
    incident: Id,
    order: Annotated[list[Audience], typer.Argument(help="every audience, first one first")],
    as_: As = None,
) -> None:
    """Business Lead: the order in which the phase's audiences are addressed."""
    from workflows.comms.model import SetAudienceOrder

    step = _decision(lambda who: SetAudienceOrder(actor=who, order=order), as_)
    result = common.run_step(common.incident_id_of(incident), step_name(step), step, list[Audience])
    typer.echo(f"{common.incident_id_of(incident)}: audiences in order: {', '.join(a.value for a in result)}")


# --- helpers -----------------------------------------------------------------------------------


def step_name(step: Decision) -> str:
    """The registry's name for a step whose model serves only one (every step but the approvals)."""
    from workflows.contracts.decisions import COMMS_DECISIONS

    names = [name for name, model in COMMS_DECISIONS.items() if type(step) is model]
    if len(names) != 1:
        raise KeyError(f"{type(step).__name__} names {len(names)} steps of the message loop: {names}")
    return names[0]


def _step(incident: str, build: Callable[[str], Decision], as_: str | None, *, name: str = "") -> CommsMessage:
    """Run one step of the loop as an Update and print where the message is once the step took effect (the
    loop's state read after it, not the Update's answer: that is made before the loop moves the message on).
    When the message owes nothing now, the message the loop works on next follows, with what it waits for."""
    incident_id = common.incident_id_of(incident)
    step = _decision(build, as_)
    moved, after = common.run_step_then_read(incident_id, name or step_name(step), step)
    policy = common.policy()
    if isinstance(after, str):
        typer.echo(_now(policy, incident_id, moved))
        common.say_refusal(f"{incident_id}: the step took effect, but the message loop could not be read: {after}")
        return moved
    m = next((found for found in after.messages if found.message_id == moved.message_id), moved)
    typer.echo(_now(policy, incident_id, m))
    if not m.waiting_on:
        for waiting in (other for other in after.messages if other.waiting_on and other is not m):
            typer.echo(f"next: {_now(policy, incident_id, waiting)}")
    return m


def _now(policy: Policy, incident_id: str, m: CommsMessage) -> str:
    waiting = "; ".join(
        f"{o.what}: {', '.join(o.people) or o.role.value} until {_hhmm(policy, o.due)}" for o in m.waiting_on
    )
    return f"{incident_id} {m.message_id}: {m.step.value}{f', waiting on {waiting}' if waiting else ''}"


def _decision(build: Callable[[str], Decision], as_: str | None) -> Decision:
    try:
        decision = build(common.actor(as_))
    except ValidationError as err:
        from settings import describe_validation_error

        common.fail(describe_validation_error(err))
    return decision


def _pairs(values: list[str]) -> dict[str, str]:
    pairs = {}
    for value in values:
        name, sep, text = value.partition("=")
        if not sep or not name.strip():
            common.fail(f"--set wants NAME=TEXT, e.g. --set impact='payments fail'; got {value!r}")
        pairs[name.strip()] = text
    return pairs


def _hhmm(policy: Policy, moment: datetime | None) -> str:
    """A moment as the team reads it: in the policy's time zone, UTC alongside (workflows/contracts/clock.py)."""
    if moment is None:
        return ""
    from workflows.contracts.clock import local

    return local(policy, moment)
