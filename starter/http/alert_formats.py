"""The alert webhooks' formats: one parser per source turning a whole body into AlertEvents, which
`client.alerts.send_alert` records on their incidents.

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
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from settings import describe_validation_error
from workflows.contracts import limits
from workflows.contracts.vocabulary import AlertStatus, Severity
from workflows.incident.model import AlertEvent

M = TypeVar("M", bound=BaseModel)


class AlertBodyError(ValueError):
    """A body of the wrong shape; the message names the field ("alerts.0.labels: ...")."""


# Every field is bounded (workflows/contracts/limits.py): a field over its limit refuses the body, naming it.


def _text(limit: limits.Limit) -> AfterValidator:
    def check(value: str) -> str:
        if problem := limits.over(value, limit):
            raise ValueError(problem)
        return value

    return AfterValidator(check)


def _map(limit: limits.Limit) -> AfterValidator:
    def check(value: dict[str, str]) -> dict[str, str]:
        if problem := limits.map_over(value, limit):
            raise ValueError(problem)
        return value

    return AfterValidator(check)


def _links_at_most(value: list[str]) -> list[str]:
    if len(value) > limits.LINKS.entries:
        raise ValueError(f"{len(value)} links, over the limit of {limits.LINKS.entries}")
    for i, link in enumerate(value):
        if problem := limits.over(link, limits.LINK):
            raise ValueError(f"link {i}: {problem}")
    return value


# What the OpenAPI description of /alerts/{source} says (the README has the same table).
LIMITS_DESCRIBED = (
    "Each field is bounded in UTF-8 bytes; a field over its limit is refused with 422 naming it. "
    f"Title {limits.TITLE.value_bytes}; description {limits.DESCRIPTION.value_bytes}; "
    f"service {limits.SERVICE.value_bytes}; dedup key {limits.DEDUP_KEY.value_bytes}; "
    f"fingerprint {limits.FINGERPRINT.value_bytes}; severity and status words {limits.WORD.value_bytes}; "
    f"links {limits.LINKS.entries} of {limits.LINK.value_bytes}; labels {limits.LABELS.entries}, key "
    f"{limits.LABELS.key_bytes}, value {limits.LABELS.value_bytes}; annotations {limits.ANNOTATIONS.entries}, key "
    f"{limits.ANNOTATIONS.key_bytes}, value {limits.ANNOTATIONS.value_bytes}; Datadog tags "
    f"{limits.DATADOG_TAGS.value_bytes}."
)

Title = Annotated[str, _text(limits.TITLE)]
Description = Annotated[str, _text(limits.DESCRIPTION)]
Service = Annotated[str, _text(limits.SERVICE)]
DedupKey = Annotated[str, _text(limits.DEDUP_KEY)]
Fingerprint = Annotated[str, _text(limits.FINGERPRINT)]
Word = Annotated[str, _text(limits.WORD)]
Link = Annotated[str, _text(limits.LINK)]
Links = Annotated[list[str], AfterValidator(_links_at_most)]
Labels = Annotated[dict[str, str], _map(limits.LABELS)]
Annotations = Annotated[dict[str, str], _map(limits.ANNOTATIONS)]


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
    labels: Labels = Field(default_factory=dict)
    annotations: Annotations = Field(default_factory=dict)
    startsAt: datetime | None = None
    endsAt: datetime | None = None
    generatorURL: Link = ""
    fingerprint: Fingerprint = ""
    # Grafana only
    dashboardURL: Link = ""
    panelURL: Link = ""


class AlertmanagerBody(_Body):
    version: Word = "4"
    groupKey: DedupKey = Field(min_length=1)
    status: Literal["firing", "resolved"] = "firing"
    receiver: Title = ""
    groupLabels: Labels = Field(default_factory=dict)
    commonLabels: Labels = Field(default_factory=dict)
    # What every alert of the group has in its own annotations: read for the title only, never copied
    # into each alert (a group of thousands would multiply it by thousands).
    commonAnnotations: Annotations = Field(default_factory=dict)
    externalURL: Link = ""
    alerts: list[PrometheusAlert] = Field(min_length=1)


class GrafanaBody(AlertmanagerBody):
    title: Title = ""
    state: Word = ""
    message: Description = ""
    orgId: int | None = None


def _prometheus_events(source: str, body: AlertmanagerBody, now: datetime) -> list[AlertEvent]:
    fallback_title = body.title if isinstance(body, GrafanaBody) else ""
    events = []
    for alert in body.alerts:
        labels = {**body.commonLabels, **alert.labels}
        annotations = alert.annotations

        def shared(key: str, own: dict[str, str] = annotations) -> str:
            """A short annotation of the alert's own, else the group's (the title, the runbook link)."""
            return own.get(key) or body.commonAnnotations.get(key, "")

        events.append(
            AlertEvent(
                source=source,
                dedup_key=body.groupKey,
                fingerprint=alert.fingerprint or _fingerprint(labels),
                status=AlertStatus(alert.status),
                title=(
                    shared("summary") or shared("title") or labels.get("alertname") or fallback_title or body.groupKey
                ),
                description=annotations.get("description") or annotations.get("message", ""),
                severity=obvious_severity(labels.get("severity")),
                service=labels.get("service", ""),
                labels=labels,
                links=_links(alert.generatorURL, shared("runbook_url"), alert.dashboardURL, alert.panelURL),
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

    alert_id: Fingerprint = Field(min_length=1)
    transition: Word = Field(min_length=1)
    aggregation_key: DedupKey = ""
    alert_cycle_key: Fingerprint = ""
    priority: Word = ""
    title: Title = Field(min_length=1)
    message: Description = ""
    link: Link = ""
    tags: Annotated[str, _text(limits.DATADOG_TAGS)] = ""


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
    if problem := limits.map_over(labels, limits.LABELS):
        raise AlertBodyError(f"tags: {problem}")
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
    dedup_key: DedupKey = Field(min_length=1)
    title: Title = Field(min_length=1)
    severity: Word = ""
    service: Service = ""
    status: Literal["firing", "resolved"] = "firing"
    description: Description = ""
    links: Links = Field(default_factory=list)
    labels: Labels = Field(default_factory=dict)
    fingerprint: Fingerprint = ""


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
