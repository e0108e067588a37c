"""Logging and worker metrics for every process: JSON lines or text, tagged with the incident, scrubbed of
secrets; the SDK's Prometheus metrics on the worker's metrics port.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

from temporalio import activity, workflow
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from settings import Settings

REDACTED = "[REDACTED]"

# Each pattern keeps what names the secret (group 1) and replaces the secret itself.
_SECRET_PATTERNS = [
    re.compile(r"()\bxox[a-z]-[A-Za-z0-9-]{8,}"),  # Slack bot/user/app-level tokens
    re.compile(r"()\bxapp-\d-[A-Za-z0-9-]{8,}"),  # Slack app tokens
    re.compile(r"(\bbot)\d+:[A-Za-z0-9_-]{8,}"),  # Telegram: https://api.telegram.org/bot<id>:<token>/...
    re.compile(r"(\b(?:Bearer|Basic|GenieKey|OAuth)\s+)[A-Za-z0-9._~+/=-]{8,}", re.IGNORECASE),
    re.compile(
        r"(\b[\w-]*?(?:api[_-]?key|routing[_-]?key|token|secret|password|passwd)[\"']?\s*[=:]\s*[\"']?)"
        r"[^\s&\"',}]{4,}",
        re.IGNORECASE,
    ),
]

# Every workflow id of an incident starts with the incident id (the IncidentWorkflow's own id).
_INCIDENT_ID = re.compile(r"^INC-[A-Z0-9]+")

CONTEXT_FIELDS = ("incident_id", "workflow_id", "run_id", "workflow_type", "activity", "attempt")


def redact(text: str) -> str:
    """`text` with anything that looks like a token, key or password replaced by [REDACTED]."""
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + REDACTED, text)
    return text


class RedactSecrets(logging.Filter):
    """Scrubs the rendered message and the traceback; an HTTP error's URL may carry a bot token."""

    _exc_formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._exc_formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


class TemporalContext(logging.Filter):
    """Flat fields for the incident, workflow and activity a record was logged from.

    The SDK's `activity.logger` / `workflow.logger` put a `temporal_activity` / `temporal_workflow`
    dict on the record; plain loggers called inside an activity or workflow get the same from `info()`.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        fields: dict[str, Any] = {}
        details = getattr(record, "temporal_activity", None) or _current_activity()
        if details:
            fields = {
                "workflow_id": details.get("workflow_id"),
                "run_id": details.get("workflow_run_id"),
                "workflow_type": details.get("workflow_type"),
                "activity": details.get("activity_type"),
                "attempt": details.get("attempt"),
            }
        else:
            details = getattr(record, "temporal_workflow", None) or _current_workflow()
            if details:
                fields = {
                    "workflow_id": details.get("workflow_id"),
                    "run_id": details.get("run_id"),
                    "workflow_type": details.get("workflow_type"),
                    "attempt": details.get("attempt"),
                }
        for name in CONTEXT_FIELDS:  # a caller's explicit `extra=` wins
            if getattr(record, name, None) is None:
                setattr(record, name, fields.get(name))
        workflow_id = getattr(record, "workflow_id", None)
        if getattr(record, "incident_id", None) is None and workflow_id:
            match = _INCIDENT_ID.match(workflow_id)
            record.incident_id = match.group(0) if match else None
        return True


def _current_activity() -> dict[str, Any] | None:
    if not activity.in_activity():
        return None
    info = activity.info()
    return {
        "workflow_id": info.workflow_id,
        "workflow_run_id": info.workflow_run_id,
        "workflow_type": info.workflow_type,
        "activity_type": info.activity_type,
        "attempt": info.attempt,
    }


def _current_workflow() -> dict[str, Any] | None:
    if not workflow.in_workflow():
        return None
    info = workflow.info()
    return {
        "workflow_id": info.workflow_id,
        "run_id": info.run_id,
        "workflow_type": info.workflow_type,
        "attempt": info.attempt,
    }


class JsonFormatter(logging.Formatter):
    """One JSON object per line; context fields appear only when known."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exception"] = record.exc_text
        return json.dumps(line, default=str)


class TextFormatter(logging.Formatter):
    """`time level logger [incident workflow activity] message`, for a terminal."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s%(context)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        tags = [
            f"{label}={value}"
            for label, value in (
                ("incident", getattr(record, "incident_id", None)),
                ("workflow", getattr(record, "workflow_id", None)),
                ("activity", getattr(record, "activity", None)),
            )
            if value
        ]
        record.context = f" [{' '.join(tags)}]" if tags else ""
        return super().format(record)


def configure_logging(settings: Settings) -> None:
    """Root logging for a process: one stderr handler that tags, redacts and formats every record."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(TemporalContext())
    handler.addFilter(RedactSecrets())
    handler.setFormatter(JsonFormatter() if settings.log_format == "json" else TextFormatter())
    logging.basicConfig(level=settings.log_level.upper(), handlers=[handler], force=True)
    # Our formatters render the Temporal context as fields; the SDK would also append it to the text.
    activity.logger.activity_info_on_message = False
    workflow.logger.workflow_info_on_message = False


def worker_runtime(settings: Settings) -> Runtime | None:
    """A Temporal runtime that serves the SDK's Prometheus metrics, when a metrics port is set."""
    if settings.metrics_port is None:
        return None
    bind = f"{settings.metrics_host}:{settings.metrics_port}"
    return Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=bind)))
