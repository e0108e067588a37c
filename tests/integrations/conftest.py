"""Fixtures for the delivery adapters: each fake peer running on 127.0.0.1 for one test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.fakes.slack import FakeSlack


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as fake:
        yield fake
