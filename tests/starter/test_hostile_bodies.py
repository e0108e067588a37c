"""Property: whatever arrives (malformed, hostile, almost-valid), every endpoint answers 2xx or 4xx while
Temporal is up, and only an accepted alert starts an incident."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from pydantic import SecretStr
from temporalio.testing import WorkflowEnvironment

from settings import ROOT, Settings
from starter.http.app import create_app
from starter.http.slack import sign
from tests.starter.conftest import workflows_on
from workflows.contracts.policy import Policy

SOURCES = ("alertmanager", "grafana", "datadog", "generic")
SECRET = "hostile-test-secret"

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=15,
)


def example(source: str) -> dict[str, Any]:
    if source == "datadog":
        return {"alert_id": "1", "transition": "Triggered", "aggregation_key": "k", "title": "t", "priority": "P2"}
    body: dict[str, Any] = json.loads((ROOT / "examples" / f"{source}.json").read_text())
    return body


@st.composite
def almost_valid(draw: st.DrawFn, source: str) -> dict[str, Any]:
    """A real example with one field (at the top, or in its first alert) replaced by anything."""
    body = example(source)
    target = body
    if "alerts" in body and draw(st.booleans()):
        target = body["alerts"][0]
    key = draw(st.sampled_from(sorted(target)))
    target[key] = draw(json_values)
    return body


def bodies(source: str) -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.binary(max_size=200),
        json_values.map(lambda v: json.dumps(v).encode()),
        almost_valid(source).map(lambda v: json.dumps(v).encode()),
    )


PROPERTY = hypothesis_settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture
async def service(
    dev_env: WorkflowEnvironment, settings: Settings, example_policy: Policy, worker: None
) -> AsyncIterator[httpx.AsyncClient]:
    signed = settings.model_copy(update={"slack_signing_secret": SecretStr(SECRET)})
    app = create_app(signed, client=dev_env.client, policy=example_policy)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://webhook") as client:
        yield client


def on_loop(check: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Hypothesis drives sync functions: run it in a thread and send each example to the test's loop."""
    loop = asyncio.get_running_loop()

    def blocking(**example: Any) -> None:
        asyncio.run_coroutine_threadsafe(check(**example), loop).result()

    return blocking


async def settled_count(env: WorkflowEnvironment, settings: Settings) -> int:
    """The visibility count once it stops moving (it trails the workflows by a moment)."""
    previous = -1
    for _ in range(20):
        current = await workflows_on(env, settings)
        if current == previous:
            return current
        previous = current
        await asyncio.sleep(0.1)
    return previous


@pytest.mark.parametrize("source", SOURCES)
async def test_hostile_alert_bodies_get_4xx_and_start_nothing(
    service: httpx.AsyncClient, dev_env: WorkflowEnvironment, settings: Settings, source: str
) -> None:
    accepted: set[str] = set()

    @on_loop
    async def check(body: bytes) -> None:
        answer = await service.post(f"/alerts/{source}", content=body)
        assert answer.status_code in (202, 400, 413, 422), (answer.status_code, answer.text, body[:200])
        if answer.status_code == 202:
            accepted.update(answer.json()["incidents"])

    await asyncio.to_thread(PROPERTY(given(body=bodies(source))(check)))
    assert await settled_count(dev_env, settings) == len(accepted)


async def test_unsigned_slack_requests_are_401(service: httpx.AsyncClient) -> None:
    @on_loop
    async def check(body: bytes, path: str) -> None:
        answer = await service.post(
            path,
            content=body,
            headers={"X-Slack-Signature": "v0=00", "X-Slack-Request-Timestamp": str(int(time.time()))},
        )
        assert answer.status_code == 401

    paths = st.sampled_from(["/slack/commands", "/slack/interactions"])
    await asyncio.to_thread(PROPERTY(given(body=st.binary(max_size=300), path=paths)(check)))


async def test_signed_nonsense_for_slack_gets_2xx_or_4xx_and_starts_nothing(
    service: httpx.AsyncClient, dev_env: WorkflowEnvironment, settings: Settings
) -> None:
    @on_loop
    async def check(text: str, user: str, payload: str) -> None:
        for path, form in (
            ("/slack/commands", {"text": text, "user_id": user}),
            ("/slack/interactions", {"payload": payload}),
        ):
            body = urlencode(form).encode()
            stamp = str(int(time.time()))
            answer = await service.post(
                path,
                content=body,
                headers={
                    "X-Slack-Request-Timestamp": stamp,
                    "X-Slack-Signature": sign(SECRET, stamp, body),
                    "Content-Type": "application/x-www-form-urlencoded",
                },
            )
            assert 200 <= answer.status_code < 500, (path, form, answer.text)

    examples = given(
        text=st.text(max_size=60).filter(lambda t: not t.strip().lower().startswith("declare")),
        user=st.sampled_from(["U0BOB", "U0NOBODY", ""]),
        payload=json_values.map(json.dumps) | st.text(max_size=40),
    )
    await asyncio.to_thread(PROPERTY(examples(check)))
    assert await settled_count(dev_env, settings) == 0
