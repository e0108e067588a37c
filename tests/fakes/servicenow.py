"""A fake ServiceNow Table API: the incident table (correlation_id queries, insert, PATCH with work notes into
the journal) and sys_journal_field, with sysparm_limit/sysparm_offset paging and Basic auth."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import SecretStr

from settings import Settings
from tests.fakes.peer import FakePeer, basic_auth, params

USER = "incident.bot"
PASSWORD = "servicenow-test-password"
STATES = {"1", "2", "3", "6", "7", "8"}


class FakeServiceNow(FakePeer):
    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, dict[str, Any]] = {}
        self.journal: list[dict[str, str]] = []  # sys_journal_field, oldest first
        self.app.router.add_get("/api/now/table/incident", self._query)
        self.app.router.add_post("/api/now/table/incident", self._insert)
        self.app.router.add_patch("/api/now/table/incident/{sys_id}", self._update)
        self.app.router.add_get("/api/now/table/sys_journal_field", self._journal)

    def configure(self, settings: Settings) -> Settings:
        return settings.model_copy(
            update={
                "servicenow_url": self.url,
                "servicenow_username": USER,
                "servicenow_password": SecretStr(PASSWORD),
            }
        )

    def work_notes(self, sys_id: str) -> list[str]:
        return [j["value"] for j in self.journal if j["element_id"] == sys_id and j["element"] == "work_notes"]

    def _refused(self, request: web.Request) -> web.Response | None:
        expected = basic_auth(USER, PASSWORD)
        if request.headers.get("Authorization") != expected:
            return web.json_response(
                {
                    "error": {"message": "User Not Authenticated", "detail": "Required to provide Auth information"},
                    "status": "failure",
                },
                status=401,
            )
        return None

    def _write(self, row: dict[str, Any], fields: dict[str, Any]) -> web.Response | None:
        if "state" in fields and str(fields["state"]) not in STATES:
            return web.json_response({"error": {"message": "Invalid state"}, "status": "failure"}, status=400)
        if str(fields.get("state")) == "6" and not (fields.get("close_code") or row.get("close_code")):
            return web.json_response(
                {
                    "error": {"message": "Data Policy Exception", "detail": "Resolution code is mandatory"},
                    "status": "failure",
                },
                status=403,
            )
        note = fields.pop("work_notes", "")
        row |= {k: str(v) for k, v in fields.items()}
        if note:
            self.journal.append({"element_id": row["sys_id"], "element": "work_notes", "value": str(note)})
        return None

    async def _query(self, request: web.Request) -> web.Response:
        if refused := self._refused(request):
            return refused
        query = request.query.get("sysparm_query", "")
        rows = list(self.rows.values())
        if query.startswith("correlation_id="):
            rows = [r for r in rows if r.get("correlation_id") == query.removeprefix("correlation_id=")]
        offset, limit = int(request.query.get("sysparm_offset", 0)), int(request.query.get("sysparm_limit", 10000))
        return web.json_response({"result": rows[offset : offset + limit]}, headers={"X-Total-Count": str(len(rows))})

    async def _insert(self, request: web.Request) -> web.Response:
        if refused := self._refused(request):
            return refused
        number = next(self._ids)
        row: dict[str, Any] = {"sys_id": f"{number:032x}", "number": f"INC{number:07d}", "state": "1"}
        if failed := self._write(row, dict(params(request))):
            return failed
        self.rows[row["sys_id"]] = row
        return web.json_response({"result": row}, status=201)

    async def _update(self, request: web.Request) -> web.Response:
        if refused := self._refused(request):
            return refused
        row = self.rows.get(request.match_info["sys_id"])
        if row is None:
            return web.json_response(
                {"error": {"message": "No Record found", "detail": "Record doesn't exist"}, "status": "failure"},
                status=404,
            )
        if failed := self._write(row, dict(params(request))):
            return failed
        return web.json_response({"result": row})

    async def _journal(self, request: web.Request) -> web.Response:
        if refused := self._refused(request):
            return refused
        conditions = dict(part.split("=", 1) for part in request.query.get("sysparm_query", "").split("^") if part)
        rows = [j for j in self.journal if all(j.get(k) == v for k, v in conditions.items())]
        offset, limit = int(request.query.get("sysparm_offset", 0)), int(request.query.get("sysparm_limit", 10000))
        return web.json_response({"result": rows[offset : offset + limit]}, headers={"X-Total-Count": str(len(rows))})
