"""Workers killed at random while incidents run their lifecycle: nothing is lost, and nothing reaches anybody
twice except what README's "What is delivered once, and what at least once" allows.

Two real worker processes (`python -m worker`) on one task queue of the dev server, configured through
the environment as in production, against fake Slack, OpsGenie, Telegram and Zoom and a real SMTP server.
The test drives each incident as people and the webhook would: the alert by signal-with-start, then the
decisions, each as an Update with an id, sent again under the same id when its answer is lost. A run
without kills says what each incident delivers; the run with kills must deliver all of it. SMTP,
Telegram and Zoom take no idempotency key, so a copy of theirs may arrive twice, but only when its first
copy arrived just before a kill (the worker died while the peer was answering); Slack posts, pages,
incident logs, decisions and the incident's Jira issue never twice, and the issue's comments are its
timeline, each entry once.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from pydantic import SecretStr
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from activities.registers.jira import label as jira_label
from client.alerts import send_alert
from client.decide import Refused, send_decision
from policy_file import load_policy
from settings import ROOT, Settings
from tests.conftest import run_under
from tests.fakes.jira import FakeJira
from tests.fakes.paging import FakeOpsGenie
from tests.fakes.slack import FakeSlack
from tests.fakes.smtp import FakeSmtp, Mailbox
from tests.fakes.telegram import FakeTelegram
from tests.fakes.zoom import FakeZoom
from tests.signing import write_keys_file
from workflows.contracts.activity_io import record_history
from workflows.contracts.policy import Policy, Records, Tier
from workflows.contracts.temporal.ids import incident_id_for
from workflows.contracts.vocabulary import Channel, Severity
from workflows.incident.model import (
    Acknowledge,
    AlertEvent,
    ApproveStatement,
    CloseIncident,
    Decision,
    IncidentState,
    PublishPostmortem,
    Resolve,
    ReviewHeld,
    StatusUpdate,
)

pytestmark = pytest.mark.fault

INCIDENTS = 8
BASELINE_INCIDENTS = 2
WORKERS = 2
MIN_KILLS = 30
KILL_EVERY = (0.5, 3.0)  # seconds from the other worker polling to the kill, at random
PACE = (1.0, 4.0)  # seconds between one person's decisions, at random
# A repeated SMTP, Telegram or Zoom delivery is the worker dying while the peer answered: its first copy
# arrived at most this long before a kill (the request's answer, then the activity's heartbeat or completion
# reaching the server: on a busy 2-core machine more than 2 s, once in a few runs).
WINDOW = 5.0
DECISIONS: list[Decision] = [
    StatusUpdate(actor="alice", text="Rolling back release 42"),
    ApproveStatement(actor="carol", statement_id="S1"),  # the client's copy of the update (seed 000)
    Resolve(
        actor="alice",
        overview="Checkout answered 500",
        how_resolved="Rolled back release 42",
        prevention="Canary deploys",
    ),
    ApproveStatement(actor="carol", statement_id="S2"),  # the client's resolution message
    ReviewHeld(actor="alice", notes="Held with the team", root_cause="A bad deploy"),
    PublishPostmortem(actor="alice", url="https://wiki.example.com/pm/checkout"),
    CloseIncident(actor="alice"),
]
# Refusals a person meets when they are ahead of the incident: they try again a moment later.
NOT_YET = ("is not drafted yet", "documentation incomplete", "is not confirmed")


def drill_policy() -> Policy:
    """The example policy, always out of hours (leadership by Telegram), every deadline far beyond the run:
    what happens is what the decisions cause, not timers."""
    policy = load_policy(ROOT / "examples" / "policy.toml")
    far = 600
    tiers = [
        Tier(
            notify=["role:responder"],
            channels=[Channel.PAGE, Channel.SLACK, Channel.EMAIL, Channel.TELEGRAM],
            wait_minutes=far,
        ),
        Tier(notify=["role:cto"], channels=[Channel.PAGE, Channel.SLACK, Channel.EMAIL], wait_minutes=far),
    ]
    return policy.model_copy(
        update={
            "business_hours": policy.business_hours.model_copy(update={"days": []}),
            "escalation": policy.escalation.model_copy(update={"tiers": tiers, "repeat": 0}),
            "response": policy.response.model_copy(
                update={"ack_minutes": far, "progress_window_minutes": 60, "conference": "zoom"}
            ),
            "cadence": policy.cadence.model_copy(update={"update_minutes": dict.fromkeys(Severity, far)}),
            "services": {
                name: service.model_copy(update={"rto_minutes": None, "rpo_minutes": None})
                for name, service in policy.services.items()
            },
            "comms": policy.comms.model_copy(update={"auto_trigger_severities": []}),
            "records": Records(home="jira", project="OPS"),
        }
    )


# --- the peers, each delivery stamped with when it arrived ---------------------------------------------------


class StampedTelegram(FakeTelegram):
    async def _send_message(self, request: web.Request) -> web.Response:
        answer = await super()._send_message(request)  # never suspends: sent[-1] is this request's
        if answer.status == 200:
            self.sent[-1]["arrived"] = time.monotonic()
        return answer


class StampedZoom(FakeZoom):
    async def _create_meeting(self, request: web.Request) -> web.Response:
        answer = await super()._create_meeting(request)
        if answer.status == 201:
            self.meetings[-1]["arrived"] = time.monotonic()
        return answer


class StampedMailbox(Mailbox):
    def __init__(self) -> None:
        super().__init__()
        self.arrived: list[float] = []  # one per delivery

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        answer = await super().handle_DATA(server, session, envelope)
        self.arrived.append(time.monotonic())
        return answer


class Peers:
    """Every peer of the run on 127.0.0.1, and the settings that point a worker at them."""

    async def __aenter__(self) -> Peers:
        self._stack = AsyncExitStack()
        policy = drill_policy()
        users = {person.slack_user_id for person in policy.people.values() if person.slack_user_id}
        self.slack = await self._stack.enter_async_context(FakeSlack(users=users))
        self.opsgenie = await self._stack.enter_async_context(FakeOpsGenie())
        chats = {person.telegram_chat_id for person in policy.people.values() if person.telegram_chat_id}
        self.telegram = await self._stack.enter_async_context(StampedTelegram(chats=chats))
        self.zoom = await self._stack.enter_async_context(StampedZoom())
        self.jira = await self._stack.enter_async_context(FakeJira())
        self.smtp = FakeSmtp()
        self.mailbox = StampedMailbox()
        self.smtp.mailbox = self.smtp.controller.handler = self.mailbox
        await self._stack.enter_async_context(self.smtp)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()

    def configure(self, settings: Settings) -> Settings:
        configured = self.smtp.configure(settings)
        for peer in (self.slack, self.opsgenie, self.telegram, self.zoom, self.jira):
            configured = peer.configure(configured)
        return configured


# --- the worker processes ------------------------------------------------------------------------------------


def snapshot(into: Path) -> Path:
    """The code as it is now: other people edit the working tree while this runs, and a worker restarted
    on changed workflow code could not replay the histories of the incidents under way."""
    for module in ROOT.glob("*.py"):
        shutil.copy2(module, into / module.name)
    for package in ("workflows", "activities", "client", "starter", "templates", "examples"):
        shutil.copytree(ROOT / package, into / package, ignore=shutil.ignore_patterns("__pycache__"))
    return into


def environment(settings: Settings, code: Path) -> dict[str, str]:
    """The settings as a worker process reads them: environment variables, nothing from the shell's."""
    env = {
        name: value
        for name, value in os.environ.items()
        if name.lower() not in Settings.model_fields and not name.startswith("TEMPORAL_")
    }
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        env[name.upper()] = str(value).lower() if isinstance(value, bool) else str(value)
    env |= {"PYTHONPATH": str(code), "TEMPORAL_CONFIG_FILE": os.devnull, "LOG_LEVEL": "INFO"}
    return env


