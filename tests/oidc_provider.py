"""An OpenID Connect provider for the tests: oidc-provider-mock (discovery, users, tokens, userinfo, all from its
package) with OAuth 2.0 Device Authorization (RFC 8628) added from authlib, the library it is built on.

The person at the browser is the test: `approve(user_code, sub)` is what they do at the verification page.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import flask
import werkzeug.serving
from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.integrations.flask_oauth2.requests import FlaskOAuth2Request
from authlib.oauth2.rfc8628 import DEVICE_CODE_GRANT_TYPE, DeviceAuthorizationEndpoint, DeviceCodeGrant
from oidc_provider_mock import User, app
from oidc_provider_mock._storage import Client

# The provider's clients may use the device grant once it is registered (below).
Client.GRANT_TYPES_SUPPORTED = (*Client.GRANT_TYPES_SUPPORTED, DEVICE_CODE_GRANT_TYPE)


@dataclass
class DeviceCredential:
    client_id: str
    scope: str
    user_code: str
    expires_at: float

    def get_client_id(self) -> str:
        return self.client_id

    def get_scope(self) -> str:
        return self.scope

    def get_user_code(self) -> str:
        return self.user_code

    def is_expired(self) -> bool:
        return time.time() > self.expires_at


class Provider:
    """The provider's state for the device flow: pending codes, and what each person at the browser decided."""

    def __init__(self, url: str, users: dict[str, User]) -> None:
        self.url, self.users = url, users
        self.credentials: dict[str, DeviceCredential] = {}
        self.grants: dict[str, tuple[User, bool]] = {}

    def approve(self, user_code: str, sub: str, *, approved: bool = True) -> None:
        self.grants[user_code] = (self.users[sub], approved)


def _device_flow(web: flask.Flask, provider: Provider) -> None:
    with web.test_request_context():
        web.preprocess_request()  # the mock keeps its authorization server in flask.g
        server: AuthorizationServer = flask.g._authlib_authorization_server

    class Endpoint(DeviceAuthorizationEndpoint):
        INTERVAL = 1  # seconds between polls: the tests wait less

        def get_verification_uri(self) -> str:
            return f"{provider.url}/device"

        def save_device_credential(self, client_id: str, scope: str, data: dict[str, Any]) -> None:
            provider.credentials[data["device_code"]] = DeviceCredential(
                client_id, scope or "openid", data["user_code"], time.time() + data["expires_in"]
            )

    class Grant(DeviceCodeGrant):
        def query_device_credential(self, device_code: str) -> DeviceCredential | None:
            return provider.credentials.get(device_code)

        def query_user_grant(self, user_code: str) -> tuple[User, bool] | None:
            return provider.grants.get(user_code)

        def should_slow_down(self, credential: DeviceCredential) -> bool:
            return False

    server.register_grant(Grant)
    server.register_endpoint(Endpoint)
    mock_token: Callable[[], Any] = web.view_functions["oidc-provider-mock.issue_token"]
    mock_discovery: Callable[[], Any] = web.view_functions["oidc-provider-mock.openid_config"]

    def token() -> Any:
        if flask.request.form.get("grant_type") != DEVICE_CODE_GRANT_TYPE:
            return mock_token()
        return server.create_token_response(FlaskOAuth2Request(flask.request))

    def discovery() -> Any:
        metadata = mock_discovery().get_json()
        return flask.jsonify(
            metadata | {"device_authorization_endpoint": f"{provider.url}/oauth2/device_authorization"}
        )

    web.view_functions["oidc-provider-mock.issue_token"] = token
    web.view_functions["oidc-provider-mock.openid_config"] = discovery
    web.add_url_rule(
        "/oauth2/device_authorization",
        "device_authorization",
        lambda: server.create_endpoint_response("device_authorization"),
        methods=["POST"],
    )


@contextmanager
def oidc_provider(users: Sequence[User]) -> Iterator[Provider]:
    """The provider on a free port of 127.0.0.1, in a thread, until the block ends."""
    web = app(user_claims=users)
    server = werkzeug.serving.make_server("127.0.0.1", 0, web, threaded=True)
    provider = Provider(f"http://127.0.0.1:{server.server_port}", {user.sub: user for user in users})
    _device_flow(web, provider)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield provider
    finally:
        server.shutdown()
        thread.join(5)
