"""Alerts into incidents: one parser per webhook source turning a whole body into AlertEvents, and
`send_alert`, the start (or signal-with-start) every way in (webhook, Slack, CLI) uses to record one.

A parser validates the entire body before anything is sent, so a bad body starts nothing: it raises
AlertBodyError naming the field, which the HTTP service answers with 422. Alert text stays data.

Severity: a source's own unambiguous severity (Datadog's P1, a `severity="SEV2"` label) is mapped
here; anything else ("critical", "warning") stays in the labels for the policy's severity rules,
which the workflow applies together with the critical-criterion label.

Senders (the dedup key chooses the incident: one group, one incident):

- Alertmanager: a webhook receiver at /alerts/alertmanager (payload version 4). Dedup key: groupKey;
  each alert of the body is recorded with its fingerprint and status.
- Grafana unified alerting: a webhook contact point at /alerts/grafana. Same shape and dedup key.
- Datadog: Integrations -> Webhooks, URL /alerts/datadog, with this payload (examples/datadog.json);
  Datadog fills in the variables:

      {
        "alert_id": "$ALERT_ID",
        "transition": "$ALERT_TRANSITION",
        "aggregation_key": "$AGGREG_KEY",
        "alert_cycle_key": "$ALERT_CYCLE_KEY",
        "priority": "$PRIORITY",
        "title": "$EVENT_TITLE",
        "message": "$EVENT_MSG",
        "link": "$LINK",
        "tags": "$TAGS"
      }

  Dedup key: the aggregation key, else the alert id. "Recovered" resolves the alert (fingerprint:
  the alert cycle key, else the alert id); P1-P5 map to SEV1-SEV4 (P5 too is SEV4); a `service:NAME`
  tag names the service; every tag becomes a label.
- Anything else: /alerts/generic with {"dedup_key", "title", "severity", "service", "status"
  ("firing" | "resolved"), "description", "links": [...], "labels": {...}, "fingerprint"}; only
  dedup_key and title are required (examples/generic.json).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from temporalio.api.common.v1 import Memo, Payloads, WorkflowType
from temporalio.api.common.v1 import Priority as PriorityProto
from temporalio.api.enums.v1 import WorkflowIdConflictPolicy
from temporalio.api.sdk.v1 import UserMetadata
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import SignalWithStartWorkflowExecutionRequest, StartWorkflowExecutionRequest
from temporalio.client import Client
from temporalio.converter import WorkflowSerializationContext
from temporalio.service import RPCError, RPCStatusCode

from settings import Settings, describe_validation_error
from workflows.incident import IncidentWorkflow
from workflows.inputs import IncidentInput
from workflows.model import AlertEvent
from workflows.policy import Policy
from workflows.priority import INCIDENT_KEY
from workflows.vocabulary import AlertStatus, Severity, incident_id_for

M = TypeVar("M", bound=BaseModel)

# One attempt's budget; the HTTP service bounds the whole request separately.
SEND_TIMEOUT = timedelta(seconds=5)
# The workflow type: @workflow.defn without a name registers a workflow under its class's name.
INCIDENT_WORKFLOW = IncidentWorkflow.__name__


class AlertBodyError(ValueError):
    """A body of the wrong shape; the message names the field ("alerts.0.labels: ...")."""


_OBVIOUS_SEVERITIES = {
    "sev1": Severity.SEV1,
    "sev2": Severity.SEV2,
    "sev3": Severity.SEV3,
    "sev4": Severity.SEV4,
    "p1": Severity.SEV1,
    "p2": Severity.SEV2,
    "p3": Severity.SEV3,
    "p4": Severity.SEV4,
    "p5": Severity.SEV4,
}


def obvious_severity(value: str | None) -> Severity | None:
    """SEV1-4 and P1-P5 mean the same everywhere; other words are the policy's to interpret."""
    return _OBVIOUS_SEVERITIES.get((value or "").strip().lower())


def _fingerprint(labels: dict[str, str]) -> str:
    """Alertmanager's fingerprint is a hash of the labels; do the same when a sender leaves it out."""
    return hashlib.sha256(json.dumps(labels, sort_keys=True).encode()).hexdigest()[:16]


def _links(*candidates: str) -> list[str]:
    seen: list[str] = []
    for link in candidates:
        if link and link not in seen:
            seen.append(link)
    return seen


class _Body(BaseModel):
    """Senders add fields over time (Grafana especially): ignore what we do not use."""

    model_config = ConfigDict(extra="ignore")


# --- Alertmanager (webhook version 4) and Grafana unified alerting ------------------------------


