"""The Temporal worker: every workflow and every activity of the orchestrator, on one task queue.

Run more of these processes for more capacity; they share nothing but Temporal.
"""

from __future__ import annotations

import asyncio
import compileall
import logging
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio.client import Client
from temporalio.runtime import Runtime
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import UnsandboxedWorkflowRunner, Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

import observability
import workflows
from activities.chat.slack import SlackActivities
from activities.chat.teams import TeamsActivities
from activities.conference import ConferenceActivities
from activities.email import EmailActivities
from activities.http import HEARTBEAT_EVERY
from activities.oncall import OnCallActivities
from activities.outbox import Outbox
from activities.own_workflows import OwnWorkflowActivities
from activities.paging import telephony_providers
from activities.paging.ntfy import NtfyActivities
from activities.paging.providers import PagingActivities
from activities.paging.telephony import TelephonyActivities
from activities.records import RecordsActivities
from activities.registers.sync import RegisterActivities
from activities.statements import StatementActivities
from activities.statuspage import StatuspageActivities
from activities.telegram import TelegramActivities
from client.signing import public_keys
from own_policy import OwnPolicies, OwnPolicyInterceptor
from policy_file import PolicyError, load_policy
from settings import Settings, connect, free_temporal
from workflows.comms.workflow import CommsWorkflow
from workflows.contracts.policy import DIRECT, Policy
from workflows.contracts.trust import verify
from workflows.contracts.vocabulary import Channel
from workflows.escalation.ladder import EscalationWorkflow
from workflows.incident.workflow import IncidentWorkflow
from workflows.oncall.heartbeats import HeartbeatWorkflow
from workflows.oncall.overrides import ScheduleWorkflow
from workflows.oncall.silences import SilencesWorkflow
from workflows.records.writer import RecordWorkflow

WORKFLOWS: list[type] = [
    IncidentWorkflow,
    EscalationWorkflow,
    CommsWorkflow,
    ScheduleWorkflow,
    SilencesWorkflow,
    HeartbeatWorkflow,
    RecordWorkflow,
]

log = logging.getLogger("worker")

# Waiting for Temporal at start: the first retry soon, then less and less often.
FIRST_PAUSE = timedelta(seconds=1)
LAST_PAUSE = timedelta(seconds=30)


def build_activities(settings: Settings) -> list[Any]:
    """Every activity, bound to clients built once from settings."""
    outbox = Outbox(settings.outbox_path)
    slack, paging = SlackActivities(settings, outbox), PagingActivities(settings, outbox)
    records, oncall = RecordsActivities(settings), OnCallActivities(settings)
    telephony = TelephonyActivities(settings, outbox, telephony_providers(settings))
    teams, registers = TeamsActivities(settings, outbox), RegisterActivities(settings, outbox)
    own_workflows = OwnWorkflowActivities()
    return [
        slack.slack_ensure_channel,
        slack.slack_post,
        slack.slack_direct_message,
        slack.slack_archive_channel,
        teams.teams_ensure_channel,
        teams.teams_post,
        teams.teams_direct_message,
        teams.teams_archive_channel,
        paging.page_open,
        paging.page_acknowledge,
        paging.page_resolve,
        paging.page_note,
        EmailActivities(settings, outbox).send_email,
        TelegramActivities(settings, outbox).send_telegram,
        NtfyActivities(settings, outbox).send_push,
        telephony.send_sms,
        telephony.place_call,
        StatuspageActivities(settings, outbox).statuspage_upsert,
        ConferenceActivities(settings, outbox).conference_create,
        records.append_incident_log,
        records.write_postmortem,
        registers.sync_record,
        StatementActivities().render_statement,
        oncall.schedule_overrides,
        oncall.heartbeat_alert,
        oncall.heartbeat_declared,
        own_workflows.start_message_loop,
        own_workflows.start_record_writer,
    ]


