"""Histories without contact details in clear: with PAYLOAD_KEYS every payload and failure message is encrypted
(data_converter.py), and the codec endpoint (starter/http/codec.py) decrypts for the codec credential only."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import socket
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
import uvicorn
from google.protobuf import json_format
from pydantic import SecretStr
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.api.failure.v1 import Failure
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from activities.outbox import Outbox
from client.alerts import send_alert
from data_converter import ENCODING, EncryptionCodec, new_key, parse_keys
from policy_file import load_policy
from settings import Settings, converter
from starter.http.app import create_app
from tests.conftest import BIN
from worker import build_worker
from workflows.contracts.policy import Policy
from workflows.contracts.temporal.ids import incident_id_for
from workflows.contracts.vocabulary import Severity
from workflows.incident.model import Acknowledge, AlertEvent

NEW, OLD = new_key(), new_key()
TOKEN = "codec-test-token"
ADDRESS = "ops@client.example"


@pytest.fixture
def keyed(settings: Settings) -> Settings:
    keys = SecretStr(f"new:{NEW},old:{OLD}")
    return settings.model_copy(update={"payload_keys": keys, "codec_token": SecretStr(TOKEN)})


def contacts(policy: Policy) -> list[str]:
    """Every address the policy holds: e-mail, Slack ids, pager ids, and chat ids as JSON strings."""
    found = [c for p in policy.people.values() for c in (p.email, p.slack_user_id, p.pager_id) if c]
    found += [f'"{p.telegram_chat_id}"' for p in policy.people.values() if p.telegram_chat_id]
    found += [a for s in policy.services.values() for a in s.client_contacts]
    found += policy.comms.recipients.internal_email
    return sorted(set(found))


async def until(condition: Callable[[], bool], *, within: float = 60) -> None:
    """Wait for what a peer received; `within` only stops a broken build from hanging."""
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        await asyncio.sleep(0.05)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def show(env: WorkflowEnvironment, workflow_id: str, *codec: str) -> str:
    """`temporal workflow show` as anyone who can read the namespace runs it, with every payload's base64 (data
    and metadata) decoded as such a reader would: what they can read of the history."""
    command = [str(BIN / "temporal"), "workflow", "show", "--workflow-id", workflow_id, "--output", "json"]
    address = env.client.service_client.config.target_host
    cli = await asyncio.create_subprocess_exec(
        *command, "--address", address, *codec, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )  # not subprocess.run: the codec endpoint it calls runs on this event loop
    out, err = await cli.communicate()
    assert cli.returncode == 0, err.decode()
    readable = [out.decode()]

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
        elif isinstance(node, str):
            with contextlib.suppress(ValueError):
                readable.append(base64.b64decode(node, validate=True).decode(errors="replace"))

    walk(json.loads(out))
    return "\n".join(readable)


@pytest.fixture
async def keyed_client(dev_env: WorkflowEnvironment, keyed: Settings) -> Client:
    config = dev_env.client.config()
    config["data_converter"] = converter(keyed)
    return Client(**config)


@pytest.fixture
async def incident(keyed_client: Client, keyed: Settings) -> AsyncIterator[str]:
    """A SEV1 on checkout through the encrypted client, paged, acknowledged by bob; its workflow id."""
    policy = load_policy(keyed.incident_policy)
    event = AlertEvent(
        source="test", dedup_key=new_key(), title="Checkout down", severity=Severity.SEV1, service="checkout"
    )
    async with build_worker(keyed_client, keyed):
        await send_alert(keyed_client, keyed, policy, event)
        await until(lambda: any(e["kind"] == "page" for e in Outbox(keyed.outbox_path).read()))
        incident_id = incident_id_for(event.source, event.dedup_key)
        await keyed_client.get_workflow_handle(incident_id).execute_update("acknowledge", Acknowledge(actor="bob"))
        yield incident_id


@pytest.fixture
async def codec_url(keyed_client: Client, keyed: Settings) -> AsyncIterator[str]:
    """The HTTP service on a free port, for the Temporal CLI's --codec-endpoint."""
    port = free_port()
    app = create_app(keyed, client=keyed_client)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    serving = asyncio.create_task(server.serve())
    while not server.started:
        assert not serving.done(), "the HTTP service did not start"
        await asyncio.sleep(0.05)
    yield f"http://127.0.0.1:{port}/codec"
    server.should_exit = True
    await serving