class Workers:
    """`python -m worker` processes in slots; a killed one is started again at once."""

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self.env, self.cwd = env, cwd
        self.slots: list[tuple[subprocess.Popen[bytes], Path]] = []  # each slot's process and its log
        self.kills: list[float] = []  # time.monotonic() of each SIGKILL
        self.generation = 0

    def _start(self) -> tuple[subprocess.Popen[bytes], Path]:
        self.generation += 1
        path = self.cwd / f"worker-{self.generation}.log"
        with path.open("wb") as log:
            return subprocess.Popen(
                [sys.executable, "-m", "worker"],
                env=self.env,
                cwd=self.cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            ), path

    def start(self, count: int) -> None:
        self.slots = [self._start() for _ in range(count)]

    def others_polling(self, slot: int) -> bool:
        """Every worker but the one in `slot` has started polling."""
        return all(
            "worker polling task queue" in log.read_text(errors="replace")
            for other, (_, log) in enumerate(self.slots)
            if other != slot
        )

    async def kill_and_restart(self, slot: int) -> None:
        process, _ = self.slots[slot]
        process.send_signal(signal.SIGKILL)
        self.kills.append(time.monotonic())
        await asyncio.to_thread(process.wait)
        self.slots[slot] = self._start()

    def crashed(self) -> list[str]:
        """Workers that exited on their own (not killed by us)."""
        return [
            f"worker pid {p.pid} exited with {p.returncode} (see {log})"
            for p, log in self.slots
            if p.poll() is not None
        ]

    async def stop(self) -> None:
        for process, _ in self.slots:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
        for process, _ in self.slots:
            try:
                await asyncio.wait_for(asyncio.to_thread(process.wait), timeout=15)
            except TimeoutError:
                process.kill()
                await asyncio.to_thread(process.wait)


