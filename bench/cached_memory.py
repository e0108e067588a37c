"""What one cached incident costs the worker in memory, by kind of incident: the figure that sizes
WORKER_CACHED_WORKFLOWS (README, Configuration).

    .venv/bin/python -m bench.cached_memory [--incidents 500] [--address 127.0.0.1:7233]

Starts a Temporal dev server from the venv (or uses --address, on loopback) and ONE worker in a process of
its own, with a cache larger than every workflow of the run, so that nothing is evicted. This process
opens incidents as the HTTP service does after parsing (client.alerts.send_alert), in two batches of
--incidents distinct alerts, under bench.scale's policy (bench/scale_policy.py: the example policy with
business hours around the clock and the clocks after the first page waiting past the run, so that no
timer fires while it measures):

- SEV3: not confirmed at once, so each waits for its assessment (one workflow);
- SEV1: confirmed at once and paged, with a bridge, a channel and a message loop (two workflows: the
  incident and its message loop).

After each batch it waits until the worker's cache holds exactly the run's workflows (its Prometheus
sticky_cache_size) and its outbox has stopped growing for a few seconds, then reads the worker's resident
memory (/proc/<pid>/status VmRSS). Prints, per batch, the memory before and after and what that comes to
per incident and per workflow. Exits 1 if the cache never holds them, or holds more (a workflow the bench
did not count), or the worker dies.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import tempfile
import time
import uuid
from pathlib import Path

from temporalio.client import Client

from bench._measure import ResidentMemory, mb, worker_metrics
from bench._stack import Children, exited, free_loopback_port, processes, run_to_exit, service_env, temporal
from bench.scale import alert_for, send
from bench.scale_policy import bench_policy
from settings import Settings
from workflows.contracts.policy import Policy

CACHE = 100_000  # more than every workflow of a run: nothing is evicted
WARM_ALERTS = 10  # SEV1, before the first reading: the worker's first workflows pay for imports
QUIET_SECONDS = 5.0  # the outbox unchanged this long: the incidents' first deliveries are done
PATIENCE = 300.0  # seconds a batch may take to be cached and quiet
ASSESSMENT_MINUTES = 60  # the SEV3 incidents' assessment deadline: past the run
SENDING = 32  # signal-with-starts in flight


async def open_batch(
    client: Client, settings: Settings, policy: Policy, run_id: str, severity: str, count: int
) -> None:
    gate = asyncio.Semaphore(SENDING)

    async def one(number: int) -> None:
        _, body = alert_for(f"{run_id}-{severity}", number, severity)
        async with gate:
            await send(client, settings, policy, body)

    await asyncio.gather(*(one(n) for n in range(count)))


def size_of(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


async def settled(children: Children, metrics_port: int, outbox: Path, workflows: int) -> str:
    """Until the cache holds `workflows` and the outbox is quiet: "" then, else what went wrong."""
    give_up, size, quiet_since = time.monotonic() + PATIENCE, -1, time.monotonic()
    cached = 0.0
    while time.monotonic() < give_up:
        await asyncio.sleep(1.0)
        if gone := exited(children):
            return gone
        now_size = await asyncio.to_thread(size_of, outbox)
        if now_size != size:
            size, quiet_since = now_size, time.monotonic()
        cached = (await worker_metrics(metrics_port)).get("sticky_cache_size", 0)
        if cached > workflows:
            return f"the cache holds {cached:.0f} workflows, {workflows} expected"
        if cached == workflows and time.monotonic() - quiet_since >= QUIET_SECONDS:
            return ""
    return f"the cache held {cached:.0f} of {workflows} workflows after {PATIENCE:.0f} s"


async def run(args: argparse.Namespace) -> int:
    client, server = await temporal(args.address)
    data = Path(tempfile.mkdtemp(prefix="bench-cached-memory-"))
    run_id = f"mem-{uuid.uuid4().hex[:8]}"
    metrics_port = free_loopback_port()
    task_queue = f"bench-{run_id}"
    policy_path, policy = bench_policy(data, ASSESSMENT_MINUTES, example_clocks=False)
    env = service_env(
        client,
        task_queue=task_queue,
        data=data,
        http_port=free_loopback_port(),
        WORKER_CACHED_WORKFLOWS=str(CACHE),
        METRICS_PORT=str(metrics_port),
        INCIDENT_POLICY=str(policy_path),
    )
    settings = Settings(_env_file=None, incident_task_queue=task_queue)
    outbox = data / "outbox.jsonl"
    batches = [("SEV3", 1, "each waits for its assessment"), ("SEV1", 2, "the incident and its message loop")]
    try:
        with processes(env, "worker", cwd=data) as children:
            memory = ResidentMemory(children["worker"].pid)
            await open_batch(client, settings, policy, f"{run_id}-warm", "SEV1", WARM_ALERTS)
            workflows = 2 * WARM_ALERTS
            if problem := await settled(children, metrics_port, outbox, workflows):
                print(f"bench: warm-up: {problem}")
                return 1
            print(f"worker: one process, cache {CACHE:,} (nothing evicted); warm-up: {WARM_ALERTS} SEV1 incidents")
            for severity, per_incident, what in batches:
                before = memory.sample()
                await open_batch(client, settings, policy, run_id, severity, args.incidents)
                workflows += per_incident * args.incidents
                if problem := await settled(children, metrics_port, outbox, workflows):
                    print(f"bench: {severity}: {problem}")
                    return 1
                after = memory.sample()
                print(
                    f"{args.incidents} {severity} incidents ({per_incident} workflow(s) each: {what}): "
                    f"worker RSS {mb(before):.0f} MB -> {mb(after):.0f} MB, "
                    f"{(after - before) / args.incidents:.0f} KB per incident, "
                    f"{(after - before) / (args.incidents * per_incident):.0f} KB per cached workflow"
                )
    finally:
        if server is not None:
            await server.shutdown()
        shutil.rmtree(data, ignore_errors=True)
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--incidents", type=int, default=500, help="incidents of each kind")
    parser.add_argument("--address", help="an existing Temporal server on loopback (default: start one)")
    args = parser.parse_args()
    if args.incidents < 1:
        parser.error("--incidents must be positive")
    run_to_exit(run(args))


if __name__ == "__main__":
    main()
