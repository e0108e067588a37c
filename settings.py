"""Process settings from the environment and the Temporal connection (the policy file: `policy_file`).

Secrets (tokens, passwords) live only here and in the activities that use them: never in a workflow
input, a log line or an error message.
"""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from temporalio.client import Client
from temporalio.converter import DataConverter
from temporalio.envconfig import ClientConfig
from temporalio.runtime import Runtime

from data_converter import data_converter, parse_keys

ROOT = Path(__file__).resolve().parent


class Settings(BaseSettings):
    """Every setting the worker, the HTTP service and the CLI read. Unset systems use the outbox."""

    # hide_input_in_errors: an error about a secret setting must not print the secret
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", env_ignore_empty=True, hide_input_in_errors=True
    )

    temporal_address: str = "localhost:7233"
    temporal_namespace: str = "default"
    temporal_ui_url: str = "http://localhost:8233"
    # `id:base64key,...`: payloads and failure messages encrypted with the first key, decrypted with any
    # (data_converter.py); unset: plain JSON in histories.
    payload_keys: SecretStr | None = None
    # The credential the codec endpoint (/codec/*, for the Temporal UI and CLI) asks for; unset: it decodes
    # for nobody.
    codec_token: SecretStr | None = None
    incident_task_queue: str = "incidents"
    # How many workflows one worker keeps in memory (beyond it, a workflow's history is replayed on its
    # next task), and how many workflow and activity tasks it works on at once (README, Configuration).
    worker_cached_workflows: int = Field(default=2_500, gt=0)
    worker_workflow_tasks: int = Field(default=200, gt=0)
    worker_activities: int = Field(default=500, gt=0)
    # Workflows in the SDK's sandbox, which re-imports their modules for every workflow and proxies each
    # call into a restricted module: under an alert storm it was most of the worker's CPU. The tests run
    # every workflow in it, which catches a nondeterministic call; production runs them without it.
    worker_sandbox: bool = False
    incident_policy: Path = ROOT / "examples" / "policy.toml"

    http_host: str = "127.0.0.1"
    http_port: int = 8080
    # Closed by default (starter/http/doors.py): a token per alert source and per heartbeat, by name (JSON in
    # the environment: ALERT_TOKENS='{"alertmanager": "..."}'), a read-only one for calendar feeds, one for
    # /metrics; and each source's rate.
    alert_tokens: dict[str, SecretStr] = Field(default_factory=dict)
    heartbeat_tokens: dict[str, SecretStr] = Field(default_factory=dict)
    calendar_token: SecretStr | None = None
    metrics_token: SecretStr | None = None
    rate_limit_per_minute: int = Field(default=6000, gt=0)
    # The open-incident gauge reads Temporal's visibility at most this often, however often it is scraped.
    metrics_gauge_seconds: float = Field(default=15, ge=0)
    max_body_bytes: int = 1024 * 1024
    # The HTTP service runs a worker too, so that a new incident starts eagerly in it (client/alerts.py).
    http_runs_worker: bool = True
    # Trust (README, "Who can do what"): the HTTP service's key that signs every decision it sends, made on
    # first start; the public keys workers accept decisions from (one per line, old ones kept); the personal
    # tokens, hashed; where incidentctl sends decisions (default: this machine's HTTP_PORT).
    decision_signing_key: Path = ROOT / ".data" / "decision-signing-key.pem"
    decision_keys: Path = ROOT / ".data" / "decision-keys"
    tokens_path: Path = ROOT / ".data" / "tokens.json"
    # An OpenID Connect provider people sign in with (incidentctl login), and the client id it knows us by.
    oidc_issuer: str | None = None
    oidc_client_id: str = "incidentctl"
    incident_api_url: str | None = None

    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_api_url: str = "https://slack.com/api/"

    # Microsoft Teams: the Azure bot's app registration (its id, secret and tenant), the team incident channels
    # are made in; Microsoft's endpoints, settable so tests can point them at fakes.
    teams_app_id: str | None = None
    teams_app_password: SecretStr | None = None
    teams_tenant_id: str | None = None
    teams_team_id: str | None = None
    teams_login_url: str = "https://login.microsoftonline.com"
    teams_graph_url: str = "https://graph.microsoft.com/v1.0"
    teams_service_url: str = "https://smba.trafficmanager.net/teams/"
    teams_openid_url: str = "https://login.botframework.com/v1/.well-known/openidconfiguration"

    opsgenie_api_key: SecretStr | None = None
    opsgenie_api_url: str = "https://api.opsgenie.com"
    jsm_api_key: SecretStr | None = None  # Jira Service Management Operations: an API integration's key
    jsm_api_url: str = "https://api.atlassian.com"
    pagerduty_routing_key: SecretStr | None = None
    pagerduty_events_url: str = "https://events.pagerduty.com"

    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = True
    email_from: str = "incidents@example.com"

    telegram_bot_token: SecretStr | None = None
    telegram_api_url: str = "https://api.telegram.org"

    # Paging people directly (README, "Paging people directly"): push through an ntfy server, SMS and calls
    # through Twilio or Vonage (the policy's `telephony`); where their pages link back to (the acknowledge links,
    # the providers' callbacks), and the key the worker and the HTTP service share to sign those links (made on
    # first use).
    ntfy_url: str | None = None
    ntfy_token: SecretStr | None = None
    twilio_account_sid: str | None = None
    twilio_auth_token: SecretStr | None = None
    twilio_from: str | None = None
    twilio_api_url: str = "https://api.twilio.com"
    vonage_api_key: str | None = None
    vonage_api_secret: SecretStr | None = None
    vonage_application_id: str | None = None  # the Voice API application the calls belong to
    vonage_private_key: Path | None = None  # that application's private key (PEM), which signs the calls' JWTs
    vonage_signature_secret: SecretStr | None = None  # checks every request Vonage sends
    vonage_from: str | None = None
    vonage_rest_url: str = "https://rest.nexmo.com"  # the SMS API
    vonage_api_url: str = "https://api.nexmo.com"  # the Voice and Reports APIs
    public_url: str | None = None
    ack_link_key: Path = ROOT / ".data" / "ack-link-key"

    statuspage_api_key: SecretStr | None = None
    statuspage_page_id: str | None = None
    statuspage_api_url: str = "https://api.statuspage.io/v1"

    # Incident records (policy `records.home`): each system's base URL and a service account's credential.
    # Jira and Confluence Cloud take an e-mail and an API token (Basic); with no e-mail, the token is a
    # personal access token (Bearer, Data Center).
    jira_url: str | None = None
    jira_email: str | None = None
    jira_api_token: SecretStr | None = None
    jira_webhook_secret: SecretStr | None = None  # the secret of the Jira webhook that reports back
    servicenow_url: str | None = None
    servicenow_username: str | None = None
    servicenow_password: SecretStr | None = None
    servicenow_webhook_token: SecretStr | None = None  # the bearer token ServiceNow's outbound REST sends
    confluence_url: str | None = None
    confluence_email: str | None = None
    confluence_api_token: SecretStr | None = None
    linear_api_key: SecretStr | None = None  # follow-up issues (policy `follow_ups.home = "linear"`)
    linear_api_url: str = "https://api.linear.app/graphql"

    zoom_account_id: str | None = None
    zoom_client_id: str | None = None
    zoom_client_secret: SecretStr | None = None
    zoom_api_url: str = "https://api.zoom.us/v2"
    zoom_oauth_url: str = "https://zoom.us/oauth/token"

    outbox_path: Path = ROOT / ".data" / "outbox.jsonl"
    # Pages for a system with no credential go to the outbox only when chosen (worker.undeliverable): without
    # it the worker refuses to start, rather than turn a page into a line in a file. `make run` chooses it.
    outbox_delivery: bool = False
    incident_log_dir: Path = ROOT / ".data" / "incident-logs"

    metrics_port: int | None = Field(default=None, description="worker's Prometheus port; unset: off")
    metrics_host: str = Field(default="127.0.0.1", description="0.0.0.0 in a container")
    log_format: str = "text"  # text | json
    log_level: str = "INFO"

    def public_base(self) -> str:
        """Where phones and the telephony providers reach the HTTP service: PUBLIC_URL, else its own address."""
        return (self.public_url or f"http://{self.http_host}:{self.http_port}").rstrip("/")

    @field_validator("payload_keys")
    @classmethod
    def _usable_keys(cls, value: SecretStr | None) -> SecretStr | None:
        """Unusable keys stop every process at start, with the entry named (never the key)."""
        if value is not None:
            parse_keys(value.get_secret_value())
        return value

    @model_validator(mode="before")
    @classmethod
    def _empty_means_unset(cls, values: Any) -> Any:
        """`SLACK_SIGNING_SECRET=` (an uncommented .env line) is no secret: treat it as not configured."""
        if isinstance(values, dict):
            return {key: value for key, value in values.items() if value != ""}
        return values

    @field_validator("alert_tokens", "heartbeat_tokens")
    @classmethod
    def _empty_token_is_none(cls, value: dict[str, SecretStr]) -> dict[str, SecretStr]:
        return {name: token for name, token in value.items() if token.get_secret_value()}