async def kill_at_random(workers: Workers, rng: random.Random, driven: asyncio.Event) -> None:
    """SIGKILL one worker at a random moment, again and again, until the incidents are driven through and
    there were MIN_KILLS kills. The killed one restarts at once, and a worker is killed only once the other
    one polls: so one is at work nearly all the time, however long a start takes on a busy machine."""
    while not (driven.is_set() and len(workers.kills) >= MIN_KILLS):
        victim = rng.randrange(len(workers.slots))
        await until(functools.partial(workers.others_polling, victim), "a worker's start", within=60)
        await asyncio.sleep(rng.uniform(*KILL_EVERY))
        await workers.kill_and_restart(victim)


# --- people -------------------------------------------------------------------------------------------------


async def until(condition: Callable[[], bool], what: str, within: float = 120) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, f"{what} did not happen within {within:.0f} s"
        await asyncio.sleep(0.1)


async def decide(client: Client, incident_id: str, decision: Decision) -> None:
    """As incidentctl does: one update id, sent again while the answer is lost; a person ahead of the
    incident (the postmortem not drafted yet) runs the command again a moment later, under a new id."""
    update_id = uuid.uuid4().hex
    deadline = time.monotonic() + 180
    while True:
        try:
            await send_decision(client, incident_id, decision, update_id=update_id, retry_within=timedelta(seconds=30))
            return
        except RPCError as err:
            if "Workflow Task in failed state" in str(err):
                raise AssertionError(
                    f"{incident_id} is stuck: its workflow task fails (the worker log says why, "
                    f"often a non-determinism error), so {type(decision).__name__} cannot land "
                    "and the incident is lost"
                ) from err
            raise
        except Refused as refused:
            if time.monotonic() > deadline:
                raise
            if "did not confirm the decision" in str(refused):
                continue  # no worker answered within 30 s: the same id again
            if not any(reason in str(refused) for reason in NOT_YET):
                raise
            update_id = uuid.uuid4().hex
            await asyncio.sleep(0.5)


