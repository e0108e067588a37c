"""What the HTTP webhook costs over the raw SDK: the same alerts through both, in one run.

    .venv/bin/python -m bench.ingest [--alerts 1000] [--storm 0.5] [--concurrency 32] [--rounds 4]
                                     [--address 127.0.0.1:7233]

Starts a Temporal dev server from the venv (or uses --address, which must be on loopback), and the
worker and the HTTP service as processes of their own, as `make run` and production run them (in one
process they would share a GIL with whatever path is measured). Both paths get the same mix:
a share of alerts with distinct dedup keys (each opens an incident) and the rest in one storm group
(one incident per round).

- sdk: this process calls signal-with-start (client.alerts.send_alert) directly.
- http: a separate load-generator process POSTs each alert to /alerts/generic with httpx. It is a
  separate process because an alert source is one: in this process its client-side Python would
  compete with the server it measures.

Rounds alternate the two paths in ABBA order (sdk, http, http, sdk, ...) so that both meet the same
worker backlog: the worker is busy with the incidents the alerts open.
Afterwards every accepted alert must be on its incident (the `state` query's alert_count). Prints
alerts/s, p50/p99 latency and the ratio http/sdk; exits 1 if an alert is missing, 2 if the ratio is
below the 0.8 target.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from temporalio.client import Client
from temporalio.service import RPCError

from bench._stack import free_loopback_port, processes, run_to_exit, service_env, temporal, wait_until_healthy
from client.alerts import send_alert
from policy_file import load_policy
from settings import ROOT, Settings
from workflows.contracts.policy import Policy
from workflows.contracts.temporal.ids import INCIDENT_STATE, incident_id_for
from workflows.incident.model import AlertEvent, IncidentState

TARGET_RATIO = 0.8
# httpcore asks for `sniffio` on every request; when it is not installed each miss is a full import
# search (a third of the load generator's time). None in sys.modules makes the miss instant.
sys.modules.setdefault("sniffio", None)  # type: ignore[arg-type]

Body = dict[str, str]


@dataclass
class Totals:
    """One path's measurements over all its rounds."""

    name: str
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    expected: dict[str, int] = field(default_factory=dict)  # incident id -> alerts it must have

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds

    def percentile_ms(self, p: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000

    def add(self, seconds: float, latencies: list[float], bodies: list[Body]) -> None:
        self.seconds += seconds
        self.latencies += latencies
        for body in bodies:
            incident_id = incident_id_for("generic", body["dedup_key"])
            self.expected[incident_id] = self.expected.get(incident_id, 0) + 1


def alerts_for(label: str, count: int, storm_share: float) -> list[Body]:
    """Generic webhook bodies: distinct groups and one storm group, shuffled together as in a real storm."""
    storm = int(count * storm_share)
    run = f"{label}-{uuid.uuid4().hex[:8]}"
    bodies = [
        {
            "dedup_key": f"{run}-{i}",
            "title": f"bench alert {i}",
            "severity": "SEV3",
            "service": "bench",
            "fingerprint": f"fp-{i}",
        }
        for i in range(count - storm)
    ]
    bodies += [
        {
            "dedup_key": f"{run}-storm",
            "title": "bench storm",
            "severity": "SEV3",
            "service": "bench",
            "fingerprint": f"storm-{i}",
        }
        for i in range(storm)
    ]
    random.Random(count).shuffle(bodies)
    return bodies


async def bounded(
    bodies: list[Body], concurrency: int, send: Callable[[Body, int], Awaitable[None]]
) -> tuple[float, list[float]]:
    """Send every body with `concurrency` senders; (elapsed seconds, per-alert latencies)."""
    queue = list(reversed(bodies))
    latencies: list[float] = []

    async def sender(number: int) -> None:
        while queue:
            body = queue.pop()
            started = time.perf_counter()
            await send(body, number)
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(sender(number) for number in range(concurrency)))
    return time.perf_counter() - started, latencies


def post_alerts(url: str, bodies: list[Body], concurrency: int) -> tuple[float, list[float]]:
    """The load generator, run in its own process: POST every body, each must be answered 202."""

    async def generate() -> tuple[float, list[float]]:
        # One client (one connection) per sender: httpcore's pool scans all its connections per request.
        async with contextlib.AsyncExitStack() as stack:
            clients = [
                await stack.enter_async_context(
                    httpx.AsyncClient(base_url=url, limits=httpx.Limits(max_connections=1), trust_env=False, timeout=30)
                )
                for _ in range(concurrency)
            ]

            async def send(body: Body, sender: int) -> None:
                answer = await clients[sender].post("/alerts/generic", json=body)
                if answer.status_code != 202:
                    raise RuntimeError(f"webhook answered {answer.status_code}: {answer.text}")

            return await bounded(bodies, concurrency, send)

    return asyncio.run(generate())


