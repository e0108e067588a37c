"""Confluence: the incident record as a page of the policy's space, started from the organisation's template.

The page's title names the incident's key, and Confluence refuses a second page of the same title in a
space: a write that does not know the page looks it up by title before creating it. Every write puts the
whole page (the template's part kept, the current state, the history with every entry once by its
marker) under the next version number, so a retry that races an earlier attempt gets a 409 and reads again.
"""

from __future__ import annotations

import html
import re
from typing import Any
from urllib.parse import quote

import httpx
from temporalio.exceptions import ApplicationError

from activities.http import auth_headers, check, heartbeating, new_client, send, within_attempt
from activities.outbox import Outbox, record_to_outbox
from settings import Settings
from workflows.contracts.activity_io import RecordWrite, RecordWritten

PEER = "confluence"
RECORD = "<h2>Incident record</h2>"  # where the template's part of the page ends
HISTORY = "<h2>History</h2>"
ENTRY = re.compile(r"<li>.*?</li>", re.DOTALL)


def page_title(write: RecordWrite) -> str:
    return f"Incident log {write.incident_id} ({write.key.rpartition('@')[2] or 'record'})"


class ConfluenceActivities:
    def __init__(self, settings: Settings, outbox: Outbox) -> None:
        self.outbox = outbox
        self.base = (settings.confluence_url or "").rstrip("/")
        self.client: httpx.AsyncClient | None = None
        if settings.confluence_url and settings.confluence_api_token is not None:
            headers = auth_headers(settings.confluence_email, settings.confluence_api_token.get_secret_value())
            self.client = new_client(settings.confluence_url, headers)

    async def confluence_write_record(self, write: RecordWrite) -> RecordWritten:
        if self.client is None:
            return await record_to_outbox(self.outbox, PEER, write)
        async with within_attempt(PEER), heartbeating():
            page = await self._page(self.client, write)
            if page is None:
                template = await self._template(self.client, write.records.template_id)
                page = await self._call(
                    self.client,
                    "POST",
                    "/rest/api/content",
                    {
                        "type": "page",
                        "title": page_title(write),
                        "space": {"key": write.records.project},
                        "body": {"storage": {"value": render(template, write, []), "representation": "storage"}},
                    }
                    | ({"ancestors": [{"id": write.records.parent_page_id}]} if write.records.parent_page_id else {}),
                )
            body = str(((page.get("body") or {}).get("storage") or {}).get("value", ""))
            template, _, rest = body.partition(RECORD)
            written = ENTRY.findall(rest.partition(HISTORY)[2])
            version = int((page.get("version") or {}).get("number", 1))
            await self._call(
                self.client,
                "PUT",
                f"/rest/api/content/{quote(str(page['id']), safe='')}",
                {
                    "type": "page",
                    "title": page_title(write),
                    "version": {"number": version + 1},
                    "body": {"storage": {"value": render(template, write, written), "representation": "storage"}},
                },
            )
        return RecordWritten(record_id=str(page["id"]), url=f"{self.base}/pages/viewpage.action?pageId={page['id']}")

    async def _call(self, client: httpx.AsyncClient, method: str, path: str, body: Any = None) -> Any:
        response = await send(client, PEER, method, path, json=body)
        if response.status_code == 409:  # another attempt wrote this version first: read the page again
            raise ApplicationError("confluence: the page changed meanwhile", type="confluence:409")
        check(response, PEER)
        return response.json() if response.content else {}

    async def _page(self, client: httpx.AsyncClient, write: RecordWrite) -> dict[str, Any] | None:
        expand = "body.storage,version"
        if write.record_id:
            path = f"/rest/api/content/{quote(write.record_id, safe='')}"
            return dict(await self._call(client, "GET", f"{path}?expand={expand}"))
        query = {"spaceKey": write.records.project, "title": page_title(write), "expand": expand, "type": "page"}
        response = await send(client, PEER, "GET", "/rest/api/content", params=query)
        check(response, PEER)
        results = (response.json() or {}).get("results") or []
        return dict(results[0]) if results else None

    async def _template(self, client: httpx.AsyncClient, template_id: str) -> str:
        if not template_id:
            return ""
        template = await self._call(client, "GET", f"/rest/api/template/{quote(template_id, safe='')}")
        return str(((template.get("body") or {}).get("storage") or {}).get("value", ""))


def render(template: str, write: RecordWrite, written: list[str]) -> str:
    """The page: the template's part as it is, the incident now, and its history with each entry once."""
    rows = "".join(
        f"<tr><th>{html.escape(name)}</th><td>{html.escape(value)}</td></tr>" for name, value in write.fields.items()
    )
    there = "".join(written)
    new = [
        f"<li>{html.escape(entry.line(write.key))}</li>"
        for entry in write.entries
        if html.escape(entry.marker(write.key)) not in there
    ]
    return f"{template}{RECORD}<table><tbody>{rows}</tbody></table>{HISTORY}<ul>{there}{''.join(new)}</ul>"