async def live_through(
    client: Client, settings: Settings, policy: Policy, peers: Peers, tag: str, pause: Callable[[], Awaitable[None]]
) -> str:
    """One incident from its alert to its close."""
    event = AlertEvent(
        source="fault-test",
        dedup_key=tag,
        fingerprint=tag,
        title=f"Checkout drill {tag}",
        severity=Severity.SEV1,
        service="checkout",
        labels={"severity": "critical"},
    )
    incident_id = incident_id_for(event.source, event.dedup_key)
    await send_alert(client, settings, policy, event)
    # bob acknowledges the page he got
    await until(
        lambda: any(alias.startswith(incident_id) for alias in peers.opsgenie.alerts), f"the page of {incident_id}"
    )
    await pause()
    await decide(client, incident_id, Acknowledge(actor="bob"))
    for decision in DECISIONS:
        await pause()
        if isinstance(decision, ReviewHeld):  # the review is held once alice was invited to it
            await until(lambda: invited(peers, incident_id), f"the review invitation of {incident_id}")
        await decide(client, incident_id, decision)
    return incident_id


def invited(peers: Peers, incident_id: str) -> bool:
    """Alice's Slack DM inviting her to the incident's post-incident review has arrived. Held before it (its
    postmortem's draft slowed by a kill), the review would make the invitation moot, and the incident rightly
    sends none: the run would differ from the one without kills by the person's timing, not by a loss."""
    keys = (
        (m.get("metadata") or {}).get("event_payload", {}).get("idempotency_key", "")
        for channel in peers.slack.channels.values()
        if channel.is_im
        for m in channel.messages
    )
    return any(key.startswith(incident_id) and ":review:invite:" in key for key in keys)


# --- one run -------------------------------------------------------------------------------------------------


@dataclass
class Run:
    peers: Peers
    data: Path
    incidents: list[str]
    states: dict[str, IncidentState]  # of the incidents that closed
    stuck: dict[str, str]  # incident -> why it could not be driven to its close
    kills: list[float]
    seconds: float


async def run_incidents(
    env: WorkflowEnvironment, peers: Peers, code: Path, data: Path, count: int, *, kills: bool, rng: random.Random
) -> Run:
    data.mkdir(parents=True)
    client = env.client
    settings = peers.configure(
        Settings(
            _env_file=None,
            temporal_address=client.service_client.config.target_host,
            temporal_namespace=client.namespace,
            incident_task_queue=f"fault-{uuid.uuid4().hex[:8]}",
            outbox_path=data / "outbox.jsonl",
            incident_log_dir=data / "logs",
            decision_keys=write_keys_file(data / "decision-keys"),  # the workers trust the tests' signing key
            incident_policy=data / "policy.json",
        )
    )
    policy = run_under(settings, drill_policy())  # the workers run only what their policy file holds
    workers = Workers(environment(settings, code), data)
    workers.start(WORKERS)
    driven = asyncio.Event()
    killer = asyncio.create_task(kill_at_random(workers, rng, driven)) if kills else None
    started = time.monotonic()
    tags = [f"{data.name}-{n}" for n in range(count)]
    incidents = [incident_id_for("fault-test", tag) for tag in tags]

    async def pause() -> None:
        await asyncio.sleep(rng.uniform(*PACE) if kills else 0.3)

    async def one(n: int) -> str:
        await asyncio.sleep(n * 3 if kills else 0)  # the incidents of a run overlap, each at its own stage
        return await live_through(client, settings, policy, peers, tags[n], pause)

    try:
        # an incident that cannot be driven on is reported with the others' figures, not alone
        lives = await asyncio.gather(*(one(n) for n in range(count)), return_exceptions=True)
        stuck = {
            incident: f"{type(life).__name__}: {life}"
            for incident, life in zip(incidents, lives, strict=True)
            if isinstance(life, BaseException)
        }
        driven.set()
        if killer is not None:
            await killer
        states = {
            incident: await asyncio.wait_for(
                client.get_workflow_handle(incident, result_type=IncidentState).result(), timeout=180
            )
            for incident in incidents
            if incident not in stuck
        }
        if stuck:
            await keep_histories(client, incidents, data / "histories")
        assert not workers.crashed(), workers.crashed()
    finally:
        if killer is not None:
            killer.cancel()
        await workers.stop()
    return Run(peers, data, incidents, states, stuck, workers.kills, time.monotonic() - started)


