"""Conference calls: a Zoom meeting when Zoom is configured, otherwise the policy's standing bridge.

With neither, the join URL is empty and the workflow says that no bridge is configured: a made-up
address would send responders to a call that does not exist. Zoom takes no idempotency key: a retry
after a lost answer (the worker killed while Zoom was answering) creates a second meeting. Only the
returned one is shared, the other stays empty; the attempt ends before Temporal would retry it, so an
old attempt never creates a meeting after its retry did.
"""

from __future__ import annotations

import time

import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.http import check, new_client, send, within_attempt
from activities.outbox import Outbox
from settings import Settings
from workflows.contracts.activity_io import ConferenceRequest, ConferenceResult

INSTANT_MEETING = 1
TOKEN_MARGIN_SECONDS = 60  # renew a little before Zoom's expiry, not on the first 401


class ConferenceActivities:
    def __init__(self, settings: Settings, outbox: Outbox) -> None:
        self.settings = settings
        self.outbox = outbox
        self.zoom: httpx.AsyncClient | None = None
        self._zoom_credentials = ("", "")  # client id, client secret
        if settings.zoom_account_id and settings.zoom_client_id and settings.zoom_client_secret is not None:
            self.zoom = new_client(settings.zoom_api_url)
            self._zoom_credentials = (settings.zoom_client_id, settings.zoom_client_secret.get_secret_value())
        self._token = ""
        self._token_expires = 0.0  # time.monotonic() after which the token is renewed

    @activity.defn
    async def conference_create(self, request: ConferenceRequest) -> ConferenceResult:
        if self.zoom is not None:
            async with within_attempt("zoom"):
                join_url = await self._zoom_meeting(self.zoom, request)
            return ConferenceResult(join_url=join_url, delivered_to="zoom")
        if request.bridge_url:
            where = await self.outbox.deliver(
                "conference",
                "bridge",
                f"conference:{request.incident_id}",
                request.model_dump() | {"join_url": request.bridge_url},
            )
            return ConferenceResult(join_url=request.bridge_url, delivered_to=where)
        return ConferenceResult(join_url="")

    async def _zoom_meeting(self, client: httpx.AsyncClient, request: ConferenceRequest) -> str:
        token = await self._zoom_token(client)
        response = await send(
            client,
            "zoom",
            "POST",
            "/users/me/meetings",
            headers={"Authorization": f"Bearer {token}"},
            json={
                "topic": f"{request.incident_id}: {request.topic}"[:200],
                "type": INSTANT_MEETING,
                "agenda": request.topic[:2000],
            },
        )
        if response.status_code == 401:
            # a token revoked before its expiry: forget it, and the retry fetches a new one
            self._token = ""
            raise ApplicationError("zoom refused the access token", type="zoom:401")
        check(response, "zoom")
        join_url = response.json().get("join_url", "")
        if not join_url:
            raise ApplicationError("zoom created a meeting without a join_url", type="zoom:unexpected")
        return str(join_url)

    async def _zoom_token(self, client: httpx.AsyncClient) -> str:
        """Server-to-Server OAuth: an account_credentials token, kept until shortly before it expires."""
        if self._token and time.monotonic() < self._token_expires:
            return self._token
        response = await send(
            client,
            "zoom",
            "POST",
            self.settings.zoom_oauth_url,
            params={"grant_type": "account_credentials", "account_id": self.settings.zoom_account_id},
            auth=self._zoom_credentials,
        )
        check(response, "zoom")
        answer = response.json()
        self._token = str(answer["access_token"])
        self._token_expires = time.monotonic() + float(answer.get("expires_in", 3600)) - TOKEN_MARGIN_SECONDS
        return self._token
