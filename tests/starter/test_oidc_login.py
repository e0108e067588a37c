"""`incidentctl login` through an identity provider: OpenID Connect's device flow against a provider started here
(tests/oidc_provider.py), then decisions with the provider's token, whose person the HTTP service asks the
provider about."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from oidc_provider_mock import User
from temporalio.testing import WorkflowEnvironment
from typer.testing import CliRunner

from client.alerts import manual_alert, send_alert
from client.decide import query_state
from settings import Settings
from starter.cli.main import app
from tests.api import decision_api
from tests.oidc_provider import Provider, oidc_provider
from workflows.contracts.policy import Policy
from workflows.contracts.temporal.ids import incident_id_for
from workflows.contracts.vocabulary import Severity

BIN = Path(sys.executable).parent
CODE = re.compile(r"confirm the code (\S+)")


@pytest.fixture
def provider(example_policy: Policy) -> Iterator[Provider]:
    alice = User(sub="alice-at-idp", claims={"email": example_policy.people["alice"].email, "email_verified": True})
    stranger = User(sub="mallory", claims={"email": "mallory@elsewhere.example"})
    with oidc_provider([alice, stranger]) as started:
        yield started


@pytest.fixture
async def api(
    dev_env: WorkflowEnvironment, settings: Settings, provider: Provider, worker: None
) -> AsyncIterator[dict[str, str]]:
    with_provider = settings.model_copy(update={"oidc_issuer": provider.url})
    async with decision_api(dev_env.client, with_provider) as env:
        yield env | {
            "OIDC_ISSUER": provider.url,
            "INCIDENTCTL_CREDENTIALS": str(settings.tokens_path.with_name("signed-in.json")),
        }


async def login(env: dict[str, str], provider: Provider, sub: str, cwd: Path) -> tuple[int, str]:
    """`incidentctl login` as a person would run it; the person at the browser confirms the code it shows."""
    process = await asyncio.create_subprocess_exec(
        str(BIN / "incidentctl"),
        "login",
        env=os.environ | env | {"INCIDENTCTL_USER": "", "INCIDENTCTL_TOKEN": ""},
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert process.stdout is not None
    first = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
    code = CODE.search(first)
    assert code and f"open {provider.url}/device?user_code=" in first, first
    provider.approve(code.group(1), sub)
    rest, _ = await asyncio.wait_for(process.communicate(), 30)
    return await process.wait(), first + rest.decode()


async def test_login_through_the_identity_providers_device_flow_then_decide(
    api: dict[str, str],
    provider: Provider,
    dev_env: WorkflowEnvironment,
    settings: Settings,
    example_policy: Policy,
    tmp_path: Path,
) -> None:
    code, said = await login(api, provider, "alice-at-idp", tmp_path)
    assert code == 0 and said.splitlines()[-1] == "logged in as alice", said
    kept = json.loads(Path(api["INCIDENTCTL_CREDENTIALS"]).read_text())
    assert kept["default"] == "alice" and not kept["tokens"]["alice"].startswith("ioc_")  # the provider's token

    event = manual_alert("Checkout is failing", "bob", severity=Severity.SEV2, service="checkout")
    await send_alert(dev_env.client, settings, example_policy, event)
    incident_id = incident_id_for(event.source, event.dedup_key)
    env = api | {"TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host, "INCIDENTCTL_USER": None}
    acked = await asyncio.to_thread(CliRunner().invoke, app, ["ack", incident_id], env=env)
    assert acked.exit_code == 0, acked.output
    assert (await query_state(dev_env.client, incident_id)).acknowledged_by == "alice"


async def test_a_sign_in_that_is_no_person_of_the_policy_is_refused(
    api: dict[str, str], provider: Provider, tmp_path: Path
) -> None:
    code, said = await login(api, provider, "mallory", tmp_path)
    assert code == 1
    assert said.splitlines()[-1] == (
        "incidentctl: mallory@elsewhere.example is no person's e-mail in the Example Payments policy; "
        "sign in again (incidentctl login)"
    ), said
    assert not Path(api["INCIDENTCTL_CREDENTIALS"]).exists()