async def keep_histories(client: Client, incidents: list[str], into: Path) -> None:
    """The incidents' histories, for `temporalio.worker.Replayer` to find what went wrong."""
    into.mkdir()
    for incident_id in incidents:
        try:
            history = await client.get_workflow_handle(incident_id).fetch_history()
        except Exception as err:  # never opened, or the server is gone: keep what there is
            (into / f"{incident_id}.error").write_text(str(err))
            continue
        (into / f"{incident_id}.json").write_text(history.to_json())
    print(f"\nthe incidents' histories are in {into}")


# --- what each peer received ------------------------------------------------------------------------------


@dataclass
class Delivery:
    peer: str
    incident: str
    what: str  # the delivery, the same in every run (the incident and the run's details made generic)
    same: str  # what makes two deliveries the same one (the key, or for SMTP the Message-ID and recipient)
    arrived: float | None = None


@dataclass
class Census:
    deliveries: list[Delivery] = field(default_factory=list)

    def add(self, peer: str, text: str, same: str, run: Run, arrived: float | None = None) -> None:
        incident = next((i for i in run.incidents if i in text or i.lower() in text), "")
        self.deliveries.append(Delivery(peer, incident, generic(text, run), f"{peer} {same}", arrived))

    def of(self, incident: str) -> set[tuple[str, str]]:
        return {(d.peer, d.what) for d in self.deliveries if d.incident == incident}

    def repeated(self) -> dict[str, list[list[Delivery]]]:
        """peer -> the copies of each delivery that arrived more than once, in order of arrival."""
        copies: dict[str, list[Delivery]] = defaultdict(list)
        for d in self.deliveries:
            copies[d.same].append(d)
        repeated: dict[str, list[list[Delivery]]] = defaultdict(list)
        for same in copies.values():
            if len(same) > 1:
                repeated[same[0].peer].append(sorted(same, key=lambda d: d.arrived or 0))
        return repeated


def generic(text: str, run: Run) -> str:
    """The same delivery in another run reads the same: no incident id, opening time, clock, port or path."""
    text = text.replace(str(run.data), "{DATA}")
    text = re.sub(r"INC-[A-Z2-7]{8}(@\d{8}T\d{6})?", "{INC}", text)
    text = re.sub(r"inc-[a-z2-7]{8}", "{inc}", text)
    text = re.sub(r"(baseline|faults)-\d+", "{N}", text)
    text = re.sub(r"http://127\.0\.0\.1:\d+", "{PEER}", text)
    text = re.sub(r"/j/\d+", "/j/{MEETING}", text)
    text = re.sub(r"\d{8}-\d{4}", "{OPENED}", text)  # in a postmortem's file name
    text = re.sub(r"\d{4}-\d{2}-\d{2}", "{DATE}", text)
    return re.sub(r"\d{1,2}:\d{2}", "{TIME}", text)


