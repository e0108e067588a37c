"""How soon an incident pages during a storm: distinct SEV1 alerts at a steady rate, one worker.

    .venv/bin/python -m bench.storm [--rate 20] [--duration 60] [--grace 120] [--max-in-flight 256]
                                    [--history-sample 50] [--policy examples/policy.toml]
                                    [--paging-provider opsgenie|pagerduty|jsm|direct]
                                    [--cached-workflows N] [--workflow-tasks N] [--activities N]
                                    [--address 127.0.0.1:7233]

(The storm the goal names, 30 SEV1 alerts/s for 60 s, is `--rate 30`; the default stays 20, which the
figures in bench/RESULTS.md were measured at.)

Starts a Temporal dev server from the venv (or uses --address, which must be on loopback), and ONE
HTTP service in a process of its own, as production runs it: that process is also the one worker
(HTTP_RUNS_WORKER, the default), so a new incident starts eagerly in it. A separate load
generator process POSTs `rate` alerts a second for `duration` seconds to /alerts/generic, on a fixed
schedule (open loop: a slow answer does not slow the storm, up to --max-in-flight unanswered). Every
alert has its own dedup key, so each opens an incident, and severity SEV1, which the policy confirms
at once (no one's assessment awaited): each incident pages at confirmation, through its escalation's
first tier.

First page: with no accounts configured every delivery is a line of the worker's local outbox, and
each line carries the time it was written (`at`). A page is a line of kind "page" (only page_open
writes those), or under a policy that pages people directly (--policy), a push, SMS or call line: the first
step of a person's notification rules; its payload or key names the incident. Alert -> first page is that
time minus the wall time at which the generator began the alert's POST (the same machine's clock). A 503 answer is
retried after its Retry-After, as Alertmanager would; the first POST's time still counts.

A few warm-up alerts are paged before the storm and not counted (the worker's first workflows pay for
imports). After the storm (the last alert answered) the bench waits up to --grace seconds for every
accepted alert's incident to page. Prints alerts sent and accepted, incidents, alert -> first page
p50/p99/max, incidents never paged within the grace, and the CPU that the HTTP service (the worker), the
dev server and everything else took from the storm's start to the last page; exits 1 if any alert was refused or any
incident never paged.

Where the history goes: then, once the last of them is FIRST_MINUTE (60) s old (the bench waits if it must, with
the worker still running), it reads from the dev server the histories of --history-sample of the storm's incidents
chosen evenly in the order they were sent (0: none), a few at a time, and prints the median number of events
each incident's workflow wrote in its first minute (events at most 60 s after its WorkflowExecutionStarted), of
workflow tasks completed among them, and of each of the commonest event types (activities scheduled, timers
started, search attribute upserts, children started, ...). An incident that continued as new is read in its
first run. Only the incident's own workflow counts, not its children (the message loop, the ladder).

Ctrl-C or SIGTERM stops it, and its processes, at any point.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import re
import shutil
import signal
import tempfile
import time
import tomllib
import uuid
from collections import Counter
from contextlib import suppress
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from temporalio.client import Client

from bench._measure import Cpu, FirstMinute, dev_server_pid, first_minute_summary, first_minutes
from bench._stack import (
    add_worker_flags,
    chosen_worker_settings,
    exited,
    free_loopback_port,
    imported_from,
    processes,
    run_to_exit,
    service_env,
    temporal,
    wait_until_healthy,
    worker_settings_in_effect,
)
from settings import ROOT
from workflows.contracts.policy import DIRECT, PAGING_PROVIDERS
from workflows.contracts.temporal.ids import incident_id_for

SOURCE = "generic"
WARM_ALERTS = 3
ATTEMPTS = 5  # per alert, on 503 (Temporal unavailable) or a transport error
REQUEST_TIMEOUT = 30.0
MAX_RETRY_AFTER = 5.0
POLL_SECONDS = 1.0
PROGRESS_SECONDS = 10.0
FIRST_MINUTE = 60.0  # seconds of each sampled incident's history counted
CLOCK_MARGIN = 1.0  # seconds waited past FIRST_MINUTE: the history's clock is the dev server's


@dataclass
class Sent:
    """One alert as the generator saw it."""

    dedup_key: str
    posted_at: float  # wall time (time.time()) the first POST began
    answered_after: float  # seconds from the first POST to the final answer
    status: int  # the final answer's status; 0 if none (transport errors)
    attempts: int

    @property
    def incident_id(self) -> str:
        return incident_id_for(SOURCE, self.dedup_key)


def body(dedup_key: str, number: int) -> dict[str, Any]:
    return {
        "dedup_key": dedup_key,
        "title": f"storm alert {number}",
        "severity": "SEV1",
        "service": "storm",
        "fingerprint": f"storm-{number}",
        "description": "bench.storm: a distinct SEV1 alert",
    }


async def post_alert(http: httpx.AsyncClient, dedup_key: str, number: int) -> Sent:
    """POST one alert; retry 503 (after Retry-After) and transport errors, ATTEMPTS in all."""
    posted_at, started = time.time(), time.monotonic()
    status = 0
    for attempt in range(1, ATTEMPTS + 1):
        retry_after = 1.0
        try:
            answer = await http.post(f"/alerts/{SOURCE}", json=body(dedup_key, number))
            status = answer.status_code
            if status != 503:
                break
            with suppress(ValueError):
                retry_after = min(MAX_RETRY_AFTER, float(answer.headers.get("retry-after", "1")))
        except httpx.TransportError:
            status = 0
        if attempt < ATTEMPTS:
            await asyncio.sleep(retry_after)
    return Sent(dedup_key, posted_at, time.monotonic() - started, status, attempt)


def generate(url: str, run_id: str, rate: float, duration: float, max_in_flight: int, out: str) -> None:
    """The load generator, in a process of its own: the storm, written as JSON to `out`."""

    async def storm() -> dict[str, Any]:
        count = max(1, round(rate * duration))
        gate = asyncio.Semaphore(max_in_flight)
        tasks: list[asyncio.Task[Sent]] = []
        max_lag = 0.0
        limits = httpx.Limits(max_connections=max_in_flight, max_keepalive_connections=max_in_flight)
        async with httpx.AsyncClient(base_url=url, limits=limits, trust_env=False, timeout=REQUEST_TIMEOUT) as http:

            async def one(number: int) -> Sent:
                try:
                    return await post_alert(http, f"{run_id}-{number}", number)
                finally:
                    gate.release()

            started = time.monotonic()
            for number in range(count):
                due = started + number / rate
                if (delay := due - time.monotonic()) > 0:
                    await asyncio.sleep(delay)
                await gate.acquire()  # at most max_in_flight unanswered: past that the storm falls behind
                max_lag = max(max_lag, time.monotonic() - due)
                tasks.append(asyncio.create_task(one(number)))
            sending = time.monotonic() - started
            sent = await asyncio.gather(*tasks)
            return {"sending_seconds": sending, "max_lag": max_lag, "sent": [asdict(s) for s in sent]}

    result = asyncio.run(storm())
    Path(out).write_text(json.dumps(result), encoding="utf-8")


# What a page is in the outbox: a paging provider's page (page_open), or a person's notification rule
# reaching them directly (ntfy's push, Twilio's SMS or call), whose key names the incident.
PAGE_KINDS = {"page", "push", "sms", "voice"}
INCIDENT_IN_KEY = re.compile(r"INC-[A-Z0-9]+")


def _incident_in(key: str) -> str | None:
    found = INCIDENT_IN_KEY.search(key)
    return found.group() if found else None


class Pages:
    """The first page of each incident, read from the worker's outbox as it grows."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.first: dict[str, float] = {}  # incident id -> wall time its first page was written
        self.kinds: Counter[str] = Counter()  # "system kind" -> lines: what the worker got done

    def read(self) -> None:
        """Read the lines written since the last call (a torn last line waits for the next)."""
        if not self.path.exists():
            return
        with self.path.open("rb") as outbox:
            outbox.seek(self.offset)
            data = outbox.read()
        complete = data.rfind(b"\n") + 1
        self.offset += complete
        for line in data[:complete].splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            self.kinds[f"{entry.get('system')} {entry.get('kind')}"] += 1
            if entry.get("kind") not in PAGE_KINDS:
                continue
            incident_id = (entry.get("payload") or {}).get("incident_id") or _incident_in(entry.get("key", ""))
            at = datetime.fromisoformat(entry["at"]).timestamp()
            if incident_id and at < self.first.get(incident_id, float("inf")):
                self.first[incident_id] = at

    async def wait_for(self, incidents: set[str], seconds: float, progress: bool = False) -> float:
        """Until every incident has paged or `seconds` pass; returns the deadline (wall time)."""
        deadline = time.time() + seconds
        shown = time.monotonic()
        while True:
            await asyncio.to_thread(self.read)
            waiting = len(incidents - self.first.keys())
            if not waiting or time.time() >= deadline:
                return deadline
            if progress and time.monotonic() - shown >= PROGRESS_SECONDS:
                shown = time.monotonic()
                print(
                    f"  ... {len(incidents) - waiting}/{len(incidents)} incidents paged, "
                    f"{deadline - time.time():.0f} s of grace left",
                    flush=True,
                )
            await asyncio.sleep(POLL_SECONDS)


