"""Signing in through an identity provider (OpenID Connect): `incidentctl login` with the OAuth 2.0 Device
Authorization Grant (RFC 8628), and, for the HTTP service, whose an access token is (the provider's userinfo).

A person is the one of the policy whose `email` is the verified e-mail the provider gives (`email` claim, with
`email_verified` not false). The provider's token is the credential: the HTTP service asks the provider about it
at each request, so a token the provider revokes or lets expire stops working at once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx

from workflows.contracts.policy import Policy

DEVICE_CODE = "urn:ietf:params:oauth:grant-type:device_code"
SCOPE = "openid email profile"
TIMEOUT = 10.0


class OidcError(Exception):
    """The provider refused, or answered nothing usable; the message says which, never a token."""


async def metadata(http: httpx.AsyncClient, issuer: str) -> dict[str, Any]:
    """The provider's discovery document."""
    url = f"{issuer.rstrip('/')}/.well-known/openid-configuration"
    try:
        answer = await http.get(url)
        answer.raise_for_status()
        found: dict[str, Any] = answer.json()
    except (httpx.HTTPError, ValueError) as err:
        raise OidcError(f"the identity provider at {issuer} did not answer its discovery document ({err})") from err
    return found


async def device_login(issuer: str, client_id: str, show: Callable[[str], None]) -> str:
    """An access token for whoever completes the sign-in the provider asks of them; `show` tells them where."""
    async with httpx.AsyncClient(timeout=TIMEOUT) as http:
        found = await metadata(http, issuer)
        endpoint = found.get("device_authorization_endpoint")
        if not endpoint:
            raise OidcError(f"the identity provider at {issuer} offers no device sign-in (RFC 8628)")
        started = (await http.post(endpoint, data={"client_id": client_id, "scope": SCOPE})).json()
        if "device_code" not in started:
            raise OidcError(f"the identity provider refused the sign-in: {_why(started)}")
        where = started.get("verification_uri_complete") or started["verification_uri"]
        show(f"To sign in, open {where} and confirm the code {started['user_code']}")
        interval = float(started.get("interval", 5))
        deadline = time.monotonic() + float(started.get("expires_in", 600))
        while time.monotonic() < deadline:
            await asyncio.sleep(interval)
            polled = await http.post(
                found["token_endpoint"],
                data={"grant_type": DEVICE_CODE, "device_code": started["device_code"], "client_id": client_id},
            )
            answer = polled.json()
            if polled.status_code == 200 and "access_token" in answer:
                return str(answer["access_token"])
            if answer.get("error") == "slow_down":
                interval += 5
            elif answer.get("error") != "authorization_pending":
                raise OidcError(f"sign-in ended: {_why(answer)}")
        raise OidcError("sign-in ended: nobody confirmed the code in time")


async def person(issuer: str, access_token: str, policy: Policy) -> str:
    """The policy's person the provider says this token is; OidcError when it does not, or nobody matches."""
    async with httpx.AsyncClient(timeout=TIMEOUT) as http:
        found = await metadata(http, issuer)
        answer = await http.get(found["userinfo_endpoint"], headers={"Authorization": f"Bearer {access_token}"})
    if answer.status_code != 200:
        raise OidcError(f"the identity provider does not know this token (userinfo answered {answer.status_code})")
    claims = answer.json()
    email = str(claims.get("email", ""))
    if not email or claims.get("email_verified") is False:
        raise OidcError("the identity provider gives no verified e-mail for this sign-in")
    for key, known in policy.people.items():
        if known.email and known.email.lower() == email.lower():
            return key
    raise OidcError(f"{email} is no person's e-mail in the {policy.organisation} policy")


def _why(answer: dict[str, Any]) -> str:
    return str(answer.get("error_description") or answer.get("error") or answer)