async def test_with_payload_keys_no_contact_address_appears_in_temporal_workflow_show(
    dev_env: WorkflowEnvironment, keyed: Settings, incident: str, codec_url: str
) -> None:
    everyone = contacts(load_policy(keyed.incident_policy))
    shown = await show(dev_env, incident)
    assert "binary/encrypted" in shown, "the history has payloads, encrypted"
    assert [c for c in everyone if c in shown] == []
    decoded = await show(dev_env, incident, "--codec-endpoint", codec_url, "--codec-auth", f"Bearer {TOKEN}")
    assert ADDRESS in decoded, "the codec endpoint decodes for the credential"


def payloads_json(*payloads: Payload) -> str:
    return json_format.MessageToJson(Payloads(payloads=list(payloads)))


def first_payload(answer: httpx.Response) -> Payload:
    return json_format.Parse(answer.text, Payloads()).payloads[0]


@pytest.fixture
async def codec_http(keyed: Settings, keyed_client: Client) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(keyed, client=keyed_client)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://webhook") as http:
        yield http


async def sealed(keys: str, value: Any) -> Payload:
    encoded = await EncryptionCodec(parse_keys(keys)).encode([converter_payload(value)])
    return encoded[0]


def converter_payload(value: Any) -> Payload:
    return converter(Settings(_env_file=None)).payload_converter.to_payload(value)


async def test_the_codec_endpoint_decodes_with_the_token_and_refuses_without(codec_http: httpx.AsyncClient) -> None:
    secret = await sealed(f"new:{NEW}", {"to": [ADDRESS]})
    body = payloads_json(secret)
    headers = {"Content-Type": "application/json", "X-Namespace": "default"}
    for credential in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
        refused = await codec_http.post("/codec/decode", content=body, headers=headers | credential)
        assert refused.status_code == 401 and ADDRESS not in refused.text
    allowed = headers | {"Authorization": f"Bearer {TOKEN}"}
    decoded = await codec_http.post("/codec/decode", content=body, headers=allowed)
    assert decoded.status_code == 200
    assert first_payload(decoded) == converter_payload({"to": [ADDRESS]})
    # The UI's way: a cookie from /codec/login, sent with "include cross-origin credentials".
    assert (await codec_http.post("/codec/login", content="token=wrong")).status_code == 401
    signed_in = await codec_http.post("/codec/login", content=f"token={TOKEN}")
    assert signed_in.status_code == 200 and "httponly" in signed_in.headers["set-cookie"].lower()
    by_cookie = await codec_http.post("/codec/decode", content=body, headers=headers)  # the cookie it keeps
    assert first_payload(by_cookie) == converter_payload({"to": [ADDRESS]})


async def test_the_codec_endpoint_lets_the_temporal_ui_origin_in(codec_http: httpx.AsyncClient) -> None:
    preflight = await codec_http.options(
        "/codec/decode",
        headers={"Origin": "http://localhost:8233", "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "http://localhost:8233"
    assert preflight.headers["access-control-allow-credentials"] == "true"
    assert "x-namespace" in preflight.headers["access-control-allow-headers"].lower()


async def test_a_rotated_key_still_decrypts_what_it_encrypted(codec_http: httpx.AsyncClient) -> None:
    """The first key encrypts; the old one, kept after it, still opens the histories written under it."""
    before_rotation = await sealed(f"old:{OLD}", ADDRESS)
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"}
    decoded = await codec_http.post("/codec/decode", content=payloads_json(before_rotation), headers=headers)
    assert first_payload(decoded) == converter_payload(ADDRESS)
    encoded = await codec_http.post("/codec/encode", content=payloads_json(converter_payload(ADDRESS)), headers=headers)
    assert first_payload(encoded).metadata["encryption-key-id"] == b"new"
    retired = await sealed(f"gone:{new_key()}", ADDRESS)
    unknown = await codec_http.post("/codec/decode", content=payloads_json(retired), headers=headers)
    assert unknown.status_code == 422 and "'gone'" in unknown.text


async def test_with_payload_keys_a_failure_message_is_encrypted_too(keyed: Settings) -> None:
    keyed_converter = converter(keyed)
    failure = Failure()
    await keyed_converter.encode_failure(ApplicationError(f"smtp asked to try {ADDRESS} again later"), failure)
    assert ADDRESS.encode() not in failure.SerializeToString()
    assert failure.encoded_attributes.metadata["encoding"] == ENCODING
    restored = await keyed_converter.decode_failure(failure)
    assert ADDRESS in str(restored)


def test_a_key_that_is_not_32_bytes_is_refused_without_showing_it() -> None:
    short = base64.b64encode(b"x" * 16).decode()
    with pytest.raises(ValueError, match="'k1' is 16 bytes, not 32") as refused:
        Settings(_env_file=None, payload_keys=f"k1:{short}")
    assert short not in str(refused.value)