def describe_validation_error(err: ValidationError) -> str:
    """One line per problem, each naming the field by its dotted path."""
    parts = []
    for problem in err.errors():
        where = ".".join(str(p) for p in problem["loc"]) or "(top level)"
        parts.append(f"{where}: {problem['msg']}")
    return "; ".join(parts)


async def connect(settings: Settings, runtime: Runtime | None = None) -> Client:
    """Connect with the SDK's environment configuration (profiles, TEMPORAL_* variables, TLS, API key).

    TEMPORAL_ADDRESS and TEMPORAL_NAMESPACE given to this process win over a profile's, so
    `make run` and the tests can point anywhere without a config file. A `runtime` carries telemetry
    (the worker's Prometheus metrics); without one the SDK's default runtime is used.
    """
    config = ClientConfig.load_client_connect_config()
    config.setdefault("target_host", settings.temporal_address)
    config.setdefault("namespace", settings.temporal_namespace)
    return await Client.connect(**config, data_converter=converter(settings), runtime=runtime)


def converter(settings: Settings) -> DataConverter:
    """The data converter of every client and worker (data_converter.py): encrypted when keys are set."""
    return data_converter(settings.payload_keys.get_secret_value() if settings.payload_keys else None)


def free_temporal() -> None:
    """Free the Temporal clients and workers left in asyncio's reference cycles, while the interpreter is
    whole. Every process calls this as it ends: freed during interpreter shutdown, their Rust runtime calls
    back into a finalizing Python and aborts the process (SIGABRT, exit 134)."""
    gc.collect()
