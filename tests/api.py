"""The HTTP service's decision API for tests that run incidentctl: served on a free port, with a personal token
for every person of the policy kept where incidentctl looks for credentials."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import uvicorn
from temporalio.client import Client

from policy_file import load_policy
from settings import Settings
from starter.http.app import create_app
from starter.tokens import TokenStore
from workflows.contracts.policy import Policy


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tokens_for_everyone(settings: Settings, policy: Policy, credentials: Path) -> dict[str, str]:
    """A token for each person, issued as an administrator would, and kept in a credentials file."""
    store = TokenStore(settings.tokens_path)
    tokens = {person: store.issue(person, timedelta(days=1), datetime.now(UTC))[1] for person in policy.people}
    credentials.write_text(json.dumps({"tokens": tokens}))
    return tokens


@asynccontextmanager
async def decision_api(
    client: Client, settings: Settings, policy: Policy | None = None
) -> AsyncIterator[dict[str, str]]:
    """The service, serving until the block ends; yields the environment incidentctl needs to reach it."""
    policy = policy or load_policy(settings.incident_policy)
    credentials = settings.tokens_path.with_name("credentials.json")
    tokens_for_everyone(settings, policy, credentials)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings, client=client, policy=policy), host="127.0.0.1", port=port, log_level="warning"
        )
    )
    serving = asyncio.create_task(server.serve())
    while not server.started:
        assert not serving.done(), "the HTTP service did not start"
        await asyncio.sleep(0.05)
    try:
        yield {
            "INCIDENT_API_URL": f"http://127.0.0.1:{port}",
            "INCIDENTCTL_CREDENTIALS": str(credentials),
            "TOKENS_PATH": str(settings.tokens_path),
        }
    finally:
        server.should_exit = True
        await serving
