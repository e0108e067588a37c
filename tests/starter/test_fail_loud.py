"""Fail loud: a worker whose policy pages through a system it has no credential for refuses to start, unless the
outbox is chosen explicitly (`make run` chooses it); what only reached the outbox says it was not delivered."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import SecretStr

from activities.outbox import Outbox
from policy_file import load_policy
from settings import ROOT, Settings
from worker import undeliverable
from workflows.contracts.policy import Policy


def started(module: str, tmp_path: Path, **variables: str) -> subprocess.CompletedProcess[str]:
    """The process as an operator starts it, with none of the shell's credentials; it must end at once."""
    env = {k: v for k, v in os.environ.items() if k.lower() not in Settings.model_fields and "TEMPORAL" not in k}
    env |= {"PYTHONPATH": str(ROOT), "TEMPORAL_ADDRESS": "127.0.0.1:9", **variables}
    return subprocess.run(
        [sys.executable, "-m", module], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize("module", ["worker", "starter.http.app"])
def test_a_misspelled_paging_key_refuses_the_start(module: str, tmp_path: Path) -> None:
    """The OpsGenie key under a wrong name is no key: the pages would be lines in a file."""
    done = started(module, tmp_path, OPSGENIE_APIKEY="k", SLACK_BOT_TOKEN="x", SMTP_HOST="smtp.example.com")
    assert done.returncode != 0
    assert "refusing to start: the policy pages through opsgenie (OPSGENIE_API_KEY is not set)" in done.stderr
    assert "OUTBOX_DELIVERY=true" in done.stderr


def test_every_system_the_tiers_page_through_needs_its_credential(example_policy: Policy, settings: Settings) -> None:
    assert undeliverable(settings, example_policy) == [
        "opsgenie (OPSGENIE_API_KEY is not set)",
        "slack (SLACK_BOT_TOKEN is not set)",
        "email (SMTP_HOST is not set)",
    ]
    configured = settings.model_copy(
        update={"opsgenie_api_key": SecretStr("k"), "slack_bot_token": SecretStr("x"), "smtp_host": "smtp"}
    )
    assert undeliverable(configured, example_policy) == []
    pagerduty = example_policy.model_copy(update={"paging_provider": "pagerduty"})
    assert undeliverable(configured, pagerduty) == ["pagerduty (PAGERDUTY_ROUTING_KEY is not set)"]
    jsm = example_policy.model_copy(update={"paging_provider": "jsm"})
    assert undeliverable(configured, jsm) == ["jsm (JSM_API_KEY is not set)"]
    assert undeliverable(configured.model_copy(update={"jsm_api_key": SecretStr("k")}), jsm) == []


def test_a_policy_holding_its_calls_on_zoom_needs_zoom(example_policy: Policy, settings: Settings) -> None:
    configured = settings.model_copy(
        update={"opsgenie_api_key": SecretStr("k"), "slack_bot_token": SecretStr("x"), "smtp_host": "smtp"}
    )
    zoom = example_policy.model_copy(
        update={"response": example_policy.response.model_copy(update={"conference": "zoom"})}
    )
    missing = "zoom for its calls (ZOOM_ACCOUNT_ID, ZOOM_CLIENT_ID, ZOOM_CLIENT_SECRET are not set)"
    assert undeliverable(configured, zoom) == [missing]
    with_zoom = configured.model_copy(update={"zoom_client_secret": SecretStr("s")})
    assert undeliverable(with_zoom, zoom) == []


def test_paged_directly_the_methods_of_peoples_rules_need_their_credentials(settings: Settings) -> None:
    direct = load_policy(ROOT / "examples" / "policies" / "direct-paging.toml")
    assert undeliverable(settings, direct) == [
        "slack (SLACK_BOT_TOKEN is not set)",
        "push (NTFY_URL is not set)",
        "sms (TWILIO_ACCOUNT_SID is not set)",
        "voice (TWILIO_ACCOUNT_SID is not set)",
        "email (SMTP_HOST is not set)",
    ]
    assert undeliverable(settings.model_copy(update={"outbox_delivery": True}), direct) == [], "make run's outbox"
    through_vonage = undeliverable(settings, direct.model_copy(update={"telephony": "vonage"}))
    assert [line for line in through_vonage if "VONAGE" in line] == [
        "sms (VONAGE_API_KEY is not set)",
        "voice (VONAGE_API_KEY is not set)",
    ]


def test_the_outbox_chosen_explicitly_starts_and_says_so(example_policy: Policy, settings: Settings) -> None:
    assert undeliverable(settings.model_copy(update={"outbox_delivery": True}), example_policy) == []


async def test_what_only_reached_the_outbox_says_not_delivered(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.jsonl")
    await outbox.deliver("opsgenie", "page", "k1", {"summary": "page bob"})
    (line,) = [json.loads(text) for text in (tmp_path / "outbox.jsonl").read_text().splitlines()]
    assert line["delivered"] is False and line["note"] == "not delivered: opsgenie is not configured"