def percentile(ordered: list[float], p: float) -> float:
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


def evenly(items: list[Sent], count: int) -> list[Sent]:
    """`count` of `items` spread evenly over them, the first and the last included (all if there are fewer)."""
    if count >= len(items):
        return list(items)
    if count == 1:
        return [items[len(items) // 2]]
    return [items[round(i * (len(items) - 1) / (count - 1))] for i in range(count)]


async def read_histories(client: Client, sample: list[Sent]) -> tuple[list[FirstMinute], dict[str, str]]:
    """The sampled incidents' first minutes, once the youngest is FIRST_MINUTE s old (its 202 came after its start)."""
    old_at = max(s.posted_at + s.answered_after for s in sample) + FIRST_MINUTE + CLOCK_MARGIN
    if (wait := old_at - time.time()) > 0:
        print(f"waiting {wait:.0f} s until the {len(sample)} sampled incidents are {FIRST_MINUTE:g} s old", flush=True)
        await asyncio.sleep(wait)
    started = time.monotonic()
    read, unread = await first_minutes(client, [s.incident_id for s in sample], FIRST_MINUTE)
    print(f"read {len(read)} histories in {time.monotonic() - started:.1f} s", flush=True)
    return read, unread


async def warm_up(url: str, pages: Pages, run_id: str) -> None:
    """A few alerts, paged before the storm: the worker's first workflows pay for imports."""
    async with httpx.AsyncClient(base_url=url, trust_env=False, timeout=REQUEST_TIMEOUT) as http:
        sent = await asyncio.gather(*(post_alert(http, f"{run_id}-warm-{n}", n) for n in range(WARM_ALERTS)))
    if any(s.status != 202 for s in sent):
        raise SystemExit(f"bench: warm-up alerts answered {[s.status for s in sent]}")
    await pages.wait_for({s.incident_id for s in sent}, 120)
    if not {s.incident_id for s in sent} <= pages.first.keys():
        raise SystemExit("bench: the warm-up incidents did not page within 120 s")


async def run_storm(url: str, args: argparse.Namespace, run_id: str, data: Path) -> dict[str, Any]:
    """The generator process, waited for (bounded); stopped if this bench is."""
    out = data / "storm.json"
    generator = multiprocessing.get_context("spawn").Process(
        target=generate, args=(url, run_id, args.rate, args.duration, args.max_in_flight, str(out)), daemon=True
    )
    generator.start()
    loop, exited = asyncio.get_running_loop(), asyncio.Event()
    loop.add_reader(generator.sentinel, exited.set)  # readable once the process has ended
    try:
        try:
            await asyncio.wait_for(exited.wait(), args.duration + ATTEMPTS * (REQUEST_TIMEOUT + MAX_RETRY_AFTER) + 60)
        except TimeoutError:
            raise SystemExit("bench: the load generator did not finish in time") from None
        generator.join()
        if generator.exitcode != 0:
            raise SystemExit(f"bench: the load generator exited with {generator.exitcode}")
        result: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
        return result
    finally:
        loop.remove_reader(generator.sentinel)
        if generator.is_alive():
            generator.terminate()
            generator.join(5)
            if generator.is_alive():
                generator.kill()
                generator.join()


def policy_for(policy: Path, paging_provider: str | None, data: Path) -> Path:
    """The policy file, or a copy of it paging by `paging_provider` instead: the same people, tiers and duties,
    so a provider and direct paging compare like for like. Paged by a provider, a person without a pager id
    gets their name; paged directly, one without a push topic or phone gets made-up ones, and the policy the
    default rules (push at once, SMS at +2 min, a call at +5) if it has none."""
    if paging_provider is None:
        return policy.resolve()
    raw = tomllib.loads(policy.read_text())
    raw["paging_provider"] = paging_provider
    for number, (name, person) in enumerate(raw.get("people", {}).items()):
        if paging_provider == DIRECT:
            person.setdefault("ntfy_topic", f"bench-{name}")
            person.setdefault("phone", f"+1555010{number:04d}")
        else:
            person.setdefault("pager_id", name)
    if paging_provider == DIRECT:
        steps = [{"channel": "push"}, {"channel": "sms", "after_minutes": 2}, {"channel": "voice", "after_minutes": 5}]
        raw.setdefault("notification_rules", {"high": steps})
    comms = raw.get("comms", {})
    if comms.get("templates_dir"):  # relative to the policy file, which the copy is not next to
        comms["templates_dir"] = str((policy.parent / comms["templates_dir"]).resolve())
    copy = data / f"{policy.stem}.{paging_provider}.json"
    copy.write_text(json.dumps(raw, default=str))
    return copy


async def run(args: argparse.Namespace) -> int:
    with suppress(NotImplementedError):  # SIGTERM stops the bench like Ctrl-C: the finally blocks clean up
        main_task = asyncio.current_task()
        assert main_task is not None
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main_task.cancel)
    load_before = os.getloadavg()
    client, server = await temporal(args.address)
    data = Path(tempfile.mkdtemp(prefix="bench-storm-"))
    run_id = f"storm-{uuid.uuid4().hex[:8]}"
    port = free_loopback_port()
    url = f"http://127.0.0.1:{port}"
    env = service_env(
        client,
        task_queue=f"bench-{run_id}",
        data=data,
        http_port=port,
        INCIDENT_POLICY=str(policy_for(args.policy, args.paging_provider, data)),
        **args.worker_settings,
    )
    pages = Pages(data / "outbox.jsonl")
    histories: list[FirstMinute] = []
    unread: dict[str, str] = {}
    try:
        print(f"workflows from {imported_from(env, 'workflows.incident.workflow', cwd=data)}", flush=True)
        print(f"worker: {worker_settings_in_effect(args.worker_settings)}", flush=True)
        with processes(env, "starter.http.app", cwd=data) as children:
            await wait_until_healthy(url, children=children)
            await warm_up(url, pages, run_id)
            cpu = Cpu(service=children["starter.http.app"].pid, server=dev_server_pid() if server is not None else None)
            cpu.mark("storm")
            print(
                f"storm: {args.rate:g} distinct SEV1 alerts/s for {args.duration:g} s "
                "into one worker (the HTTP service's) ...",
                flush=True,
            )
            storm = await run_storm(url, args, run_id, data)
            sent = [Sent(**s) for s in storm["sent"]]
            accepted = [s for s in sent if s.status == 202]
            incidents = {s.incident_id for s in accepted}
            print(f"storm sent; waiting up to {args.grace:g} s for the pages", flush=True)
            deadline = await pages.wait_for(incidents, args.grace, progress=True)
            cpu.mark("paged")
            if gone := exited(children):
                print(f"bench: {gone} during the run", flush=True)
            if args.history_sample and accepted:
                histories, unread = await read_histories(client, evenly(accepted, args.history_sample))
    finally:
        if server is not None:
            await server.shutdown()
        shutil.rmtree(data, ignore_errors=True)
    load_after = os.getloadavg()

    first_page: dict[str, float] = {}  # incident id -> seconds from its alert's POST to its first page
    for s in accepted:
        paged = pages.first.get(s.incident_id)
        if paged is not None and paged <= deadline:
            first_page[s.incident_id] = paged - s.posted_at
    latencies = sorted(first_page.values())
    never = len(incidents) - len(first_page)
    answers = sorted(s.answered_after for s in sent)
    print(
        f"alerts sent: {len(sent)} over {storm['sending_seconds']:.1f} s "
        f"({len(sent) / max(storm['sending_seconds'], 1e-9):.1f}/s achieved, {args.rate:g}/s asked; "
        f"the schedule fell behind by at most {storm['max_lag'] * 1000:.0f} ms), "
        f"accepted (202): {len(accepted)}, refused or unanswered: {len(sent) - len(accepted)}"
    )
    print(
        f"webhook answer: p50 {percentile(answers, 0.5) * 1000:.0f} ms, "
        f"p99 {percentile(answers, 0.99) * 1000:.0f} ms, max {answers[-1] * 1000:.0f} ms"
    )
    print(f"incidents: {len(incidents)}")
    if latencies:
        print(
            f"alert -> first page: p50 {percentile(latencies, 0.5):.2f} s, p99 {percentile(latencies, 0.99):.2f} s, "
            f"max {latencies[-1]:.2f} s (over {len(latencies)} paged incidents)"
        )
    else:
        print("alert -> first page: no incident paged")
    print(f"never paged within {args.grace:g} s after the storm: {never}")
    if args.history_sample and accepted:
        for line in first_minute_summary(histories, FIRST_MINUTE):
            print(line)
        if unread:
            print(f"histories not read: {len(unread)}, e.g. {next(iter(unread.items()))}")
    print(f"CPU from the storm's start until the last page (or the grace's end), {cpu.between('storm', 'paged')}")
    print(
        "outbox lines by system and kind (warm-up included): "
        + (", ".join(f"{kind} {n}" for kind, n in pages.kinds.most_common()) or "none")
    )
    print(
        f"load average (1/5/15 min): before {'/'.join(f'{x:.2f}' for x in load_before)}, "
        f"after {'/'.join(f'{x:.2f}' for x in load_after)}"
    )
    return 1 if never or len(accepted) < len(sent) else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=20.0, help="alerts per second")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of storm")
    parser.add_argument(
        "--grace", type=float, default=120.0, help="seconds after the storm an incident may still page and count"
    )
    parser.add_argument("--max-in-flight", type=int, default=256, help="unanswered alerts at most")
    parser.add_argument(
        "--history-sample",
        type=int,
        default=50,
        help="incidents whose first minute of history is read after the storm, chosen evenly (0: none)",
    )
    parser.add_argument(
        "--policy",
        type=Path,
        default=ROOT / "examples" / "policy.toml",
        help="the workers' policy (e.g. examples/policies/direct-paging.toml: pages by each person's rules)",
    )
    parser.add_argument(
        "--paging-provider",
        choices=PAGING_PROVIDERS,
        help="run --policy with this paging_provider instead of its own (direct against a provider, like for like)",
    )
    add_worker_flags(parser)
    parser.add_argument("--address", help="an existing Temporal server on loopback (default: start one)")
    args = parser.parse_args()
    if args.rate <= 0 or args.duration <= 0 or args.grace < 0 or args.max_in_flight < 1 or args.history_sample < 0:
        parser.error(
            "--rate, --duration and --max-in-flight must be positive, --grace and --history-sample not negative"
        )
    args.worker_settings = chosen_worker_settings(parser, args)
    run_to_exit(run(args))


if __name__ == "__main__":
    main()
