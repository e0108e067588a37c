"""The incident's call: a Zoom meeting, else the policy's bridge, else none (never a made-up URL)."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from datetime import timedelta

import pytest
from aiohttp import web
from temporalio.exceptions import ApplicationError

from activities.conference import ConferenceActivities
from activities.outbox import Outbox
from settings import Settings
from tests.fakes.zoom import FakeZoom
from tests.integrations.helpers import attempt
from workflows.contracts.activity_io import ConferenceRequest


async def test_zoom_meeting_with_one_token_for_several_calls(settings: Settings, zoom: FakeZoom):
    activities = ConferenceActivities(zoom.configure(settings), Outbox(settings.outbox_path))

    first = await attempt().run(
        activities.conference_create,
        ConferenceRequest(
            incident_id="INC-1", topic="Checkout is failing", bridge_url="https://bridge.example/standing"
        ),
    )
    second = await attempt().run(activities.conference_create, ConferenceRequest(incident_id="INC-2", topic="Database"))

    assert (first.join_url, first.delivered_to) == (zoom.meetings[0]["join_url"], "zoom")
    assert second.join_url == zoom.meetings[1]["join_url"]
    assert zoom.meetings[0]["topic"] == "INC-1: Checkout is failing"
    assert len(zoom.calls("/oauth/token")) == 1


async def test_without_zoom_the_policy_bridge_is_used(settings: Settings):
    activities = ConferenceActivities(settings, Outbox(settings.outbox_path))

    result = await attempt().run(
        activities.conference_create,
        ConferenceRequest(incident_id="INC-1", topic="x", bridge_url="https://meet.example/ir"),
    )

    assert result.join_url == "https://meet.example/ir"


async def test_without_zoom_or_bridge_there_is_no_url(settings: Settings):
    activities = ConferenceActivities(settings, Outbox(settings.outbox_path))

    request = ConferenceRequest(incident_id="INC-1", topic="x")
    result = await attempt().run(activities.conference_create, request)

    assert result.join_url == ""


class SlowZoom(FakeZoom):
    """Creates the meeting, then holds its answer."""

    async def _create_meeting(self, request: web.Request) -> web.Response:
        answer = await super()._create_meeting(request)
        await asyncio.sleep(3)
        return answer


async def test_a_zoom_attempt_ends_before_temporal_would_retry_it(settings: Settings):
    """Otherwise the old attempt and its retry could both be creating a meeting."""
    async with SlowZoom() as zoom:
        activities = ConferenceActivities(zoom.configure(settings), Outbox(settings.outbox_path))
        env = attempt()
        env.info = dataclasses.replace(env.info, start_to_close_timeout=timedelta(seconds=1))
        started = time.monotonic()

        with pytest.raises(ApplicationError) as raised:
            await env.run(activities.conference_create, ConferenceRequest(incident_id="INC-1", topic="x"))
        took = time.monotonic() - started

    assert (raised.value.type, raised.value.non_retryable) == ("zoom:attempt_timeout", False)
    assert took < 1.0
