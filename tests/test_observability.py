"""Log lines: secrets scrubbed, JSON or text, tagged with the incident, workflow and activity."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
from temporalio import activity, workflow
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment
from temporalio.worker import Worker

import observability
from observability import REDACTED, redact
from settings import Settings

SLACK = "xoxb-1234567890-0987654321-AbCdEfGhIjKlMnOpQrStUvWx"
TELEGRAM = "123456789:AAH3kq-Zx_9fLm2P0aBcDeFgHiJkLmNoPqR"


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        (f"slack answered invalid_auth for {SLACK}", SLACK),
        ("Authorization: GenieKey 3f2504e0-4f89-11d3-9a0c-0305e82c3301", "3f2504e0-4f89-11d3-9a0c-0305e82c3301"),
        (f"POST https://api.telegram.org/bot{TELEGRAM}/sendMessage: 429", TELEGRAM.split(":")[1]),
        ("headers={'authorization': 'Bearer eyJhbGciOiJIUzI1NiJ9.e30.abc123'}", "eyJhbGciOiJIUzI1NiJ9.e30.abc123"),
        ("retrying with routing_key=R0UT1NGKEY00000000000000000000AB", "R0UT1NGKEY00000000000000000000AB"),
        ('{"smtp_password": "hunter2hunter2"}', "hunter2hunter2"),
    ],
)
def test_secrets_are_redacted(text: str, secret: str) -> None:
    scrubbed = redact(text)
    assert secret not in scrubbed
    assert REDACTED in scrubbed


@pytest.mark.parametrize(
    "text",
    [
        "INC-7F3KQ2MA acknowledged by alice",
        "alert group dedup_key=checkout-5xx went to INC-7F3KQ2MA",
        "the bot posted to #inc-7f3kq2ma",
        "Bearer auth is off: WEBHOOK_TOKEN is not set",
    ],
)
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert redact(text) == text


@pytest.fixture
def output() -> Iterator[io.StringIO]:
    """Configures logging as a process would and hands back what it writes; restores logging after."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    saved_flags = (activity.logger.activity_info_on_message, workflow.logger.workflow_info_on_message)
    output = io.StringIO()
    observability.configure_logging(Settings(_env_file=None, log_format="json"))
    handler = root.handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(output)
    yield output
    root.handlers[:], root.level = saved
    activity.logger.activity_info_on_message, workflow.logger.workflow_info_on_message = saved_flags


def lines(output: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in output.getvalue().splitlines()]


def test_a_traceback_is_redacted_too(output: io.StringIO) -> None:
    request = httpx.Request("POST", f"https://api.telegram.org/bot{TELEGRAM}/sendMessage")
    try:
        raise httpx.ConnectError("connection refused", request=request) from None
    except httpx.ConnectError as err:
        logging.getLogger("activities.telegram").exception("telegram failed for %s", err.request.url)
    (line,) = lines(output)
    assert TELEGRAM not in json.dumps(line)
    assert line["message"] == f"telegram failed for https://api.telegram.org/bot{REDACTED}/sendMessage"
    assert "httpx.ConnectError" in str(line["exception"])


def test_activity_lines_carry_incident_workflow_and_activity(output: io.StringIO) -> None:
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, workflow_id="INC-7F3KQ2MA", activity_type="post_message")

    def post_message() -> None:
        activity.logger.info("posted to %s", "#inc-7f3kq2ma")
        logging.getLogger("slack_sdk").warning("rate limited, token %s", SLACK)

    env.run(post_message)
    sdk_line, plain_line = lines(output)
    for line in (sdk_line, plain_line):
        assert line["incident_id"] == "INC-7F3KQ2MA"
        assert line["workflow_id"] == "INC-7F3KQ2MA"
        assert line["activity"] == "post_message"
    assert sdk_line["message"] == "posted to #inc-7f3kq2ma"  # no SDK dict appended to the text
    assert plain_line["message"] == f"rate limited, token {REDACTED}"
    assert plain_line["level"] == "WARNING"


def test_lines_outside_temporal_have_no_context_fields(output: io.StringIO) -> None:
    logging.getLogger("webhook").info("listening", extra={"incident_id": "INC-AAAABBBB"})
    (line,) = lines(output)
    assert line["incident_id"] == "INC-AAAABBBB"
    assert "workflow_id" not in line and "activity" not in line


def test_text_format_tags_the_line(output: io.StringIO) -> None:
    handler = logging.getLogger().handlers[0]
    handler.setFormatter(observability.TextFormatter())
    logging.getLogger("worker").info("started", extra={"workflow_id": "INC-7F3KQ2MA-escalation"})
    assert (
        output.getvalue()
        .rstrip()
        .endswith("INFO worker [incident=INC-7F3KQ2MA workflow=INC-7F3KQ2MA-escalation] started")
    )


@workflow.defn(sandboxed=False)
class LoggingWorkflow:
    @workflow.run
    async def run(self) -> None:
        workflow.logger.info("triage done")


async def test_workflow_lines_carry_the_incident(
    output: io.StringIO, dev_env: WorkflowEnvironment, task_queue: str
) -> None:
    async with Worker(dev_env.client, task_queue=task_queue, workflows=[LoggingWorkflow]):
        await dev_env.client.execute_workflow(
            LoggingWorkflow.run,
            id=f"INC-{task_queue[3:11].upper()}",
            task_queue=task_queue,
            execution_timeout=timedelta(seconds=20),
        )
    (line,) = [line for line in lines(output) if line["message"] == "triage done"]
    assert line["incident_id"] == line["workflow_id"] == f"INC-{task_queue[3:11].upper()}"
    assert line["workflow_type"] == "LoggingWorkflow"