def census(run: Run) -> Census:
    c, peers = Census(), run.peers
    for channel in peers.slack.channels.values():
        where = f"dm {sorted(channel.members)}" if channel.is_im else "incident channel"
        incident = re.search(r"inc-[a-z2-7]{8}", channel.name)
        if incident:  # a second channel for an incident (`<name>-2`) would be a repeat
            c.add("slack", f"channel {channel.name}", f"channel {incident.group()}", run)
            if channel.is_archived:
                c.add("slack", f"archived {channel.name}", f"archived {channel.id}", run)
        for message in channel.messages:
            key = (message.get("metadata") or {}).get("event_payload", {}).get("idempotency_key", "")
            c.add("slack", f"{where}: {key}", f"{channel.id} {key}", run)
    # OpsGenie de-duplicates on the alias: a page notifies again only when its alias is not open
    open_aliases: set[str] = set()
    for request in peers.opsgenie.received:
        if request.method != "POST":
            continue
        if request.path == "/v2/alerts":
            alias = request.params.get("alias", "")
            if alias not in open_aliases:
                open_aliases.add(alias)
                c.add("opsgenie", f"page {alias}", f"page {alias}", run)
        else:  # acknowledging or closing again changes nothing: each request is a delivery of its own
            alias, action = request.path.split("/")[3:5]
            if action == "close":
                open_aliases.discard(alias)
            c.add("opsgenie", f"{action} {alias}", f"{action} {alias} #{len(c.deliveries)}", run)
    for message in peers.telegram.sent:
        c.add(
            "telegram",
            f"chat {message['chat']['id']}: {message['text']}",
            f"{message['chat']['id']} {message['text']}",
            run,
            message.get("arrived"),
        )
    for meeting in peers.zoom.meetings:
        c.add("zoom", f"meeting {meeting['topic']}", meeting["topic"], run, meeting.get("arrived"))
    for delivery, arrived in zip(peers.mailbox.deliveries, peers.mailbox.arrived, strict=True):
        mail, [recipient] = delivery.message, delivery.recipients
        body = mail.get_body(("plain",))
        first_line = body.get_content().splitlines()[0] if body else ""
        c.add(
            "email",
            f"to {recipient}: {mail['Subject']}: {first_line}",
            f"{mail['Message-ID']} {recipient}",
            run,
            arrived,
        )
    for issue in peers.jira.issues.values():
        label = issue["fields"]["labels"][0]
        incident = label.removeprefix("incident-").rpartition("-")[0]
        c.add("jira", f"record issue {incident}", f"issue {label}", run)
    for log in sorted((run.data / "logs").rglob("*.md")):
        for marker in re.findall(r"^## .*<!-- (.+) -->$", log.read_text(), flags=re.MULTILINE):
            c.add("incident log", f"{log.name}: {marker}", f"{log} {marker}", run)
    for state in run.states.values():
        for entry in state.timeline:
            if entry.kind in {
                "acknowledge",
                "status_update",
                "approve_statement",
                "resolve",
                "review_held",
                "publish_postmortem",
                "close",
            }:
                which = entry.text.split(" for ")[0] if entry.kind == "approve_statement" else entry.kind  # S1, S2
                c.add("decision", f"{state.incident_id} {which}", f"{state.incident_id} {which}", run)
    return c


def records_unlike_timelines(run: Run) -> list[str]:
    """Each closed incident has one Jira issue, whose comments are its timeline but the alert lines, in order."""
    problems = []
    for s in run.states.values():
        issues = [i for i in run.peers.jira.issues.values() if jira_label(s.occurrence) in i["fields"]["labels"]]
        if len(issues) != 1:
            problems.append(f"{s.incident_id} has {len(issues)} Jira issues")
            continue
        written = run.peers.jira.comments(issues[0]["key"])
        expected = [entry.line(s.occurrence) for entry in record_history(s.timeline)]
        if written != expected:
            pairs = zip(written, expected, strict=False)
            at = next((n for n, (w, e) in enumerate(pairs) if w != e), min(len(written), len(expected)))
            problems.append(
                f"{s.incident_id}: its issue holds {len(written)} comments, its timeline {len(expected)} entries; "
                f"from #{at + 1} the issue holds {written[at : at + 3]}, the timeline says {expected[at : at + 3]}"
            )
    return problems


def failures(run: Run) -> list[str]:
    """Deliveries that finally failed, as the incidents' timelines say."""
    return [
        f"{state.incident_id}: {entry.text}"
        for state in run.states.values()
        for entry in state.timeline
        if " failed" in entry.text
    ]


# --- the test ------------------------------------------------------------------------------------------------


@pytest.fixture
def code(tmp_path: Path) -> Path:
    (tmp_path / "code").mkdir()
    return snapshot(tmp_path / "code")


