"""Prometheus metrics of the HTTP service, in a registry per app so that apps (and tests) never share
counters. Each replica counts only what it saw; Prometheus sums the replicas.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from temporalio.client import Client

from workflows.model import Severity


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
        self.open_incidents = Gauge(
            "incident_open",
            "Open incidents by severity, from Temporal's visibility store at scrape time (the same on every "
            "replica: aggregate with max, not sum)",
            ["severity", "acknowledged"],
            registry=self.registry,
        )

    async def count_open_incidents(self, client: Client) -> None:
        """Read open incidents from visibility, the one record every replica shares."""
        for severity in Severity:
            for acknowledged in (True, False):
                query = (f'WorkflowType="IncidentWorkflow" AND IncidentStatus="open" AND '
                         f'IncidentSeverity="{severity.value}" AND IncidentAcknowledged={str(acknowledged).lower()}')
                count = await client.count_workflows(query)
                self.open_incidents.labels(severity.value, str(acknowledged).lower()).set(count.count)
