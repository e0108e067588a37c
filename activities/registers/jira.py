"""Jira: the incident record as an issue of the policy's project (Jira Software or Service Management).

The issue carries the label `incident-<key>`; a write that does not know the issue yet searches for that
label before it creates one. The description is the incident as it is now; each history entry is a
comment ending in its marker, and a write that may have run before (a retry, or one after a failed write)
reads the comments first and skips the entries already there. Plain httpx with the REST API v2 (Cloud and
Data Center): the `jira` package is synchronous and retries 429s itself, which would hide Retry-After from
Temporal's retry policy.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.http import auth_headers, check, heartbeating, new_client, send, within_attempt
from activities.outbox import Outbox, record_to_outbox
from settings import Settings
from workflows.contracts.activity_io import FollowUpCreated, FollowUpRequest, RecordWrite, RecordWritten

PEER = "jira"
PRIORITY = {"SEV1": "Highest", "SEV2": "High", "SEV3": "Medium", "SEV4": "Low"}
PAGE = 50  # comments and search results per request


def label(key: str) -> str:
    """Jira labels hold no spaces; the occurrence key holds none either, and '@' reads badly in JQL."""
    return "incident-" + key.replace("@", "-")


def follow_up_label(key: str) -> str:
    return "followup-" + key.replace("@", "-").replace("/", "-")


def description(write: RecordWrite) -> str:
    return "\n".join(f"*{name}*: {value}" for name, value in write.fields.items() if value)


class JiraActivities:
    def __init__(self, settings: Settings, outbox: Outbox) -> None:
        self.outbox = outbox
        self.base = (settings.jira_url or "").rstrip("/")
        self.client: httpx.AsyncClient | None = None
        if settings.jira_url and settings.jira_api_token is not None:
            headers = auth_headers(settings.jira_email, settings.jira_api_token.get_secret_value())
            self.client = new_client(settings.jira_url, headers)

    async def jira_write_record(self, write: RecordWrite) -> RecordWritten:
        if self.client is None:
            return await record_to_outbox(self.outbox, PEER, write)
        async with within_attempt(PEER), heartbeating():
            issue = write.record_id or await self._find(self.client, write.key)
            issue = issue or await self._create(self.client, write)
            path = f"/rest/api/2/issue/{quote(issue, safe='')}"
            fields: dict[str, Any] = {
                "summary": write.fields.get("title", write.incident_id)[:255],
                "description": description(write),
                "priority": {"name": PRIORITY.get(write.fields.get("severity", ""), "Medium")},
            }
            await self._call(self.client, "PUT", path, {"fields": fields})
            if write.assignee_account:
                await self._call(self.client, "PUT", f"{path}/assignee", {"accountId": write.assignee_account})
            await self._move(self.client, path, write.records.statuses.get(write.fields.get("status", ""), ""))
            retried = activity.info().attempt > 1 or write.unsure
            there = await self._markers(self.client, path, write.key) if retried else set()
            for entry in write.entries:
                if entry.marker(write.key) not in there:
                    await self._call(self.client, "POST", f"{path}/comment", {"body": entry.line(write.key)})
        return RecordWritten(record_id=issue, url=f"{self.base}/browse/{issue}")

    async def jira_create_follow_up(self, request: FollowUpRequest) -> FollowUpCreated:
        """The action item's issue, found by its label before it is created; linked back to the incident."""
        if self.client is None:
            await self.outbox.deliver(PEER, "follow_up", request.key, request.model_dump(mode="json"))
            return FollowUpCreated(issue=request.key, url="outbox")
        async with within_attempt(PEER), heartbeating():
            issue = await self._find(self.client, request.key, follow_up_label)
            if not issue:
                settings = request.follow_ups
                fields: dict[str, Any] = {
                    "project": {"key": settings.project},
                    "issuetype": {"name": settings.issue_type},
                    "summary": request.title[:255],
                    "description": request.description,
                    "labels": [follow_up_label(request.key)],
                } | dict(settings.fields)
                if request.due:
                    fields["duedate"] = request.due.isoformat()
                if request.owner_account:
                    fields["assignee"] = {"accountId": request.owner_account}
                issue = str(await self._created(self.client, fields))
            if request.incident_url:  # the same globalId again updates the one link
                link = {
                    "globalId": f"incident={request.incident_id}",
                    "object": {"url": request.incident_url, "title": f"Incident {request.incident_id}"},
                }
                await self._call(self.client, "POST", f"/rest/api/2/issue/{quote(issue, safe='')}/remotelink", link)
        return FollowUpCreated(issue=issue, url=f"{self.base}/browse/{issue}")

    async def _call(self, client: httpx.AsyncClient, method: str, path: str, body: Any = None) -> Any:
        response = await send(client, PEER, method, path, json=body)
        check(response, PEER)
        return response.json() if response.content else None

    async def _find(self, client: httpx.AsyncClient, key: str, labelled: Callable[[str], str] = label) -> str:
        """The issue an earlier attempt created (Jira's search index lags its writes by a moment)."""
        jql = f'labels = "{labelled(key)}" ORDER BY created ASC'
        response = await send(client, PEER, "GET", "/rest/api/2/search", params={"jql": jql, "fields": "key"})
        check(response, PEER)
        found = response.json() or {}
        issues = found.get("issues") or []
        return str(issues[0]["key"]) if issues else ""

    async def _create(self, client: httpx.AsyncClient, write: RecordWrite) -> str:
        fields: dict[str, Any] = {
            "project": {"key": write.records.project},
            "issuetype": {"name": write.records.issue_type},
            "summary": write.fields.get("title", write.incident_id)[:255],
            "labels": [label(write.key)],
        } | dict(write.records.fields)
        return await self._created(client, fields)

    async def _created(self, client: httpx.AsyncClient, fields: dict[str, Any]) -> str:
        created = await self._call(client, "POST", "/rest/api/2/issue", {"fields": fields})
        if not isinstance(created, dict) or "key" not in created:
            raise ApplicationError("jira created an issue but named none", type="jira:unexpected")
        return str(created["key"])

    async def _move(self, client: httpx.AsyncClient, path: str, status: str) -> None:
        """Through the transition that leads to `status`, unless the issue is there (or no transition leads)."""
        if not status:
            return
        issue = await self._call(client, "GET", path, None)
        now = (((issue or {}).get("fields") or {}).get("status") or {}).get("name", "")
        if now.lower() == status.lower():
            return
        answer = await self._call(client, "GET", f"{path}/transitions", None)
        for transition in (answer or {}).get("transitions") or []:
            if str((transition.get("to") or {}).get("name", "")).lower() == status.lower():
                await self._call(client, "POST", f"{path}/transitions", {"transition": {"id": transition["id"]}})
                return
        activity.logger.warning("jira: no transition from %s to %s", now, status)

    async def _markers(self, client: httpx.AsyncClient, path: str, key: str) -> set[str]:
        """The markers of the entries the issue's comments hold, every page of them."""
        there: set[str] = set()
        start = 0
        prefix = f"[{key}#"
        while True:
            response = await send(client, PEER, "GET", f"{path}/comment", params={"startAt": start, "maxResults": PAGE})
            check(response, PEER)
            page = response.json() or {}
            comments = page.get("comments") or []
            for comment in comments:
                body = str(comment.get("body", ""))
                at = body.rfind(prefix)
                if at >= 0:
                    there.add(body[at:].split("]", 1)[0] + "]")
            start += len(comments)
            if not comments or start >= int(page.get("total", 0)):
                return there