class PrometheusAlert(_Body):
    status: Literal["firing", "resolved"]
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    startsAt: datetime | None = None
    endsAt: datetime | None = None
    generatorURL: str = ""
    fingerprint: str = ""
    # Grafana only
    dashboardURL: str = ""
    panelURL: str = ""


class AlertmanagerBody(_Body):
    version: str = "4"
    groupKey: str = Field(min_length=1)
    status: Literal["firing", "resolved"] = "firing"
    receiver: str = ""
    groupLabels: dict[str, str] = Field(default_factory=dict)
    commonLabels: dict[str, str] = Field(default_factory=dict)
    commonAnnotations: dict[str, str] = Field(default_factory=dict)
    externalURL: str = ""
    alerts: list[PrometheusAlert] = Field(min_length=1)


class GrafanaBody(AlertmanagerBody):
    title: str = ""
    state: str = ""
    message: str = ""
    orgId: int | None = None


def _prometheus_events(source: str, body: AlertmanagerBody, now: datetime) -> list[AlertEvent]:
    fallback_title = body.title if isinstance(body, GrafanaBody) else ""
    events = []
    for alert in body.alerts:
        labels = {**body.commonLabels, **alert.labels}
        annotations = {**body.commonAnnotations, **alert.annotations}
        events.append(
            AlertEvent(
                source=source,
                dedup_key=body.groupKey,
                fingerprint=alert.fingerprint or _fingerprint(labels),
                status=AlertStatus(alert.status),
                title=(
                    annotations.get("summary")
                    or annotations.get("title")
                    or labels.get("alertname")
                    or fallback_title
                    or body.groupKey
                ),
                description=annotations.get("description") or annotations.get("message", ""),
                severity=obvious_severity(labels.get("severity")),
                service=labels.get("service", ""),
                labels=labels,
                links=_links(
                    alert.generatorURL, annotations.get("runbook_url", ""), alert.dashboardURL, alert.panelURL
                ),
                received_at=now,
            )
        )
    return events


def parse_alertmanager(body: Any, now: datetime) -> list[AlertEvent]:
    return _prometheus_events("alertmanager", _validate(AlertmanagerBody, body), now)


def parse_grafana(body: Any, now: datetime) -> list[AlertEvent]:
    return _prometheus_events("grafana", _validate(GrafanaBody, body), now)


# --- Datadog --------------------------------------------------------------------------------------


class DatadogBody(_Body):
    """The Datadog webhook payload of examples/datadog.json (see the module docstring)."""

    # Datadog substitutes numbers into quoted strings, but a hand-written payload may not quote them.
    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)

    alert_id: str = Field(min_length=1)
    transition: str = Field(min_length=1)
    aggregation_key: str = ""
    alert_cycle_key: str = ""
    priority: str = ""
    title: str = Field(min_length=1)
    message: str = ""
    link: str = ""
    tags: str = ""


def _datadog_tags(tags: str) -> dict[str, str]:
    """ "env:prod,service:checkout,team" -> {"env": "prod", "service": "checkout", "team": ""}."""
    parsed: dict[str, str] = {}
    for tag in tags.split(","):
        name, _, value = tag.strip().partition(":")
        if name:
            parsed[name] = value
    return parsed


def parse_datadog(body: Any, now: datetime) -> list[AlertEvent]:
    alert = _validate(DatadogBody, body)
    labels = _datadog_tags(alert.tags)
    if alert.priority:
        labels["priority"] = alert.priority
    recovered = alert.transition.strip().lower() in ("recovered", "resolved")
    return [
        AlertEvent(
            source="datadog",
            dedup_key=alert.aggregation_key or alert.alert_id,
            fingerprint=alert.alert_cycle_key or alert.alert_id,
            status=AlertStatus.RESOLVED if recovered else AlertStatus.FIRING,
            title=alert.title,
            description=alert.message,
            severity=obvious_severity(alert.priority),
            service=labels.get("service", ""),
            labels=labels,
            links=_links(alert.link),
            received_at=now,
        )
    ]


# --- generic: anything that can send JSON ------------------------------------------------------


class GenericBody(_Body):
    dedup_key: str = Field(min_length=1)
    title: str = Field(min_length=1)
    severity: str = ""
    service: str = ""
    status: Literal["firing", "resolved"] = "firing"
    description: str = ""
    links: list[str] = Field(default_factory=list)
    labels: dict[str, str] = Field(default_factory=dict)
    fingerprint: str = ""


def parse_generic(body: Any, now: datetime) -> list[AlertEvent]:
    alert = _validate(GenericBody, body)
    labels = dict(alert.labels)
    if alert.severity:
        labels.setdefault("severity", alert.severity)
    return [
        AlertEvent(
            source="generic",
            dedup_key=alert.dedup_key,
            fingerprint=alert.fingerprint or alert.dedup_key,
            status=AlertStatus(alert.status),
            title=alert.title,
            description=alert.description,
            severity=obvious_severity(alert.severity),
            service=alert.service,
            labels=labels,
            links=_links(*alert.links),
            received_at=now,
        )
    ]


