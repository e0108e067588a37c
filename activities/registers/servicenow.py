"""ServiceNow: the incident record as a row of the policy's table (`incident` by default), Table API.

The row's correlation_id is our incident's key; a write that does not know the row yet queries by it
before it inserts one (the Table API reads its own writes, so a create is never repeated). Each history
entry is a work note ending in its marker; a write that may have run before reads the row's work notes
(sys_journal_field, page by page) and skips those already there.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.http import auth_headers, check, heartbeating, new_client, send, within_attempt
from activities.outbox import Outbox, record_to_outbox
from settings import Settings
from workflows.contracts.activity_io import RecordWrite, RecordWritten

PEER = "servicenow"
# Severity -> impact and urgency (1 high, 2 medium, 3 low); ServiceNow derives the priority from both.
IMPACT_URGENCY = {"SEV1": ("1", "1"), "SEV2": ("1", "2"), "SEV3": ("2", "2"), "SEV4": ("3", "3")}
STATE = {"open": "2", "resolved": "6", "closed": "7"}  # In Progress, Resolved, Closed
PAGE = 100


class ServiceNowActivities:
    def __init__(self, settings: Settings, outbox: Outbox) -> None:
        self.outbox = outbox
        self.base = (settings.servicenow_url or "").rstrip("/")
        self.client: httpx.AsyncClient | None = None
        if settings.servicenow_url and settings.servicenow_password is not None:
            headers = auth_headers(settings.servicenow_username, settings.servicenow_password.get_secret_value())
            self.client = new_client(settings.servicenow_url, headers | {"Accept": "application/json"})

    async def servicenow_write_record(self, write: RecordWrite) -> RecordWritten:
        if self.client is None:
            return await record_to_outbox(self.outbox, PEER, write)
        table = f"/api/now/table/{quote(write.records.table, safe='')}"
        async with within_attempt(PEER), heartbeating():
            sys_id = write.record_id or await self._find(self.client, table, write.key)
            if not sys_id:
                created = await self._call(self.client, "POST", table, self._row(write) | dict(write.records.fields))
                sys_id = str((created or {}).get("sys_id", ""))
                if not sys_id:
                    raise ApplicationError("servicenow inserted a row but named none", type="servicenow:unexpected")
            row = f"{table}/{quote(sys_id, safe='')}"
            await self._call(self.client, "PATCH", row, self._row(write))
            retried = activity.info().attempt > 1 or write.unsure
            there = await self._markers(self.client, sys_id, write.key) if retried else set()
            for entry in write.entries:  # one PATCH per note: each its own journal entry, in order
                if entry.marker(write.key) not in there:
                    await self._call(self.client, "PATCH", row, {"work_notes": entry.line(write.key)})
        return RecordWritten(
            record_id=sys_id, url=f"{self.base}/nav_to.do?uri={write.records.table}.do?sys_id={sys_id}"
        )

    def _row(self, write: RecordWrite) -> dict[str, str]:
        fields = write.fields
        impact, urgency = IMPACT_URGENCY.get(fields.get("severity", ""), ("2", "2"))
        row = {
            "short_description": fields.get("title", write.incident_id)[:160],
            "description": "\n".join(f"{name}: {value}" for name, value in fields.items() if value),
            "correlation_id": write.key,
            "correlation_display": write.incident_id,
            "impact": impact,
            "urgency": urgency,
            "state": STATE.get(fields.get("status", ""), "2"),
        }
        if write.assignee_account:
            row["assigned_to"] = write.assignee_account
        if fields.get("status") in ("resolved", "closed"):
            row["close_code"] = "Solved (Permanently)"
            row["close_notes"] = fields.get("how_resolved", "") or "Resolved"
        return row

    async def _call(self, client: httpx.AsyncClient, method: str, path: str, body: Any = None) -> Any:
        response = await send(client, PEER, method, path, json=body)
        check(response, PEER)
        answer = response.json() if response.content else {}
        return answer.get("result") if isinstance(answer, dict) else None

    async def _find(self, client: httpx.AsyncClient, table: str, key: str) -> str:
        query = {"sysparm_query": f"correlation_id={key}", "sysparm_fields": "sys_id", "sysparm_limit": "1"}
        response = await send(client, PEER, "GET", table, params=query)
        check(response, PEER)
        rows = (response.json() or {}).get("result") or []
        return str(rows[0]["sys_id"]) if rows else ""

    async def _markers(self, client: httpx.AsyncClient, sys_id: str, key: str) -> set[str]:
        there: set[str] = set()
        prefix = f"[{key}#"
        offset = 0
        while True:
            query = {
                "sysparm_query": f"element_id={sys_id}^element=work_notes",
                "sysparm_fields": "value",
                "sysparm_limit": str(PAGE),
                "sysparm_offset": str(offset),
            }
            response = await send(client, PEER, "GET", "/api/now/table/sys_journal_field", params=query)
            check(response, PEER)
            rows = (response.json() or {}).get("result") or []
            for row in rows:
                value = str(row.get("value", ""))
                at = value.rfind(prefix)
                if at >= 0:
                    there.add(value[at:].split("]", 1)[0] + "]")
            offset += len(rows)
            if len(rows) < PAGE:
                return there
