"""A fake Confluence Cloud REST API (v1, under /wiki): pages of one space by title, versions that must go up
by one (409 otherwise), a title once per space, and content templates; Basic auth with an API token."""

from __future__ import annotations

import itertools
from typing import Any

from aiohttp import web
from pydantic import SecretStr

from settings import Settings
from tests.fakes.peer import FakePeer, basic_auth, params

EMAIL = "incidents@example.com"
TOKEN = "confluence-test-token"
SPACE = "OPS"


class FakeConfluence(FakePeer):
    def __init__(self) -> None:
        super().__init__()
        self.pages: dict[str, dict[str, Any]] = {}
        self.templates: dict[str, str] = {}  # template id -> its storage body
        self._ids = itertools.count(98001)
        base = "/wiki/rest/api"
        self.app.router.add_get(base + "/content", self._find)
        self.app.router.add_post(base + "/content", self._create)
        self.app.router.add_get(base + "/content/{page_id}", self._get)
        self.app.router.add_put(base + "/content/{page_id}", self._update)
        self.app.router.add_get(base + "/template/{template_id}", self._template)

    def configure(self, settings: Settings) -> Settings:
        return settings.model_copy(
            update={
                "confluence_url": f"{self.url}/wiki",
                "confluence_email": EMAIL,
                "confluence_api_token": SecretStr(TOKEN),
            }
        )

    def _refused(self, request: web.Request) -> web.Response | None:
        expected = basic_auth(EMAIL, TOKEN)
        if request.headers.get("Authorization") != expected:
            return web.json_response({"statusCode": 401, "message": "Unauthorized"}, status=401)
        return None

    def _view(self, page: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": page["id"],
            "type": "page",
            "title": page["title"],
            "space": {"key": page["space"]},
            "version": {"number": page["version"]},
            "body": {"storage": {"value": page["body"], "representation": "storage"}},
        }

    async def _find(self, request: web.Request) -> web.Response:
        if refused := self._refused(request):
            return refused
        found = [
            self._view(p)
            for p in self.pages.values()
            if p["space"] == request.query.get("spaceKey") and p["title"] == request.query.get("title")
        ]
        return web.json_response({"results": found, "start": 0, "limit": 25, "size": len(found), "_links": {}})

    async def _create(self, request: web.Request) -> web.Response:
        if refused := self._refused(request):
            return refused
        page = params(request)
        space = (page.get("space") or {}).get("key")
        if space != SPACE:
            return web.json_response({"statusCode": 404, "message": f"No space with key : {space}"}, status=404)
        if any(p["space"] == space and p["title"] == page.get("title") for p in self.pages.values()):
            message = "A page with this title already exists: A page already exists with the same TITLE in this space"
            return web.json_response({"statusCode": 400, "message": message}, status=400)
        created = {
            "id": str(next(self._ids)),
            "title": page["title"],
            "space": space,
            "version": 1,
            "body": ((page.get("body") or {}).get("storage") or {}).get("value", ""),
            "ancestors": page.get("ancestors") or [],
        }
        self.pages[created["id"]] = created
        return web.json_response(self._view(created))

    async def _get(self, request: web.Request) -> web.Response:
        if refused := self._refused(request):
            return refused
        page = self.pages.get(request.match_info["page_id"])
        if page is None:
            return web.json_response({"statusCode": 404, "message": "No content found"}, status=404)
        return web.json_response(self._view(page))

    async def _update(self, request: web.Request) -> web.Response:
        if refused := self._refused(request):
            return refused
        page = self.pages.get(request.match_info["page_id"])
        if page is None:
            return web.json_response({"statusCode": 404, "message": "No content found"}, status=404)
        update = params(request)
        number = int((update.get("version") or {}).get("number", 0))
        if number != page["version"] + 1:
            message = f"Version must be incremented on update. Current version is: {page['version']}"
            return web.json_response({"statusCode": 409, "message": message}, status=409)
        page |= {
            "version": number,
            "title": update.get("title", page["title"]),
            "body": ((update.get("body") or {}).get("storage") or {}).get("value", page["body"]),
        }
        return web.json_response(self._view(page))

    async def _template(self, request: web.Request) -> web.Response:
        if refused := self._refused(request):
            return refused
        body = self.templates.get(request.match_info["template_id"])
        if body is None:
            return web.json_response({"statusCode": 404, "message": "No template found"}, status=404)
        return web.json_response(
            {"templateId": request.match_info["template_id"], "body": {"storage": {"value": body}}}
        )
