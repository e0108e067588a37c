"""What every fake HTTP peer shares: an aiohttp app on 127.0.0.1 at a free port, a record of every
request it received, scripted faults (a status, a body, headers) for the next matching requests, a delay before
every answer (a slow peer), and a counter for the ids it hands out."""

from __future__ import annotations

import asyncio
import base64
import itertools
from dataclasses import dataclass, field
from typing import Any, Self

from aiohttp import web

PARAMS = web.RequestKey("params", dict[str, Any])


@dataclass
class Received:
    """One request as the peer saw it; `params` merges query, form and JSON body, as the real APIs do."""

    method: str
    path: str
    headers: dict[str, str]
    params: dict[str, Any]


@dataclass
class Fault:
    path_part: str
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)
    times: int = 1


class FakePeer:
    def __init__(self) -> None:
        self.app = web.Application(middlewares=[self._record_and_inject])
        self.received: list[Received] = []
        self.faults: list[Fault] = []
        self.url = ""
        self.delay = 0.0  # seconds before each answer: a slow peer
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None

    async def __aenter__(self) -> Self:
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def fail(
        self, path_part: str, status: int, body: Any, *, headers: dict[str, str] | None = None, times: int = 1
    ) -> None:
        """Answer the next `times` requests whose path contains `path_part` with this, unprocessed."""
        self.faults.append(Fault(path_part, status, body, headers or {}, times))

    def calls(self, path_part: str) -> list[Received]:
        return [request for request in self.received if path_part in request.path]

    @web.middleware
    async def _record_and_inject(self, request: web.Request, handler: Any) -> web.StreamResponse:
        await asyncio.sleep(self.delay)
        params: dict[str, Any] = dict(request.query)
        if request.can_read_body:
            if request.content_type == "application/json":
                params.update(await request.json())
            else:
                params.update(await request.post())
        request[PARAMS] = params
        self.received.append(Received(request.method, request.path, dict(request.headers), params))
        for fault in self.faults:
            if fault.times > 0 and fault.path_part in request.path:
                fault.times -= 1
                if isinstance(fault.body, str):  # an HTML error page from a proxy or load balancer
                    return web.Response(
                        status=fault.status, headers=fault.headers, text=fault.body, content_type="text/html"
                    )
                return web.json_response(fault.body, status=fault.status, headers=fault.headers)
        response: web.StreamResponse = await handler(request)
        return response


def params(request: web.Request) -> dict[str, Any]:
    return request[PARAMS]


def basic_auth(user: str, password: str) -> str:
    """The Authorization header a client with these credentials sends (HTTP Basic)."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
