"""Records kept as files: the project and global incident logs, and postmortem drafts.

Files under a configurable directory are the default store (seed 002 keeps an Incident Log file per
project and one for all projects; seed 001 calls its log ORMIS). Each entry carries an idempotency key
so an activity retry never writes it twice.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from jinja2 import FileSystemLoader, StrictUndefined
from jinja2.sandbox import SandboxedEnvironment
from temporalio import activity

from settings import ROOT, Settings
from workflows.contracts.activity_io import IncidentLogEntry, PostmortemRequest, RecordResult
from workflows.oncall.rotation import zone as tz

TEMPLATES = ROOT / "templates"


def safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "unnamed"


class RecordsActivities:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.templates = SandboxedEnvironment(
            loader=FileSystemLoader(TEMPLATES),
            undefined=StrictUndefined,
            autoescape=False,
            keep_trailing_newline=True,
        )

    def _dir(self, override: str) -> Path:
        return Path(override) if override else self.settings.incident_log_dir

    @activity.defn
    async def append_incident_log(self, entry: IncidentLogEntry) -> RecordResult:
        base = self._dir(entry.log_dir)
        path = base / (
            "global-incident-log.md"
            if entry.log == "global"
            else f"projects/{safe_name(entry.project)}-incident-log.md"
        )
        marker = f"<!-- {entry.idempotency_key} -->"
        lines = [f"## {entry.incident_id}: {one_line(entry.title)} {marker}", ""]
        lines += [f"- **{name}**: {one_line(value)}" for name, value in entry.fields.items()]
        await asyncio.to_thread(_append_once, path, marker, "\n".join(lines) + "\n\n")
        return RecordResult(location=str(path))

    @activity.defn
    async def write_postmortem(self, request: PostmortemRequest) -> RecordResult:
        zone = tz(request.timezone)
        timeline = [(entry.at.astimezone(zone), entry) for entry in request.timeline]
        text = self.templates.get_template("postmortem.md.j2").render(
            incident=request, sections=request.sections, timeline=timeline, zone=request.timezone
        )
        opened = f"-{request.opened_at:%Y%m%d-%H%M}" if request.opened_at else ""
        path = self._dir(request.log_dir) / "postmortems" / f"{safe_name(request.incident_id)}{opened}.md"
        await asyncio.to_thread(_write, path, text)
        return RecordResult(location=str(path))


def one_line(text: str) -> str:
    """Alert text stays inside its entry: no line breaks that could forge a header or a marker."""
    return " ".join(text.split())


def _append_once(path: Path, marker: str, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Only a header line ends with a marker: a title that quotes one cannot suppress a later entry.
    if path.exists() and any(
        line.startswith("## ") and line.endswith(marker) for line in path.read_text(encoding="utf-8").splitlines()
    ):
        return
    with path.open("a", encoding="utf-8") as out:
        out.write(text)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