async def missing_alerts(client: Client, expected: dict[str, int], deadline_seconds: float = 180) -> int:
    """How many accepted alerts are not on their incidents (0 is the only good answer)."""
    gate = asyncio.Semaphore(32)

    async def missing(incident_id: str, count: int) -> int:
        deadline = time.monotonic() + deadline_seconds
        async with gate:
            seen = 0
            while seen < count and time.monotonic() < deadline:
                try:
                    state: IncidentState = await client.get_workflow_handle(incident_id).query(
                        INCIDENT_STATE, result_type=IncidentState
                    )
                    seen = state.alert_count
                except RPCError:  # a busy worker can let a query time out: ask again
                    pass
                if seen < count:
                    await asyncio.sleep(0.2)  # accepted, but the worker has not applied the signal yet
            return max(0, count - seen)

    return sum(await asyncio.gather(*(missing(i, n) for i, n in expected.items())))


async def run(args: argparse.Namespace) -> int:
    client, env = await temporal(args.address)
    data = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    settings = Settings(
        _env_file=None,
        incident_task_queue=f"bench-{uuid.uuid4().hex[:8]}",
        outbox_path=data / "outbox.jsonl",
        incident_log_dir=data / "logs",
    )
    policy: Policy = load_policy(ROOT / "examples" / "policy.toml")
    port = free_loopback_port()
    url = f"http://127.0.0.1:{port}"
    env_vars = service_env(client, task_queue=settings.incident_task_queue, data=data, http_port=port)
    loop = asyncio.get_running_loop()
    sdk, http = Totals("sdk"), Totals("http")

    async def via_sdk(body: Body, _: int) -> None:
        await send_alert(client, settings, policy, AlertEvent(source="generic", **body))

    try:
        with (
            ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as generator,
            processes(env_vars, "worker", "starter.http.app", cwd=data),
        ):
            await wait_until_healthy(url)
            # Warm both paths (connections, imports in the generator process) before measuring.
            await bounded(alerts_for("warm", 50, 0.5), args.concurrency, via_sdk)
            await loop.run_in_executor(generator, post_alerts, url, alerts_for("warm", 50, 0.5), args.concurrency)
            per_round = args.alerts // args.rounds
            for round_ in range(args.rounds):
                # ABBA order (sdk, http, http, sdk, ...): neither path always meets the other's backlog.
                for path in (sdk, http) if round_ % 2 == 0 else (http, sdk):
                    bodies = alerts_for(f"{path.name}{round_}", per_round, args.storm)
                    if path is sdk:
                        sdk.add(*await bounded(bodies, args.concurrency, via_sdk), bodies)
                    else:
                        http.add(
                            *await loop.run_in_executor(generator, post_alerts, url, bodies, args.concurrency), bodies
                        )
            lost = {t.name: await missing_alerts(client, t.expected) for t in (sdk, http)}
    finally:
        if env is not None:
            await env.shutdown()

    print(
        f"{args.alerts} alerts per path in {args.rounds} rounds ({args.storm:.0%} of each round in one "
        f"storm group), concurrency {args.concurrency}"
    )
    for totals in (sdk, http):
        print(
            f"{totals.name:>5}: {totals.rate:7.1f} alerts/s   p50 {totals.percentile_ms(0.5):6.1f} ms   "
            f"p99 {totals.percentile_ms(0.99):7.1f} ms   incidents {len(totals.expected):5}   "
            f"accepted alerts missing from their incident: {lost[totals.name]}"
        )
    ratio = http.rate / sdk.rate
    print(f"ratio http/sdk: {ratio:.2f} (target >= {TARGET_RATIO})")
    if any(lost.values()):
        return 1
    return 0 if ratio >= TARGET_RATIO else 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--alerts", type=int, default=1000, help="alerts per path")
    parser.add_argument("--storm", type=float, default=0.5, help="share of each round's alerts in one storm group")
    parser.add_argument("--concurrency", type=int, default=32, help="alerts in flight per path")
    parser.add_argument("--rounds", type=int, default=4, help="rounds of both paths, in ABBA order")
    parser.add_argument("--address", help="an existing Temporal server on loopback (default: start one)")
    run_to_exit(run(parser.parse_args()))


if __name__ == "__main__":
    main()
