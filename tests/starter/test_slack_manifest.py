"""deploy/slack/manifest.yaml: the app it installs may call every Web API method the code calls, holds no
scope the code does not use, and sends `/incident` and button clicks to routes the HTTP service serves."""

from __future__ import annotations

import ast
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import yaml
from pydantic import SecretStr
from slack_sdk.web.async_client import AsyncWebClient

from settings import ROOT, Settings
from starter.http.app import create_app
from workflows.contracts.policy import Policy

MANIFEST = ROOT / "deploy" / "slack" / "manifest.yaml"
# Where the code talks to Slack's Web API.
CALLERS = (ROOT / "activities" / "chat" / "slack.py", ROOT / "starter" / "http" / "slack.py")

# Each method's bot scopes, from its page at https://docs.slack.dev/reference/methods/<method>, for the
# conversation types the code uses it on: the incident channel the bot creates is public; a channel the
# policy names (comms.recipients.internal_slack_channel) may be private; DMs are opened by the bot.
METHOD_SCOPES: dict[str, set[str]] = {
    "chat.postMessage": {"chat:write"},
    "chat.update": {"chat:write"},
    "conversations.create": {"channels:manage"},
    "conversations.invite": {"channels:manage"},
    "conversations.setTopic": {"channels:manage"},
    "conversations.setPurpose": {"channels:manage"},
    "conversations.archive": {"channels:manage"},
    # types="public_channel,private_channel"
    "conversations.list": {"channels:read", "groups:read"},
    # a retried post's look for its first attempt: incident channel, policy channel, DM
    "conversations.history": {"channels:history", "groups:history", "im:history"},
    "conversations.open": {"im:write"},
    "bookmarks.list": {"bookmarks:read"},
    "bookmarks.add": {"bookmarks:write"},
}
# Scopes that no Web API method needs: the slash command, and reading back the message metadata each post
# carries (its idempotency key; conversations.history returns it only with this scope).
FEATURE_SCOPES = {"commands", "metadata.message:read"}


def manifest() -> dict:
    return yaml.safe_load(MANIFEST.read_text())


def web_api_methods_called() -> set[str]:
    """`client.conversations_setTopic` anywhere in the callers -> "conversations.setTopic"."""
    api = {name for name in vars(AsyncWebClient) if not name.startswith("_") and "_" in name}
    called = set()
    for path in CALLERS:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Attribute) and node.attr in api:
                called.add(node.attr.replace("_", "."))
    return called


def test_the_code_calls_the_web_api_methods_this_test_knows() -> None:
    called = web_api_methods_called()
    assert "chat.postMessage" in called  # the scan finds calls at all
    unknown = sorted(called - METHOD_SCOPES.keys())
    assert not unknown, (
        f"the code now calls {unknown}: add each with its bot scopes from "
        "https://docs.slack.dev/reference/methods/<method> to METHOD_SCOPES and the manifest"
    )


def test_the_manifest_grants_every_scope_a_called_method_needs() -> None:
    granted = set(manifest()["oauth_config"]["scopes"]["bot"])
    for method in sorted(web_api_methods_called()):
        missing = METHOD_SCOPES.get(method, set()) - granted
        assert not missing, f"{method} needs {sorted(missing)}; add them to {MANIFEST.relative_to(ROOT)}"
    assert FEATURE_SCOPES <= granted


def test_the_manifest_grants_no_scope_the_code_does_not_use() -> None:
    """Least privilege: a workspace admin approves exactly what the app does."""
    granted = set(manifest()["oauth_config"]["scopes"]["bot"])
    used = FEATURE_SCOPES.union(*(METHOD_SCOPES[m] for m in web_api_methods_called() if m in METHOD_SCOPES))
    assert granted - used == set()
    assert manifest()["oauth_config"]["scopes"].get("user") is None  # the app acts as its bot only


async def answer_to_unsigned_post(path: str, example_policy: Policy, tmp_path: Path) -> httpx.Response:
    settings = Settings(
        _env_file=None,
        outbox_path=tmp_path / "outbox.jsonl",
        incident_log_dir=tmp_path,
        decision_signing_key=tmp_path / "decision-signing-key.pem",
        decision_keys=tmp_path / "decision-keys",
        slack_signing_secret=SecretStr("not-what-slack-signed-with"),
    )
    app = create_app(settings, policy=example_policy)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://webhook") as client:
        return await client.post(
            path,
            content=b"command=%2Fincident&text=help",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )


async def test_slash_command_and_buttons_go_to_routes_the_http_service_serves(
    example_policy: Policy, tmp_path: Path
) -> None:
    m = manifest()
    (command,) = m["features"]["slash_commands"]
    assert command["command"] == "/incident"
    interactivity = m["settings"]["interactivity"]
    assert interactivity["is_enabled"] is True
    for url, path in ((command["url"], "/slack/commands"), (interactivity["request_url"], "/slack/interactions")):
        parts = urlsplit(url)
        assert parts.scheme == "https", f"Slack calls request URLs over HTTPS only: {url}"
        assert parts.path == path, url
        # the Slack endpoint is there: it checks the signature (and refuses this unsigned request)
        answer = await answer_to_unsigned_post(path, example_policy, tmp_path)
        assert (answer.status_code, answer.json()) == (401, {"error": "bad or stale Slack signature"}), path
    # the HTTP service takes Slack's requests over HTTP, not through a Socket Mode connection
    assert m["settings"]["socket_mode_enabled"] is False
    assert m["features"]["bot_user"]["display_name"]
