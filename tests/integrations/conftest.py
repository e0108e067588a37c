"""Fixtures for the delivery adapters: each fake peer running on 127.0.0.1 for one test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.fakes.confluence import FakeConfluence
from tests.fakes.jira import FakeJira
from tests.fakes.linear import FakeLinear
from tests.fakes.ntfy import FakeNtfy
from tests.fakes.paging import FakeJsm, FakeOpsGenie, FakePagerDuty
from tests.fakes.servicenow import FakeServiceNow
from tests.fakes.slack import FakeSlack
from tests.fakes.smtp import FakeSmtp
from tests.fakes.statuspage import FakeStatuspage
from tests.fakes.telegram import FakeTelegram
from tests.fakes.twilio import FakeTwilio
from tests.fakes.vonage import FakeVonage
from tests.fakes.zoom import FakeZoom


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as fake:
        yield fake


@pytest.fixture
async def opsgenie() -> AsyncIterator[FakeOpsGenie]:
    async with FakeOpsGenie() as fake:
        yield fake


@pytest.fixture
async def jsm() -> AsyncIterator[FakeJsm]:
    async with FakeJsm() as fake:
        yield fake


@pytest.fixture
async def pagerduty() -> AsyncIterator[FakePagerDuty]:
    async with FakePagerDuty() as fake:
        yield fake


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram(blocked={"1003"}) as fake:
        yield fake


@pytest.fixture
async def statuspage() -> AsyncIterator[FakeStatuspage]:
    async with FakeStatuspage() as fake:
        yield fake


@pytest.fixture
async def zoom() -> AsyncIterator[FakeZoom]:
    async with FakeZoom() as fake:
        yield fake


@pytest.fixture
async def smtp() -> AsyncIterator[FakeSmtp]:
    async with FakeSmtp() as server:
        yield server


@pytest.fixture
async def ntfy() -> AsyncIterator[FakeNtfy]:
    async with FakeNtfy(forbidden={"someone-elses"}) as fake:
        yield fake


@pytest.fixture
async def twilio_api() -> AsyncIterator[FakeTwilio]:
    async with FakeTwilio(unreachable={"+15550100099"}) as fake:
        yield fake


@pytest.fixture
async def vonage_api() -> AsyncIterator[FakeVonage]:
    async with FakeVonage(unreachable={"15550100099"}) as fake:
        yield fake


@pytest.fixture
async def jira() -> AsyncIterator[FakeJira]:
    async with FakeJira() as fake:
        yield fake


@pytest.fixture
async def servicenow() -> AsyncIterator[FakeServiceNow]:
    async with FakeServiceNow() as fake:
        yield fake


@pytest.fixture
async def confluence() -> AsyncIterator[FakeConfluence]:
    async with FakeConfluence() as fake:
        yield fake


@pytest.fixture
async def linear() -> AsyncIterator[FakeLinear]:
    async with FakeLinear() as fake:
        yield fake
