"""The Temporal worker: every workflow and every activity of the orchestrator, on one task queue.

Run more of these processes for more capacity; they share nothing but Temporal.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker

import observability
from activities.conference import ConferenceActivities
from activities.email import EmailActivities
from activities.outbox import Outbox
from activities.paging import PagingActivities
from activities.records import RecordsActivities
from activities.slack import SlackActivities
from activities.statements import StatementActivities
from activities.statuspage import StatuspageActivities
from activities.telegram import TelegramActivities
from settings import Settings, connect
from workflows.comms import CommsWorkflow
from workflows.escalation import EscalationWorkflow
from workflows.incident import IncidentWorkflow

WORKFLOWS: list[type] = [IncidentWorkflow, EscalationWorkflow, CommsWorkflow]

log = logging.getLogger("worker")


def build_activities(settings: Settings) -> list[Any]:
    """Every activity, bound to clients built once from settings."""
    outbox = Outbox(settings.outbox_path)
    adapters = [
        SlackActivities(settings, outbox),
        PagingActivities(settings, outbox),
        EmailActivities(settings, outbox),
        TelegramActivities(settings, outbox),
        StatuspageActivities(settings, outbox),
        ConferenceActivities(settings, outbox),
        RecordsActivities(settings),
        StatementActivities(),
    ]
    return [
        getattr(adapter, name)
        for adapter in adapters
        for name in dir(adapter)
        if hasattr(getattr(adapter, name), "__temporal_activity_definition")
    ]


def build_worker(client: Client, settings: Settings, task_queue: str | None = None) -> Worker:
    return Worker(
        client,
        task_queue=task_queue or settings.incident_task_queue,
        workflows=WORKFLOWS,
        activities=build_activities(settings),
    )


async def run(settings: Settings) -> None:
    client = await connect(settings, runtime=observability.worker_runtime(settings))
    worker = build_worker(client, settings)
    log.info("worker polling task queue %s on %s", settings.incident_task_queue, settings.temporal_address)
    await worker.run()


def main() -> None:
    settings = Settings()
    observability.configure_logging(settings)
    try:
        asyncio.run(run(settings))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