def compile_workflows() -> None:
    """The sandbox runs each workflow's module afresh for every new workflow; without bytecode on disk
    (PYTHONDONTWRITEBYTECODE is set on our machines) it compiled the source every time too, 15 % of the
    worker in an alert storm. Write the bytecode once; a read-only install keeps what it has."""
    compileall.compile_dir(Path(workflows.__file__).parent, quiet=2)


class NoDecisionKeys(RuntimeError):
    """The worker would refuse every decision: it is not started."""


def trust_decision_keys(settings: Settings) -> None:
    """Trust the keys in DECISION_KEYS (workflows/contracts/trust/verify.py); NoDecisionKeys when none is trusted."""
    verify.trust(public_keys(settings.decision_keys))
    if not verify.trusted_keys():
        raise NoDecisionKeys(
            f"no decision keys in {settings.decision_keys}: the HTTP service writes its key there on its "
            "first start (make run does it first); elsewhere set DECISION_KEYS to a copy of that file"
        )


def build_worker(client: Client, settings: Settings, task_queue: str | None = None) -> Worker:
    """The worker of this process. It runs only its own policy (own_policy.py): a policy file it cannot read
    stops it here, with PolicyError."""
    compile_workflows()
    trust_decision_keys(settings)
    return Worker(
        client,
        task_queue=task_queue or settings.incident_task_queue,
        workflows=WORKFLOWS,
        activities=[*build_activities(settings), OwnPolicies(settings.incident_policy).check],
        interceptors=[OwnPolicyInterceptor()],
        max_cached_workflows=settings.worker_cached_workflows,
        max_concurrent_workflow_tasks=settings.worker_workflow_tasks,
        max_concurrent_activities=settings.worker_activities,
        # New incidents arrive on the normal queue, running ones on this worker's sticky queue: under an
        # alert storm the SDK's default (a fifth of the pollers for new work) leaves new incidents, and
        # so their first page, waiting behind the deliveries of those already open.
        nonsticky_to_sticky_poll_ratio=1.0,
        # The SDK holds back a heartbeat for up to 0.8 x the activity's heartbeat_timeout (8 s for e-mail)
        # after the last one it sent; an e-mail recipient accepted in that time and not yet heartbeated is
        # sent again if the worker dies. Let every beat out within HEARTBEAT_EVERY (1 s) instead.
        max_heartbeat_throttle_interval=HEARTBEAT_EVERY,
        workflow_runner=SandboxedWorkflowRunner() if settings.worker_sandbox else UnsandboxedWorkflowRunner(),
    )


# What each way of paging needs: the setting that holds its credential, and its variable.
CREDENTIALS: dict[Channel, tuple[str, str]] = {
    Channel.SLACK: ("slack_bot_token", "SLACK_BOT_TOKEN"),
    Channel.TEAMS: ("teams_app_password", "TEAMS_APP_PASSWORD"),
    Channel.EMAIL: ("smtp_host", "SMTP_HOST"),
    Channel.TELEGRAM: ("telegram_bot_token", "TELEGRAM_BOT_TOKEN"),
    Channel.PUSH: ("ntfy_url", "NTFY_URL"),
}
PROVIDERS: dict[str, tuple[str, str]] = {
    "opsgenie": ("opsgenie_api_key", "OPSGENIE_API_KEY"),
    "pagerduty": ("pagerduty_routing_key", "PAGERDUTY_ROUTING_KEY"),
    "jsm": ("jsm_api_key", "JSM_API_KEY"),
    "twilio": ("twilio_account_sid", "TWILIO_ACCOUNT_SID"),  # SMS and voice, as the policy's `telephony`
    "vonage": ("vonage_api_key", "VONAGE_API_KEY"),
}


