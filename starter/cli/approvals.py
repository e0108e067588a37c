"""incidentctl's commands for seed 000's gates: statements to external parties and extra Slack channels.

`incidentctl statement ...`: words for billers, vendors, software providers and client contacts wait
for the Communications Lead, who approves them (in her own words if she edits them) or withholds them.
`incidentctl channel ...`: an extra Slack channel exists only once the Incident Commander or the
Communications Lead approved it. Each is a decision on the incident, judged by its rules.
"""

from __future__ import annotations

from typing import Annotated

import typer

from starter.cli import common
from starter.cli.common import As, Id, Json
from workflows.incident.model import (
    ApproveChannel,
    ApproveStatement,
    DeclineChannel,
    DraftStatement,
    RequestChannel,
    WithholdStatement,
)

Statement = Annotated[str, typer.Argument(help="statement id, e.g. S1", metavar="STATEMENT")]
Request = Annotated[str, typer.Argument(help="channel request id, e.g. C1", metavar="REQUEST")]

statement_app = typer.Typer(
    help="Words for external parties (seed 000): they leave once the Communications Lead approves them.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
channel_app = typer.Typer(
    help="Extra Slack channels (seed 000): made once the Incident Commander or Communications Lead approves.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


def register(app: typer.Typer) -> None:
    app.add_typer(statement_app, name="statement")
    app.add_typer(channel_app, name="channel")


@statement_app.command("list")
def statement_list(incident: Id, as_json: Json = False) -> None:
    """Every statement of the incident: to whom, its words, and who approved or withheld it."""
    s = common.read_state(common.incident_id_of(incident))
    rows = [
        {
            "statement": st.statement_id,
            "about": st.about,
            "to": ", ".join(st.parties),
            "state": st.fate,
            "by": st.decided_by,
            "words": st.text if st.approved is not False else f"{st.text} (withheld: {st.reason})",
        }
        for st in s.statements
    ]
    common.print_rows(
        rows,
        ("statement", "about", "to", "state", "by", "words"),
        as_json=as_json,
        empty=f"no statements on {s.incident_id}",
    )


@statement_app.command("draft")
def statement_draft(
    incident: Id,
    to: Annotated[list[str], typer.Option("--to", help="an external party of the policy (repeatable)")],
    subject: Annotated[str, typer.Option(help="the e-mail's subject")],
    text: Annotated[str, typer.Option(help="the words")],
    as_: As = None,
) -> None:
    """Write to external parties; the Communications Lead's own words leave at once, others wait for her."""
    decision = DraftStatement(actor=common.actor(as_), parties=to, subject=subject, text=text)
    common.run_update(common.incident_id_of(incident), decision)


@statement_app.command("approve")
def statement_approve(
    incident: Id,
    statement: Statement,
    text: Annotated[str, typer.Option(help="your own wording instead of the draft's")] = "",
    as_: As = None,
) -> None:
    """Communications Lead: release a held statement, as drafted or in your words."""
    common.run_update(
        common.incident_id_of(incident), ApproveStatement(actor=common.actor(as_), statement_id=statement, text=text)
    )


@statement_app.command("withhold")
def statement_withhold(
    incident: Id,
    statement: Statement,
    reason: Annotated[str, typer.Option(help="why it must not leave")],
    as_: As = None,
) -> None:
    """Communications Lead: a held statement never leaves."""
    common.run_update(
        common.incident_id_of(incident),
        WithholdStatement(actor=common.actor(as_), statement_id=statement, reason=reason),
    )


@channel_app.command("request")
def channel_request(
    incident: Id,
    name: Annotated[str, typer.Argument(help="lower-case letters, digits, - and _", metavar="NAME")],
    reason: Annotated[str, typer.Option(help="why the incident channel is not enough")],
    as_: As = None,
) -> None:
    """Ask for an extra Slack channel; the Incident Commander or the Communications Lead decides."""
    common.run_update(
        common.incident_id_of(incident), RequestChannel(actor=common.actor(as_), name=name, reason=reason)
    )


@channel_app.command("approve")
def channel_approve(incident: Id, request: Request, as_: As = None) -> None:
    """Incident Commander or Communications Lead: make the requested channel."""
    common.run_update(common.incident_id_of(incident), ApproveChannel(actor=common.actor(as_), request_id=request))


@channel_app.command("decline")
def channel_decline(
    incident: Id, request: Request, reason: Annotated[str, typer.Option(help="why not")], as_: As = None
) -> None:
    """Incident Commander or Communications Lead: no extra channel; the requester is told why."""
    common.run_update(
        common.incident_id_of(incident), DeclineChannel(actor=common.actor(as_), request_id=request, reason=reason)
    )
