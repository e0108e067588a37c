"""A fake Jira (REST API v2): issues of one project, their labels, status transitions, assignee and comments,
JQL search by label, paging (startAt, maxResults, total) and Basic auth with an e-mail and API token.

People other than the service account act on issues with their own credentials (`person`); each status
transition or assignee change is then delivered, as Jira's "Issue updated" webhook does, to every
subscriber (`subscribe`): the body signed with the webhook's secret (`X-Hub-Signature: sha256=<HMAC>`)
and a delivery id (`X-Atlassian-Webhook-Identifier`), naming the account that made the change.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import re
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from pydantic import SecretStr

from settings import Settings
from tests.fakes.peer import FakePeer, basic_auth, params

EMAIL = "incidents@example.com"
TOKEN = "jira-test-token"
PROJECT = "OPS"
STATUSES = ["To Do", "In Progress", "Resolved", "Closed"]
PRIORITIES = {"Highest", "High", "Medium", "Low", "Lowest"}
MAX_RESULTS = 2  # small pages, so every reader has to page
SERVICE_ACCOUNT = "svc-incidents"  # the account id of the orchestrator's own credential
ACCOUNT = web.RequestKey("account", str)
# A webhook's receiver: the body and headers as Jira posts them; answers the HTTP status.
Deliver = Callable[[bytes, dict[str, str]], Awaitable[int]]


class FakeJira(FakePeer):
    def __init__(self) -> None:
        super().__init__()
        self.issues: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(10001)
        self._numbers = itertools.count(1)
        self._accounts = {basic_auth(EMAIL, TOKEN): SERVICE_ACCOUNT}
        self._webhooks: list[tuple[Deliver, str]] = []
        self._deliveries: set[asyncio.Task[None]] = set()
        self.delivered: list[tuple[str, int]] = []  # (the account that changed the issue, the receiver's status)
        api = "/rest/api/2"
        self.app.router.add_get(api + "/search", self._search)
        self.app.router.add_post(api + "/issue", self._create)
        self.app.router.add_get(api + "/issue/{key}", self._get)
        self.app.router.add_put(api + "/issue/{key}", self._edit)
        self.app.router.add_put(api + "/issue/{key}/assignee", self._assign)
        self.app.router.add_get(api + "/issue/{key}/transitions", self._transitions)
        self.app.router.add_post(api + "/issue/{key}/transitions", self._transition)
        self.app.router.add_get(api + "/issue/{key}/comment", self._comments)
        self.app.router.add_post(api + "/issue/{key}/comment", self._comment)
        self.app.router.add_post(api + "/issue/{key}/remotelink", self._remote_link)

    def configure(self, settings: Settings) -> Settings:
        return settings.model_copy(
            update={"jira_url": self.url, "jira_email": EMAIL, "jira_api_token": SecretStr(TOKEN)}
        )

    def comments(self, key: str) -> list[str]:
        return [c["body"] for c in self.issues[key]["comments"]]

    def person(self, email: str, token: str, account_id: str) -> dict[str, str]:
        """A person's own credential; returns the headers their requests carry."""
        self._accounts[basic_auth(email, token)] = account_id
        return {"Authorization": basic_auth(email, token)}

    def subscribe(self, deliver: Deliver, secret: str) -> None:
        self._webhooks.append((deliver, secret))

    async def settled(self) -> None:
        """Every webhook delivery made so far has had its answer."""
        while self._deliveries:
            await asyncio.gather(*self._deliveries)

    def _refused(self, request: web.Request) -> web.Response | None:
        account = self._accounts.get(request.headers.get("Authorization", ""))
        if account is None:
            return web.json_response({"errorMessages": ["You are not authenticated."]}, status=401)
        request[ACCOUNT] = account
        return None

    def _changed(self, request: web.Request, issue: dict[str, Any], item: dict[str, Any]) -> None:
        """Jira's issue-updated webhook, posted to each subscriber after the change, as Jira does: not awaited."""
        account = request[ACCOUNT]
        event = {
            "webhookEvent": "jira:issue_updated",
            "user": {"accountId": account},
            "issue": {"id": issue["id"], "key": issue["key"], "fields": issue["fields"]},
            "changelog": {"items": [item]},
        }
        body = json.dumps(event).encode()
        for deliver, secret in self._webhooks:
            headers = {
                "Content-Type": "application/json",
                "X-Hub-Signature": "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest(),
                "X-Atlassian-Webhook-Identifier": uuid.uuid4().hex,
            }
            task = asyncio.ensure_future(self._deliver(deliver, account, body, headers))
            self._deliveries.add(task)
            task.add_done_callback(self._deliveries.discard)

    async def _deliver(self, deliver: Deliver, account: str, body: bytes, headers: dict[str, str]) -> None:
        self.delivered.append((account, await deliver(body, headers)))

    def _issue(self, request: web.Request) -> dict[str, Any] | web.Response:
        if refused := self._refused(request):
            return refused
        issue = self.issues.get(request.match_info["key"])
        if issue is None:
            return web.json_response({"errorMessages": ["Issue does not exist"], "errors": {}}, status=404)
        return issue

    async def _search(self, request: web.Request) -> web.Response:
        if refused := self._refused(request):
            return refused
        found = re.fullmatch(r'labels = "([^"]+)"(?: ORDER BY created ASC)?', request.query.get("jql", ""))
        if found is None:
            return web.json_response({"errorMessages": ["Error in the JQL Query"]}, status=400)
        issues = [i for i in self.issues.values() if found.group(1) in i["fields"]["labels"]]
        start, most = int(request.query.get("startAt", 0)), int(request.query.get("maxResults", 50))
        page = [{"id": i["id"], "key": i["key"], "fields": {}} for i in issues[start : start + most]]
        return web.json_response({"startAt": start, "maxResults": most, "total": len(issues), "issues": page})

    async def _create(self, request: web.Request) -> web.Response:
        if refused := self._refused(request):
            return refused
        fields = params(request).get("fields") or {}
        if (fields.get("project") or {}).get("key") != PROJECT:
            return invalid("project", "valid project is required")
        if not fields.get("summary"):
            return invalid("summary", "You must specify a summary")
        key = f"{PROJECT}-{next(self._numbers)}"
        issue: dict[str, Any] = {
            "id": str(next(self._ids)),
            "key": key,
            "fields": fields | {"labels": list(fields.get("labels") or []), "status": {"name": "To Do"}},
            "comments": [],
            "links": {},  # remote links by globalId
        }
        self.issues[key] = issue
        return web.json_response(
            {"id": issue["id"], "key": key, "self": f"{self.url}/rest/api/2/issue/{key}"}, status=201
        )

    async def _get(self, request: web.Request) -> web.Response:
        issue = self._issue(request)
        if isinstance(issue, web.Response):
            return issue
        return web.json_response({"id": issue["id"], "key": issue["key"], "fields": issue["fields"]})

    async def _edit(self, request: web.Request) -> web.Response:
        issue = self._issue(request)
        if isinstance(issue, web.Response):
            return issue
        fields = params(request).get("fields") or {}
        priority = (fields.get("priority") or {}).get("name")
        if priority is not None and priority not in PRIORITIES:
            return invalid("priority", "invalid priority")
        issue["fields"] |= fields
        return web.Response(status=204)

    async def _assign(self, request: web.Request) -> web.Response:
        issue = self._issue(request)
        if isinstance(issue, web.Response):
            return issue
        before = (issue["fields"].get("assignee") or {}).get("accountId")
        after = params(request).get("accountId")
        issue["fields"]["assignee"] = {"accountId": after}
        if after != before:
            self._changed(request, issue, {"field": "assignee", "from": before, "to": after})
        return web.Response(status=204)

    async def _transitions(self, request: web.Request) -> web.Response:
        issue = self._issue(request)
        if isinstance(issue, web.Response):
            return issue
        now = issue["fields"]["status"]["name"]
        targets = [s for s in STATUSES if s != now]
        return web.json_response(
            {"transitions": [{"id": str(11 + STATUSES.index(s)), "name": s, "to": {"name": s}} for s in targets]}
        )

    async def _transition(self, request: web.Request) -> web.Response:
        issue = self._issue(request)
        if isinstance(issue, web.Response):
            return issue
        wanted = str((params(request).get("transition") or {}).get("id", ""))
        target = next((s for s in STATUSES if str(11 + STATUSES.index(s)) == wanted), None)
        if target is None or target == issue["fields"]["status"]["name"]:
            return web.json_response({"errorMessages": ["Transition id is not valid for this issue."]}, status=400)
        before = issue["fields"]["status"]["name"]
        issue["fields"] |= (params(request).get("fields") or {}) | {"status": {"name": target}}  # the screen's fields
        self._changed(request, issue, {"field": "status", "fromString": before, "toString": target})
        return web.Response(status=204)

    async def _comments(self, request: web.Request) -> web.Response:
        issue = self._issue(request)
        if isinstance(issue, web.Response):
            return issue
        start = int(request.query.get("startAt", 0))
        most = min(int(request.query.get("maxResults", MAX_RESULTS)), MAX_RESULTS)
        comments = issue["comments"]
        return web.json_response(
            {"startAt": start, "maxResults": most, "total": len(comments), "comments": comments[start : start + most]}
        )

    async def _comment(self, request: web.Request) -> web.Response:
        issue = self._issue(request)
        if isinstance(issue, web.Response):
            return issue
        body = params(request).get("body")
        if not body:
            return invalid("comment", "Comment body can not be empty!")
        comment = {"id": str(next(self._ids)), "body": body}
        issue["comments"].append(comment)
        return web.json_response(comment, status=201)

    async def _remote_link(self, request: web.Request) -> web.Response:
        """A link to a page outside Jira; the same globalId again updates it."""
        issue = self._issue(request)
        if isinstance(issue, web.Response):
            return issue
        link = params(request)
        if not (link.get("object") or {}).get("url"):
            return invalid("object", "url is required")
        issue["links"][link.get("globalId") or str(next(self._ids))] = link["object"]
        return web.json_response({"id": next(self._ids), "self": f"{self.url}/remotelink"}, status=201)


def invalid(field: str, message: str) -> web.Response:
    return web.json_response({"errorMessages": [], "errors": {field: message}}, status=400)
