"""Prometheus metrics of the HTTP service, in a registry per app so that apps (and tests) never share
counters. Each replica counts only what it saw; Prometheus sums the replicas.
"""

from __future__ import annotations

import asyncio
import math
import time
from typing import TYPE_CHECKING

from workflows.contracts.temporal import search_attributes as sa
from workflows.contracts.temporal.ids import INCIDENT_WORKFLOW
from workflows.contracts.vocabulary import Severity

if TYPE_CHECKING:
    from temporalio.client import Client


def incidents_query(*clauses: str) -> str:
    """A visibility query for incidents, one row each (`incidentctl list` and the open-incident gauge):
    the runs an incident continued as new from are the same incident, so only its latest run counts."""
    return " AND ".join((f'WorkflowType="{INCIDENT_WORKFLOW}"', 'ExecutionStatus!="ContinuedAsNew"', *clauses))


class HttpMetrics:
    def __init__(self, gauge_seconds: float = 0) -> None:
        # Here, not at the top: incidentctl imports this module for incidents_query and needs no Prometheus.
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

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
        self.teams = Counter(
            "incident_http_teams_requests",
            "Teams requests, by kind (card, command) and outcome",
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
        self.open_incidents_read_at = Gauge(
            "incident_open_read_at_seconds",
            "When incident_open was last read from Temporal's visibility store (Unix time)",
            registry=self.registry,
        )
        # Eight visibility queries per read: a scrape reads them only when the last read is older than this,
        # and concurrent scrapes share one read.
        self._gauge_seconds = gauge_seconds
        self._read_at = -math.inf
        self._reading = asyncio.Lock()

    async def count_open_incidents(self, client: Client) -> None:
        """Read open incidents from visibility, the one record every replica shares, unless read lately."""
        async with self._reading:
            if time.monotonic() - self._read_at < self._gauge_seconds:
                return
            await self._count(client)
            self._read_at = time.monotonic()
            self.open_incidents_read_at.set_to_current_time()

    async def _count(self, client: Client) -> None:
        for severity in Severity:
            for acknowledged in (True, False):
                count = await client.count_workflows(
                    incidents_query(
                        f'{sa.STATUS.name}="open"',
                        f'{sa.SEVERITY.name}="{severity.value}"',
                        f"{sa.ACKNOWLEDGED.name}={str(acknowledged).lower()}",
                    )
                )
                self.open_incidents.labels(severity.value, str(acknowledged).lower()).set(count.count)
