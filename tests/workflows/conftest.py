"""The worker the workflow tests run against: every workflow and activity, on the time-skipping server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from temporalio.testing import WorkflowEnvironment

from settings import Settings
from worker import build_worker


@pytest.fixture
async def worker(ts_env: WorkflowEnvironment, settings: Settings) -> AsyncIterator[None]:
    async with build_worker(ts_env.client, settings):
        yield
