"""Prometheus metrics of the HTTP service, in a registry per app so that apps (and tests) never share
counters. Each replica counts only what it saw; Prometheus sums the replicas.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram


class HttpMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.alerts = Counter(
            "incident_http_alerts",
            "Alerts received, by source and outcome (accepted, invalid, unauthorized, unavailable)",
            ["source", "outcome"],
            registry=self.registry,
        )
        self.dedup_hits = Counter(
            "incident_http_alert_dedup_hits",
            "Accepted alerts that went to an incident that was already open",
            ["source"],
            registry=self.registry,
        )
        self.incidents_opened = Counter(
            "incident_http_incidents_opened",
            "Incidents an alert opened (its signal-with-start started the workflow)",
            ["source"],
            registry=self.registry,
        )
        self.slack = Counter(
            "incident_http_slack_requests",
            "Slack requests, by kind (interaction, command) and outcome",
            ["kind", "outcome"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "incident_http_request_seconds",
            "Time to answer a request, by route template",
            ["route", "method", "status"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
