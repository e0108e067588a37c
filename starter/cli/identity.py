"""incidentctl's credentials: `login` (keep your token here), `whoami`, and the administrator's `token issue |
list | revoke` (on the HTTP service's machine: they write its token file). `register(app)` adds them."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer

from starter.cli import common
from starter.cli.common import Json

token_app = typer.Typer(
    help="Personal tokens (administrators, on the HTTP service's machine).", no_args_is_help=True, rich_markup_mode=None
)


def register(app: typer.Typer) -> None:
    app.command("login")(login)
    app.command("whoami")(whoami)
    app.add_typer(token_app, name="token")


def login(
    token: Annotated[
        str | None,
        typer.Option("--token", help="a personal token (- reads it from stdin); unset: the identity provider"),
    ] = None,
) -> None:
    """Prove who you are once: with the identity provider (OIDC_ISSUER), or a personal token an administrator gave
    you. The service names the person, and incidentctl keeps the credential for them."""
    if token == "-":
        token = sys.stdin.readline().strip()
    if token is None:
        token = _signed_in()

    async def work() -> Any:
        return await common.call_api("whoami", token, get=True)

    person = str(common.run(work)["person"])
    common.store_credential(person, token)
    typer.echo(f"logged in as {person}")


def _signed_in() -> str:
    """The identity provider's access token, once the person has confirmed the code it shows them."""
    from client.decide import Refused
    from starter import oidc

    current = common.settings()
    if not current.oidc_issuer:
        common.fail("no identity provider is configured (OIDC_ISSUER): log in with --token TOKEN from an administrator")
    issuer = current.oidc_issuer

    async def work() -> str:
        try:
            return await oidc.device_login(issuer, current.oidc_client_id, lambda line: typer.echo(line))
        except oidc.OidcError as err:
            raise Refused(str(err)) from err

    return common.run(work)


def whoami() -> None:
    """Who the service says you are, with the credential incidentctl would use."""
    person = common.actor(None)

    async def work() -> Any:
        return await common.call_api("whoami", common.credential(person), get=True)

    typer.echo(str(common.run(work)["person"]))


@token_app.command("issue")
def issue(
    person: Annotated[str, typer.Argument(metavar="PERSON")],
    days: Annotated[int, typer.Option("--days", min=1, help="valid for this many days")] = 90,
    log_in: Annotated[bool, typer.Option("--login", help="also keep it here (a demo on one machine)")] = False,
) -> None:
    """Issue a personal token for a person of the policy; it is printed once and stored only as its hash."""
    from starter.tokens import TokenStore

    if person not in common.policy().people:
        common.fail(f"{person!r} is not a person in the policy; known: {', '.join(sorted(common.policy().people))}")
    record, token = TokenStore(common.settings().tokens_path).issue(person, timedelta(days=days), datetime.now(UTC))
    if log_in:
        common.store_credential(person, token)
        typer.echo(f"token {record.token_id} for {person}, valid {days} days; {person} is logged in here")
    else:
        typer.echo(token)


@token_app.command("list")
def token_list(as_json: Json = False) -> None:
    """Every token issued: whose, until when, revoked or not (never the token itself)."""
    from starter.tokens import TokenStore, token_summary

    rows = [token_summary(r) for r in TokenStore(common.settings().tokens_path).records()]
    common.print_rows(rows, ("token", "person", "expires", "state"), as_json=as_json, title="Tokens", empty="no tokens")


@token_app.command("revoke")
def revoke(token_id: Annotated[str, typer.Argument(metavar="TOKEN_ID", help="e.g. T3, from token list")]) -> None:
    """Revoke a token: the service refuses it from its next request on."""
    from starter.tokens import TokenStore

    try:
        record = TokenStore(common.settings().tokens_path).revoke(token_id, datetime.now(UTC))
    except KeyError as err:
        common.fail(str(err.args[0]))
    typer.echo(f"token {record.token_id} of {record.person} revoked")
