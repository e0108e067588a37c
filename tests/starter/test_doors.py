"""Closed by default: a token per alert source and per heartbeat, a read-only one for calendar feeds, /metrics
behind its own token or this machine; a rate per source; and no start on the network without tokens."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from temporalio.testing import WorkflowEnvironment

from settings import ROOT, Settings
from starter.http.app import create_app
from starter.http.doors import DoorsOpen, RateLimit
from tests.starter.conftest import workflows_on
from workflows.contracts.policy import Policy


def generic() -> dict[str, str]:
    return {"dedup_key": uuid.uuid4().hex, "title": "Checkout is failing", "severity": "SEV3"}


@asynccontextmanager
async def service(
    dev_env: WorkflowEnvironment,
    settings: Settings,
    policy: Policy,
    client: tuple[str, int] = ("127.0.0.1", 50000),
    **changes: Any,
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings.model_copy(update=changes), client=dev_env.client, policy=policy)
    transport = httpx.ASGITransport(app, client=client)
    async with httpx.AsyncClient(transport=transport, base_url="http://webhook") as http:
        yield http


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("tokens", ["", '{"generic": ""}'])
def test_bound_to_0_0_0_0_without_tokens_the_http_service_does_not_start(tokens: str) -> None:
    """An empty value counts as none."""
    env = {**os.environ, "HTTP_HOST": "0.0.0.0", "ALERT_TOKENS": tokens, "HEARTBEAT_TOKENS": "", "HTTP_PORT": "9"}
    done = subprocess.run(
        [sys.executable, "-m", "starter.http.app"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2, done.stderr
    assert "refusing to listen on 0.0.0.0 without tokens" in done.stderr


def test_a_calendar_token_that_is_also_an_alert_token_refuses_the_start(settings: Settings) -> None:
    same = settings.model_copy(update={"alert_tokens": {"generic": SecretStr("t")}, "calendar_token": SecretStr("t")})
    with pytest.raises(DoorsOpen, match="calendar link must not open incidents"):
        create_app(same)


def test_on_loopback_without_tokens_it_warns_loudly(
    settings: Settings, example_policy: Policy, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="webhook"):
        create_app(settings, policy=example_policy)
    assert any("DOORS OPEN" in r.getMessage() for r in caplog.records)


async def test_each_alert_source_has_its_own_token_and_a_source_without_one_is_closed(
    dev_env: WorkflowEnvironment, settings: Settings, example_policy: Policy, worker: None
) -> None:
    async with service(dev_env, settings, example_policy, alert_tokens={"generic": SecretStr("g")}) as http:
        assert (await http.post("/alerts/generic", json=generic())).status_code == 401
        assert (await http.post("/alerts/generic", json=generic(), headers=bearer("x"))).status_code == 401
        closed = await http.post("/alerts/datadog", json={}, headers=bearer("g"))
        assert closed.status_code == 403 and "ALERT_TOKENS" in closed.json()["error"]
        assert await workflows_on(dev_env, settings) == 0
        assert (await http.post("/alerts/generic", json=generic(), headers=bearer("g"))).status_code == 202


async def test_a_heartbeat_takes_only_its_own_token(
    dev_env: WorkflowEnvironment, settings: Settings, example_policy: Policy, worker: None
) -> None:
    beats = {"nightly-backup": SecretStr("h")}
    alerts = {"generic": SecretStr("g")}
    async with service(dev_env, settings, example_policy, alert_tokens=alerts, heartbeat_tokens=beats) as http:
        assert (await http.post("/heartbeats/nightly-backup", headers=bearer("g"))).status_code == 401
        assert (await http.post("/alerts/generic", json=generic(), headers=bearer("h"))).status_code == 401
        assert (await http.post("/heartbeats/nightly-backup", headers=bearer("h"))).status_code == 202


async def test_the_calendar_token_reads_calendars_and_opens_no_incident(
    dev_env: WorkflowEnvironment, settings: Settings, example_policy: Policy, worker: None
) -> None:
    alerts = {"generic": SecretStr("g")}
    async with service(dev_env, settings, example_policy, alert_tokens=alerts, calendar_token=SecretStr("c")) as http:
        assert (await http.get("/schedules/primary.ics?token=c")).status_code == 200
        assert (await http.get("/schedules/primary.ics", headers=bearer("c"))).status_code == 200
        assert (await http.get("/schedules/primary.ics?token=g")).status_code == 401
        assert (await http.get("/schedules/primary.ics")).status_code == 401
        assert (await http.post("/alerts/generic", json=generic(), headers=bearer("c"))).status_code == 401
    assert await workflows_on(dev_env, settings) == 0


async def test_a_source_over_its_rate_gets_429_with_retry_after(
    dev_env: WorkflowEnvironment, settings: Settings, example_policy: Policy, worker: None
) -> None:
    async with service(dev_env, settings, example_policy, rate_limit_per_minute=2) as http:
        for _ in range(2):
            assert (await http.post("/alerts/generic", json=generic())).status_code == 202
        limited = await http.post("/alerts/generic", json=generic())
        assert limited.status_code == 429 and limited.headers["Retry-After"] == "30", limited.headers
        assert "RATE_LIMIT_PER_MINUTE" in limited.json()["error"]
        assert (await http.post("/alerts/grafana", json={})).status_code == 422, "another source has its own rate"


def test_the_rate_refills_over_the_minute() -> None:
    rate = RateLimit(per_minute=60)
    for _ in range(60):
        rate.take("alerts/generic", now=0)
    with pytest.raises(Exception, match="retry in 1 s"):
        rate.take("alerts/generic", now=0)
    rate.take("alerts/generic", now=1.0)


async def test_metrics_need_their_own_token_or_this_machine(
    dev_env: WorkflowEnvironment, settings: Settings, example_policy: Policy
) -> None:
    async with service(dev_env, settings, example_policy, client=("10.1.2.3", 50000)) as http:
        assert (await http.get("/metrics")).status_code == 403
    async with service(dev_env, settings, example_policy) as http:
        assert (await http.get("/metrics")).status_code == 200
    elsewhere = ("10.1.2.3", 50000)
    async with service(dev_env, settings, example_policy, client=elsewhere, metrics_token=SecretStr("m")) as http:
        assert (await http.get("/metrics")).status_code == 401
        assert (await http.get("/metrics", headers=bearer("m"))).status_code == 200


async def test_the_open_incident_gauge_is_read_once_however_often_it_is_scraped(
    dev_env: WorkflowEnvironment, settings: Settings, example_policy: Policy
) -> None:
    def read_at(text: str) -> str:
        return next(line for line in text.splitlines() if line.startswith("incident_open_read_at_seconds "))

    async with service(dev_env, settings, example_policy, metrics_gauge_seconds=60) as http:
        first = read_at((await http.get("/metrics")).text)
        for _ in range(5):
            assert read_at((await http.get("/metrics")).text) == first