@pytest.fixture
async def baseline(dev_env: WorkflowEnvironment, tmp_path: Path, code: Path) -> AsyncIterator[Run]:
    async with Peers() as peers:
        yield await run_incidents(
            dev_env, peers, code, tmp_path / "baseline", BASELINE_INCIDENTS, kills=False, rng=random.Random(0)
        )


async def test_workers_killed_at_random_lose_nothing_and_repeat_only_what_the_readme_allows(
    dev_env: WorkflowEnvironment, tmp_path: Path, code: Path, baseline: Run
):
    seed = int(os.environ.get("FAULT_SEED", random.randrange(10**6)))
    async with Peers() as peers:
        run = await run_incidents(
            dev_env, peers, code, tmp_path / "faults", INCIDENTS, kills=True, rng=random.Random(seed)
        )
        expected_census, got = census(baseline), census(run)

    expected = set.intersection(*(expected_census.of(i) for i in baseline.incidents))
    lost = {incident: sorted(expected - got.of(incident)) for incident in run.incidents}
    repeated = got.repeated()
    per_peer = Counter(d.peer for d in got.deliveries)
    unexplained: list[str] = []
    gaps: list[float] = []  # from a repeat's first copy to the kill that cut its attempt off
    retried_after: list[float] = []  # from the first copy to the repeat
    for peer in ("email", "telegram", "zoom"):
        for copies in repeated.get(peer, []):
            for first, again in itertools.pairwise(copies):
                assert first.arrived is not None and again.arrived is not None
                kill = next((k for k in run.kills if first.arrived <= k <= again.arrived), None)
                if kill is None or kill - first.arrived > WINDOW:
                    unexplained.append(f"{peer}: {first.what} (again {again.arrived - first.arrived:.1f} s later)")
                else:
                    gaps.append(kill - first.arrived)
                    retried_after.append(again.arrived - first.arrived)
    print(
        f"\nfault run (seed {seed}): {len(run.incidents)} incidents ({len(run.stuck)} stuck), {len(run.kills)} kills "
        f"of {WORKERS} workers, {run.seconds:.0f} s; baseline: {len(baseline.incidents)} incidents, "
        f"{len(expected)} deliveries each"
    )
    for incident, why in run.stuck.items():
        print(f"  stuck: {incident}: {why}")
    for peer, count in sorted(per_peer.items()):
        extra = sum(len(copies) - 1 for copies in repeated.get(peer, []))
        print(f"  {peer:13} {count:4} delivered, {extra} repeated")
    if gaps:
        print(
            f"  each repeat's first copy arrived {min(gaps):.2f}-{max(gaps):.2f} s before the kill that cut its "
            f"attempt off; the repeat came {min(retried_after):.0f}-{max(retried_after):.0f} s after the first"
        )
    missing = Counter(item for items in lost.values() for item in items)
    print(f"  missing against the run without kills: {sum(missing.values())} deliveries")
    for (peer, what), incidents in sorted(missing.items()):
        print(f"    {peer} {what} (in {incidents} incidents)")
    differing = set.union(*(expected_census.of(i) for i in baseline.incidents)) - expected
    if differing:
        print(f"  the baseline's incidents differ in {sorted(differing)}")

    assert not run.stuck, f"incidents stuck before their close (lost): {run.stuck}"
    assert not any(lost.values()), f"lost: { {i: items for i, items in lost.items() if items} }"
    assert not failures(run), failures(run)
    assert not records_unlike_timelines(run), records_unlike_timelines(run)
    assert not records_unlike_timelines(baseline), records_unlike_timelines(baseline)
    for peer in ("slack", "opsgenie", "incident log", "decision", "jira"):
        assert not repeated.get(peer), f"{peer} received twice: {[c[0].what for c in repeated[peer]]}"
    assert not unexplained, f"repeated without a kill just after the first copy: {unexplained}"
    assert len(run.kills) >= MIN_KILLS
    assert all(state.status.value == "closed" for state in run.states.values())
    assert not baseline.stuck, baseline.stuck