# --- dispatch ------------------------------------------------------------------------------------

PARSERS: dict[str, Callable[[Any, datetime], list[AlertEvent]]] = {
    "alertmanager": parse_alertmanager,
    "grafana": parse_grafana,
    "datadog": parse_datadog,
    "generic": parse_generic,
}


def _validate(model: type[M], body: Any) -> M:
    try:
        return model.model_validate(body)
    except ValidationError as err:
        raise AlertBodyError(describe_validation_error(err)) from err


# --- into incidents ------------------------------------------------------------------------------


def manual_alert(
    title: str,
    reporter: str,
    *,
    severity: Severity | None = None,
    service: str = "",
    description: str = "",
    now: datetime | None = None,
    dedup_key: str = "",
) -> AlertEvent:
    """A person declaring an incident: an alert of its own group, so it opens a new incident.

    `dedup_key` names the request (Slack's trigger_id) so that the same request twice is one incident.
    """
    return AlertEvent(
        source="manual",
        dedup_key=dedup_key or uuid.uuid4().hex,
        title=title,
        description=description,
        severity=severity,
        service=service,
        labels={"reported_by": reporter},
        received_at=now or datetime.now(UTC),
    )


def summary_line(event: AlertEvent) -> str:
    """The static summary the Temporal UI shows: title · service · source, on one line."""
    title = " ".join(event.title.split())[:200]
    return " · ".join(part for part in (title, event.service, event.source) if part)


async def send_alert(client: Client, settings: Settings, policy: Policy, event: AlertEvent) -> bool:
    """Record one alert on its incident; True when this alert opened the incident.

    A new group is started with the alert in its input, asking for eager start: where this process runs a
    worker on the task queue (the HTTP service does), the server hands the first workflow task straight to
    it, and that task's first command is the page, dispatched the same way (workflows/response.py). So the
    first page of a new incident waits in no queue on the server, however busy it is. Where the group's
    incident already runs, the start is refused and the alert goes by signal-with-start, which is atomic on
    the server: however many replicas race on one group, one workflow runs and every alert lands on it.
    """
    incident_id = incident_id_for(event.source, event.dedup_key)
    converter = client.data_converter.with_context(
        WorkflowSerializationContext(namespace=client.namespace, workflow_id=incident_id)
    )
    start = IncidentInput(incident_id=incident_id, policy=policy, ui_url=incident_url(settings, incident_id))
    opening = start.model_copy(update={"first_alert": event})
    opening_input, summary, title = await converter.encode([opening, summary_line(event), event.title])
    common: dict[str, Any] = dict(
        namespace=client.namespace,
        workflow_id=incident_id,
        workflow_type=WorkflowType(name=INCIDENT_WORKFLOW),
        task_queue=TaskQueue(name=settings.incident_task_queue),
        identity=client.identity,
        memo=Memo(fields={"title": title}),  # `incidentctl list` shows it: list results carry memo, not summary
        user_metadata=UserMetadata(summary=summary),  # the static summary of the Temporal UI
        priority=PriorityProto(priority_key=INCIDENT_KEY),  # workflows/priority.py
    )
    try:
        await client.workflow_service.start_workflow_execution(
            StartWorkflowExecutionRequest(
                **common,
                input=Payloads(payloads=[opening_input]),
                request_id=str(uuid.uuid4()),  # the server's deduplication of this call's own retries
                request_eager_execution=True,
                workflow_id_conflict_policy=WorkflowIdConflictPolicy.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
            ),
            retry=True,
            timeout=SEND_TIMEOUT,
        )
        return True
    except RPCError as err:
        if err.status != RPCStatusCode.ALREADY_EXISTS:
            raise
    start_input, alert = await converter.encode([start, event])  # only now: most alerts open their incident
    answer = await client.workflow_service.signal_with_start_workflow_execution(
        SignalWithStartWorkflowExecutionRequest(
            **common,
            input=Payloads(payloads=[start_input]),
            signal_name="alert",
            signal_input=Payloads(payloads=[alert]),
            request_id=str(uuid.uuid4()),
        ),
        retry=True,
        timeout=SEND_TIMEOUT,
    )
    return answer.started


def incident_url(settings: Settings, incident_id: str) -> str:
    base = settings.temporal_ui_url.rstrip("/")
    return f"{base}/namespaces/{settings.temporal_namespace}/workflows/{incident_id}"
