"""A fake Linear GraphQL API: the two operations the follow-ups use (issues filtered by team and description,
issueCreate), a personal API key in Authorization, and RATELIMITED errors as Linear sends them."""

from __future__ import annotations

import itertools
import time
from typing import Any

from aiohttp import web
from pydantic import SecretStr

from settings import Settings
from tests.fakes.peer import FakePeer, params

API_KEY = "lin_api_test"
TEAM = "team-eng"


class FakeLinear(FakePeer):
    def __init__(self) -> None:
        super().__init__()
        self.issues: list[dict[str, Any]] = []
        self.rate_limited = 0  # the next n requests are refused with RATELIMITED
        self._numbers = itertools.count(1)
        self.app.router.add_post("/graphql", self._graphql)

    def configure(self, settings: Settings) -> Settings:
        return settings.model_copy(
            update={"linear_api_key": SecretStr(API_KEY), "linear_api_url": f"{self.url}/graphql"}
        )

    async def _graphql(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != API_KEY:
            error = {
                "message": "Authentication required, not authenticated",
                "extensions": {"code": "AUTHENTICATION_ERROR"},
            }
            return web.json_response({"errors": [error]}, status=400)
        if self.rate_limited:
            self.rate_limited -= 1
            reset = str(int(time.time() * 1000) + 1000)
            error = {"message": "Rate limit exceeded", "extensions": {"code": "RATELIMITED"}}
            return web.json_response({"errors": [error]}, status=400, headers={"X-RateLimit-Requests-Reset": reset})
        body = params(request)
        query, variables = str(body.get("query", "")), body.get("variables") or {}
        if "issueCreate" in query:
            issue = dict(variables.get("input") or {})
            if issue.get("teamId") != TEAM or not issue.get("title"):
                error = {"message": "Argument Validation Error", "extensions": {"code": "INVALID_INPUT"}}
                return web.json_response({"errors": [error]}, status=400)
            number = next(self._numbers)
            issue |= {"identifier": f"ENG-{number}", "url": f"https://linear.app/acme/issue/ENG-{number}"}
            self.issues.append(issue)
            created = {"success": True, "issue": {"identifier": issue["identifier"], "url": issue["url"]}}
            return web.json_response({"data": {"issueCreate": created}})
        if "issues(" in query:
            found = [
                {"identifier": i["identifier"], "url": i["url"]}
                for i in self.issues
                if i["teamId"] == variables.get("team") and str(variables.get("marker")) in i.get("description", "")
            ]
            return web.json_response({"data": {"issues": {"nodes": found[:1]}}})
        error = {"message": "Cannot query this", "extensions": {"code": "GRAPHQL_VALIDATION_FAILED"}}
        return web.json_response({"errors": [error]}, status=400)
