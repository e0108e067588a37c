"""The HTTP service against the real dev server, with a worker on the test's own task queue."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from settings import Settings
from starter.http.app import create_app
from worker import build_worker
from workflows.contracts.policy import Policy


@pytest.fixture
async def worker(dev_env: WorkflowEnvironment, settings: Settings) -> AsyncIterator[None]:
    async with build_worker(dev_env.client, settings):
        yield


@pytest.fixture
async def http(
    dev_env: WorkflowEnvironment, settings: Settings, example_policy: Policy, worker: None
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, client=dev_env.client, policy=example_policy)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://webhook") as client:
        yield client


async def workflows_on(env: WorkflowEnvironment, settings: Settings) -> int:
    """How many incidents this test's task queue has seen: bad input must leave it at zero."""
    query = f'TaskQueue="{settings.incident_task_queue}" AND WorkflowType="IncidentWorkflow"'
    count = await env.client.count_workflows(query)
    return count.count