def undeliverable(settings: Settings, policy: Policy) -> list[str]:
    """What the policy pages through (its escalation tiers) or holds its calls on with no credential set: each
    such page or call would only reach the outbox. Nothing when the outbox is chosen explicitly (OUTBOX_DELIVERY)."""
    if settings.outbox_delivery:
        return []
    channels = dict.fromkeys(channel for tier in policy.escalation.tiers for channel in tier.channels)
    if Channel.PAGE in channels and policy.paging_provider == DIRECT:  # each person's rules: their methods
        del channels[Channel.PAGE]
        rules = [policy.rules_for(person) for person in policy.people.values()]
        channels |= dict.fromkeys(step.channel for r in rules for step in r.high + r.low)
    missing = []
    for channel in channels:
        by = {Channel.PAGE: policy.paging_provider, Channel.SMS: policy.telephony, Channel.VOICE: policy.telephony}
        field, variable = PROVIDERS[by[channel]] if channel in by else CREDENTIALS[channel]
        name = policy.paging_provider if channel is Channel.PAGE else channel.value
        if getattr(settings, field) is None:
            missing.append(f"{name} ({variable} is not set)")
    if policy.response.conference == "zoom" and settings.zoom_client_secret is None:
        missing.append("zoom for its calls (ZOOM_ACCOUNT_ID, ZOOM_CLIENT_ID, ZOOM_CLIENT_SECRET are not set)")
    return missing


def refuse_undeliverable(settings: Settings, who: str) -> None:
    """End the process with one line when the policy pages through a system it cannot reach."""
    try:
        missing = undeliverable(settings, load_policy(settings.incident_policy))
    except PolicyError as err:
        raise SystemExit(f"{who}: {err}") from None
    if missing:
        raise SystemExit(
            f"{who}: refusing to start: the policy pages through {', '.join(missing)}, so its pages would only "
            "reach the local outbox; set the credentials, or choose the outbox explicitly with OUTBOX_DELIVERY=true"
        )
    if settings.outbox_delivery:
        log.warning("OUTBOX_DELIVERY=true: what has no credential goes to %s, not delivered", settings.outbox_path)


async def run(settings: Settings) -> None:
    trust_decision_keys(settings)  # before waiting for Temporal: without keys this worker is of no use
    runtime = observability.worker_runtime(settings)  # once: it binds the metrics port
    client = await connect_when_up(settings, runtime)
    worker = build_worker(client, settings)
    log.info("worker polling task queue %s on %s", settings.incident_task_queue, settings.temporal_address)
    await worker.run()


async def connect_when_up(settings: Settings, runtime: Runtime | None) -> Client:
    """Connect, waiting for a Temporal that is not up yet (started after the worker, restarting), with backoff.

    Says once that it waits and where. A server that answers and refuses (namespace, credentials) is no
    reason to wait: that error ends the worker.
    """
    pause = FIRST_PAUSE
    while True:
        try:
            return await connect(settings, runtime=runtime)
        except Exception as err:
            if not _unreachable(err):
                raise
            if pause == FIRST_PAUSE:
                log.warning(
                    "waiting for Temporal at %s (namespace %s), retrying with backoff: %s",
                    settings.temporal_address,
                    settings.temporal_namespace,
                    _reason(err),
                )
        await asyncio.sleep(pause.total_seconds())
        pause = min(pause * 2, LAST_PAUSE)


def _unreachable(err: Exception) -> bool:
    if isinstance(err, RPCError):
        return err.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED)
    return isinstance(err, RuntimeError) and str(err).startswith("Failed client connect")


def _reason(err: Exception) -> str:
    """The SDK's connect error without the transport's nesting, e.g. `Connection refused`."""
    found = re.search(r'message: "([^"]+)"', str(err))
    return found.group(1) if found else str(err)


def main() -> None:
    settings = Settings()
    observability.configure_logging(settings)
    refuse_undeliverable(settings, "worker")
    try:
        asyncio.run(run(settings))
    except KeyboardInterrupt:
        pass
    except RPCError as err:  # Temporal answered with a refusal (namespace, credentials): one line, no traceback
        raise SystemExit(f"worker: Temporal at {settings.temporal_address} refused: {err}") from None
    except (NoDecisionKeys, PolicyError) as err:
        raise SystemExit(f"worker: {err}") from None
    finally:
        free_temporal()


if __name__ == "__main__":
    main()
