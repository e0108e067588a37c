"""Ten thousand open incidents on one worker, each with a live deadline: how late the deadlines act, and
what the worker's memory comes to (issue #15).

    .venv/bin/python -m bench.scale [--incidents 10000] [--rate 5] [--deadline-minutes M] [--grace 120]
                                    [--cached-workflows N] [--workflow-tasks N] [--activities N]
                                    [--example-clocks] [--max-in-flight 64] [--address 127.0.0.1:7233]

Starts a Temporal dev server from the venv (or uses --address, which must be on loopback) and ONE worker
in a process of its own (bench/_stack.py). The bench writes its own policy into its temporary data dir
and points the worker at it (INCIDENT_POLICY), and the incidents carry the same policy (send_alert puts
it in their input): examples/policy.toml with

- `triage.assessment_minutes` = --deadline-minutes (default: the minutes the opening takes, plus two, so
  that every incident is open, its deadline pending, when the first one comes due);
- business hours around the clock (every day, 00:00 to 23:59:59.999999 UTC): no confirmation is out of
  hours, so no Telegram is sent;
- unless --example-clocks, the clocks that run after the first page wait past the end of the run: each
  escalation tier waits a day, the progress window is 60 min (the most a policy may say), SEV3 updates
  are due daily, and the service has no RTO. The run confirms thousands of incidents within minutes of
  each other; with the example's 5- and 10-minute tiers each of them would escalate three more times
  while later deadlines still come due, a load that no real hour brings and that is not what is measured.

Opening: this process records one distinct SEV3 alert per incident by signal-with-start
(client.alerts.send_alert, what the HTTP service calls after parsing, with the body parsed by the same
parse_generic), --rate a second on a fixed schedule (open loop, at most --max-in-flight unanswered). No
HTTP service runs: one process fewer on the two cores, and nothing between the schedule and Temporal.
SEV3 is not confirmed at once and nobody classifies the incidents: when its assessment deadline passes,
each is treated as a SEV3 incident (lifecycle.unassessed_in_time), confirmed and paged. The deadlines come
due at the rate the incidents opened.

Lateness of a deadline = the time of the incident's first page in the worker's outbox (the `at` of its
first line of kind "page"; with no accounts configured every page is a line there) minus its
`assessment_due`, read from the incident's `state` query right after opening. assessment_due is the time
the incident promises its assessors ("assess it by ..."): the workflow time of the task that took the
first alert, plus the minutes. Lateness therefore includes the rest of that first task (the timer starts
when it completes), the timer, the incident's task, the escalation child's first task and the page
activity. Both times come from this machine's clock.

The worker's resident memory is sampled (/proc/<pid>/status VmRSS) every few seconds, and its peak
(VmHWM) read before it stops. Its cache and concurrency are its settings (WORKER_CACHED_WORKFLOWS,
WORKER_WORKFLOW_TASKS, WORKER_ACTIVITIES); --cached-workflows, --workflow-tasks and --activities pass other
values through its environment. The worker's Prometheus metrics (on a loopback port) give its sticky cache
figures, and /proc the CPU the worker, the dev server, this bench and everything else on the machine took.

Prints the policy, the worker settings, the incidents opened and open at once, the worker's RSS and peak,
deadline lateness p50/p99/max, and how many deadlines did not act within --grace seconds ("missing").
Exits 1 if an incident was not opened, its deadline not read, or a deadline missing; 2 if a goal (peak RSS
< 1,024 MB, lateness p99 < 5 s) was not met. Ctrl-C or SIGTERM stops it, and its processes, at any point.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections import Counter
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from temporalio.client import Client, WorkflowQueryFailedError, WorkflowQueryRejectedError
from temporalio.service import RPCError

from bench._measure import Cpu, ResidentMemory, dev_server_pid, mb, worker_metrics
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
    worker_settings_in_effect,
)
from bench.scale_policy import MOST_PROGRESS_MINUTES, SERVICE, bench_policy, describe
from bench.storm import Pages, percentile
from client.alerts import send_alert
from settings import ROOT, Settings
from starter.http.alert_formats import parse_generic
from workflows.contracts.policy import Policy
from workflows.contracts.temporal.ids import INCIDENT_STATE, INCIDENT_WORKFLOW, incident_id_for
from workflows.incident.model import IncidentState

# What the worker runs, copied as the bench starts (see snapshot)
SOURCE_PARTS = (
    "worker.py",
    "settings.py",
    "policy_file.py",
    "observability.py",
    "workflows",
    "activities",
    "client",
    "starter",
    "templates",
)
SOURCE = "generic"
WARM_ALERTS = 3
# Measured with this bench on the project's 2-core machine: a deadline that fires costs the worker and the dev
# server about a quarter of a CPU second together, so 5 a second leaves room for whatever else runs there.
DEFAULT_RATE = 5.0
SEND_ATTEMPTS = 5
QUERY_CONCURRENCY = 16
QUERY_TIMEOUT = timedelta(seconds=10)
QUERY_PATIENCE = 300.0  # seconds an incident's state may take to answer with its deadline
SAMPLE_SECONDS = 2.0
POLL_SECONDS = 1.0
PROGRESS_SECONDS = 30.0
RSS_GOAL_MB = 1024
P99_GOAL_SECONDS = 5.0


@dataclass
class Opened:
    """One incident as this bench opened it."""

    number: int
    incident_id: str
    sent_at: float = 0.0  # wall time the signal-with-start began
    accepted: bool = False
    error: str = ""
    due: float | None = None  # its assessment_due (wall time), from the state query


def snapshot(data: Path) -> tuple[Path, str]:
    """A copy of the source the worker runs, taken as the bench starts, and which version it is.

    The sandbox reads a workflow's module from disk again for every new workflow: over a run of an hour,
    an edit to the tree would otherwise reach the worker halfway through (and break it, when the modules it
    had already imported no longer match)."""
    src = data / "src"
    src.mkdir()
    for part in SOURCE_PARTS:
        if (ROOT / part).is_dir():
            shutil.copytree(ROOT / part, src / part, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(ROOT / part, src / part)
    try:
        git = ["git", "-C", str(ROOT)]
        head = subprocess.run(
            [*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True, timeout=30
        ).stdout.strip()
        changed = subprocess.run(
            [*git, "status", "--porcelain", "--", *SOURCE_PARTS], capture_output=True, text=True, check=True, timeout=30
        ).stdout.split("\n")
    except (OSError, subprocess.SubprocessError):
        return src, "not a git checkout"
    edits = [line[3:] for line in changed if line.strip()]
    return src, f"commit {head}" + (f", with uncommitted changes to {', '.join(edits)}" if edits else "")


def alert_for(run_id: str, number: int, severity: str = "SEV3") -> tuple[str, dict[str, str]]:
    key = f"{run_id}-{number}"
    return key, {
        "dedup_key": key,
        "title": f"scale alert {number}",
        "severity": severity,
        "service": SERVICE,
        "fingerprint": f"scale-{number}",
        "description": "bench.scale: a distinct alert, never classified",
    }


async def send(client: Client, settings: Settings, policy: Policy, body: dict[str, str]) -> None:
    """Signal-with-start, as the HTTP service does after parsing; an unavailable server is tried again."""
    event = parse_generic(body, datetime.now(UTC))[0]
    for attempt in range(1, SEND_ATTEMPTS + 1):
        try:
            await send_alert(client, settings, policy, event)
            return
        except RPCError:
            if attempt == SEND_ATTEMPTS:
                raise
            await asyncio.sleep(1.0)


async def due_of(client: Client, incident_id: str, gate: asyncio.Semaphore) -> float | None:
    """The incident's assessment_due (wall time), once the worker has taken its first alert."""
    give_up = time.monotonic() + QUERY_PATIENCE
    await asyncio.sleep(0.5)  # the first workflow task has to run before the state can answer
    while True:
        async with gate:
            try:
                state: IncidentState = await client.get_workflow_handle(incident_id).query(
                    INCIDENT_STATE, result_type=IncidentState, rpc_timeout=QUERY_TIMEOUT
                )
                if state.assessment_due is not None:
                    return state.assessment_due.timestamp()
            except (RPCError, WorkflowQueryFailedError, WorkflowQueryRejectedError):
                pass  # not started on the worker yet, or a busy worker let the query time out: ask again
        if time.monotonic() > give_up:
            return None
        await asyncio.sleep(1.0)


async def warm_up(client: Client, settings: Settings, policy: Policy, pages: Pages, run_id: str) -> None:
    """A few SEV1 alerts, paged before the count: the worker's first workflows pay for imports."""
    bodies = [alert_for(f"{run_id}-warm", n, "SEV1") for n in range(WARM_ALERTS)]
    await asyncio.gather(*(send(client, settings, policy, body) for _, body in bodies))
    incidents = {incident_id_for(SOURCE, key) for key, _ in bodies}
    give_up = time.monotonic() + 120
    while not incidents <= pages.first.keys():
        if time.monotonic() > give_up:
            raise SystemExit("bench: the warm-up incidents did not page within 120 s")
        await asyncio.sleep(POLL_SECONDS)
        await asyncio.to_thread(pages.read)


async def open_incidents(
    client: Client, settings: Settings, policy: Policy, run_id: str, args: argparse.Namespace, progress: asyncio.Event
) -> tuple[list[Opened], float, float]:
    """Open --incidents incidents at --rate on a fixed schedule; read each one's deadline as it opens.
    Returns them, the seconds the opening took and how far the schedule fell behind at most."""
    gate, queries = asyncio.Semaphore(args.max_in_flight), asyncio.Semaphore(QUERY_CONCURRENCY)
    tasks: list[asyncio.Task[Opened]] = []
    max_lag = 0.0

    async def one(item: Opened, body: dict[str, str]) -> Opened:
        try:
            item.sent_at = time.time()
            await send(client, settings, policy, body)
            item.accepted = True
        except Exception as err:  # reported and counted: one refused incident must not end the run
            item.error = f"{type(err).__name__}: {err}"
            return item
        finally:
            gate.release()
        item.due = await due_of(client, item.incident_id, queries)
        return item

    started = time.monotonic()
    for number in range(args.incidents):
        due = started + number / args.rate
        if (delay := due - time.monotonic()) > 0:
            await asyncio.sleep(delay)
        await gate.acquire()  # at most max_in_flight unanswered: past that the schedule falls behind
        max_lag = max(max_lag, time.monotonic() - due)
        key, body = alert_for(run_id, number)
        tasks.append(asyncio.create_task(one(Opened(number, incident_id_for(SOURCE, key)), body)))
        if progress.is_set():
            progress.clear()
            print(f"  ... {number + 1}/{args.incidents} opened", flush=True)
    sending = time.monotonic() - started
    return list(await asyncio.gather(*tasks)), sending, max_lag


async def running_unassessed(client: Client, task_queue: str) -> str:
    """What the server counts: incidents of this run still running and unassessed (search attributes)."""
    query = (
        f'TaskQueue = "{task_queue}" AND WorkflowType = "{INCIDENT_WORKFLOW}" AND ExecutionStatus = "Running" '
        'AND IncidentKind = "unassessed"'
    )
    try:
        return str((await client.count_workflows(query)).count)
    except RPCError as err:
        return f"n/a ({err})"


def ticker(event: asyncio.Event, seconds: float) -> asyncio.Task[None]:
    async def tick() -> None:
        while True:
            await asyncio.sleep(seconds)
            event.set()

    return asyncio.create_task(tick())


async def run(args: argparse.Namespace) -> int:
    with suppress(NotImplementedError):  # SIGTERM stops the bench like Ctrl-C: the finally blocks clean up
        main_task = asyncio.current_task()
        assert main_task is not None
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main_task.cancel)
    load_before = os.getloadavg()
    client, server = await temporal(args.address)
    data = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    run_id = f"scale-{uuid.uuid4().hex[:8]}"
    task_queue = f"bench-{run_id}"
    metrics_port = free_loopback_port()
    chosen = args.worker_settings
    background: list[asyncio.Task[None]] = []
    try:
        policy_path, policy = bench_policy(data, args.deadline_minutes, args.example_clocks)
        env = service_env(
            client,
            task_queue=task_queue,
            data=data,
            http_port=free_loopback_port(),
            INCIDENT_POLICY=str(policy_path),
            METRICS_PORT=str(metrics_port),
            **chosen,
        )
        src, version = snapshot(data)
        env["PYTHONPATH"] = os.pathsep.join([str(src), env["PYTHONPATH"]])  # the copy first
        settings = Settings(
            _env_file=None,
            incident_task_queue=task_queue,
            temporal_namespace=client.namespace,
            incident_policy=policy_path,
        )
        in_effect = worker_settings_in_effect(chosen)
        print(
            describe(policy, args.deadline_minutes, args.example_clocks)
            + f" Warm-up: {WARM_ALERTS} SEV1 alerts, confirmed at once, paged before the count begins.",
            flush=True,
        )
        print(
            f"worker: one process, workflows from {imported_from(env, 'workflows.incident.workflow', cwd=data)} "
            "(a copy "
            f"of {ROOT}, {version}); {in_effect}",
            flush=True,
        )
        if args.incidents / args.rate >= args.deadline_minutes * 60:
            print(
                f"bench: note: opening takes {args.incidents / args.rate:.0f} s, longer than the deadline: "
                "the first deadlines fire before the last incidents open",
                flush=True,
            )
        if not args.example_clocks and (args.incidents / args.rate + args.grace) / 60 >= MOST_PROGRESS_MINUTES:
            print(
                f"bench: note: the deadlines come due over more than {MOST_PROGRESS_MINUTES} min: the first "
                "incidents' progress calls fall inside the run",
                flush=True,
            )
        pages = Pages(data / "outbox.jsonl")
        with processes(env, "worker", cwd=data) as children:
            worker = ResidentMemory(children["worker"].pid)
            cpu = Cpu(worker=worker.pid, server=dev_server_pid() if server is not None else None)
            background.append(asyncio.create_task(worker.sample_every(SAMPLE_SECONDS)))
            await warm_up(client, settings, policy, pages, run_id)
            rss_warm = worker.sample()
            cpu.mark("warm")
            progress = asyncio.Event()
            background.append(ticker(progress, PROGRESS_SECONDS))
            print(
                f"opening {args.incidents} SEV3 incidents at {args.rate:g}/s, deadlines "
                f"{args.deadline_minutes} min out ...",
                flush=True,
            )
            opened, sending, max_lag = await open_incidents(client, settings, policy, run_id, args, progress)
            cpu.mark("opened")
            accepted = [o for o in opened if o.accepted]
            known = [o for o in accepted if o.due is not None]
            first_due = min((o.due for o in known if o.due is not None), default=time.time())
            last_due = max((o.due for o in known if o.due is not None), default=time.time())
            open_at_once = sum(1 for o in accepted if o.sent_at < first_due)
            before_first = time.time() < first_due
            server_count = await running_unassessed(client, task_queue) if before_first else "n/a (deadlines firing)"
            rss_open = worker.sample()
            print(
                f"opened {len(accepted)}/{args.incidents} in {sending:.0f} s; deadlines known for {len(known)}; "
                f"worker RSS {mb(rss_open):.0f} MB; the first deadline comes due in {first_due - time.time():.0f} s,"
                f" the last in {last_due - time.time():.0f} s",
                flush=True,
            )
            give_up = last_due + args.grace
            waiting = {o.incident_id for o in known}
            while True:
                await asyncio.to_thread(pages.read)
                if gone := exited(children):
                    raise SystemExit(f"bench: {gone} during the run")
                if "due" not in cpu.marks and time.time() >= first_due:
                    cpu.mark("due")
                left = len(waiting - pages.first.keys())
                if not left or time.time() > give_up:
                    break
                if progress.is_set():
                    progress.clear()
                    due_now = sum(1 for o in known if o.due is not None and o.due <= time.time())
                    print(
                        f"  ... {due_now} deadlines due, {len(waiting) - left} paged; worker RSS "
                        f"{mb(worker.samples[-1][1]):.0f} MB; load {os.getloadavg()[0]:.2f}",
                        flush=True,
                    )
                await asyncio.sleep(POLL_SECONDS)
            cpu.mark("end")
            rss_end, hwm = worker.sample(), worker.status_kb("VmHWM")
            metrics = await worker_metrics(metrics_port)
    finally:
        for task in background:
            task.cancel()
        if server is not None:
            await server.shutdown()
        shutil.rmtree(data, ignore_errors=True)
    load_after = os.getloadavg()

    lateness: list[float] = []
    missing = 0
    for o in known:
        assert o.due is not None
        paged = pages.first.get(o.incident_id)
        if paged is None or paged > o.due + args.grace:
            missing += 1
        else:
            lateness.append(paged - o.due)
    lateness.sort()
    pickup = sorted(o.due - o.sent_at - args.deadline_minutes * 60 for o in known if o.due is not None)
    peak_sampled = max(rss for _, rss in worker.samples)
    peak_open = max((rss for at, rss in worker.samples if at < first_due), default=0)
    errors = Counter(o.error.split(":", 1)[0] for o in opened if o.error)

    print(
        f"\nincidents opened: {len(accepted)} of {args.incidents} over {sending:.1f} s "
        f"({len(opened) / max(sending, 1e-9):.1f}/s achieved, {args.rate:g}/s asked; the schedule fell behind by "
        f"at most {max_lag * 1000:.0f} ms); refused: {len(opened) - len(accepted)}"
        + (f" ({', '.join(f'{k} {n}' for k, n in errors.items())})" if errors else "")
    )
    print(
        f"open at once when the first deadline came due: {open_at_once} "
        f"(server, running and unassessed after the opening: {server_count})"
    )
    if pickup:
        print(
            f"first alert taken by the worker (assessment_due - {args.deadline_minutes} min - send): "
            f"p50 {percentile(pickup, 0.5):.2f} s, p99 {percentile(pickup, 0.99):.2f} s, max {pickup[-1]:.2f} s"
        )
    print(f"deadlines read from the state query: {len(known)} (unknown: {len(accepted) - len(known)})")
    print(
        f"worker RSS: {mb(rss_warm):.0f} MB after warm-up, {mb(rss_open):.0f} MB when opened, "
        f"{mb(peak_open):.0f} MB at most before the first deadline, "
        f"{mb(rss_end):.0f} MB at the end; peak sampled every {SAMPLE_SECONDS:g} s {mb(peak_sampled):.0f} MB; "
        f"VmHWM {mb(hwm):.0f} MB (goal < {RSS_GOAL_MB} MB)"
    )
    print(f"CPU while opening, {cpu.between('warm', 'opened')}")
    print(f"CPU from the first deadline to the end, {cpu.between('due', 'end')}")
    if lateness:
        print(
            f"deadline lateness (first page - assessment_due): p50 {percentile(lateness, 0.5):.2f} s, "
            f"p99 {percentile(lateness, 0.99):.2f} s, max {lateness[-1]:.2f} s, min {lateness[0]:.2f} s "
            f"(over {len(lateness)} deadlines; goal p99 < {P99_GOAL_SECONDS:g} s)"
        )
    else:
        print("deadline lateness: no deadline acted")
    print(f"missing (no page within {args.grace:g} s of its deadline): {missing}")
    if metrics:
        print("worker metrics: " + ", ".join(f"{name} {value:g}" for name, value in sorted(metrics.items())))
    print(
        "outbox lines by system and kind (warm-up included): "
        + (", ".join(f"{kind} {n}" for kind, n in pages.kinds.most_common()) or "none")
    )
    print(
        f"load average (1/5/15 min): before {'/'.join(f'{x:.2f}' for x in load_before)}, "
        f"after {'/'.join(f'{x:.2f}' for x in load_after)}"
    )
    if missing or len(known) < args.incidents:
        return 1
    p99 = percentile(lateness, 0.99) if lateness else float("inf")
    return 0 if mb(hwm) < RSS_GOAL_MB and p99 < P99_GOAL_SECONDS else 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--incidents", type=int, default=10_000, help="incidents to open (distinct alert groups)")
    parser.add_argument(
        "--rate",
        type=float,
        default=DEFAULT_RATE,
        help="incidents opened per second; their deadlines come due at the same rate",
    )
    parser.add_argument(
        "--deadline-minutes",
        type=int,
        help="the assessment deadline (policy triage.assessment_minutes); default: the whole "
        "minutes the opening takes, plus two, so that every incident is open at once",
    )
    parser.add_argument(
        "--grace", type=float, default=120.0, help="seconds after its deadline an incident may still page and count"
    )
    add_worker_flags(parser)
    parser.add_argument("--max-in-flight", type=int, default=64, help="unanswered signal-with-starts at most")
    parser.add_argument(
        "--example-clocks",
        action="store_true",
        help="keep the example policy's ladder waits, progress window, cadence and RTO",
    )
    parser.add_argument("--address", help="an existing Temporal server on loopback (default: start one)")
    args = parser.parse_args()
    if args.deadline_minutes is None and args.rate > 0 and args.incidents > 0:
        args.deadline_minutes = math.ceil(args.incidents / args.rate / 60) + 2
    if args.incidents < 1 or args.rate <= 0 or args.deadline_minutes < 1 or args.grace < 0 or args.max_in_flight < 1:
        parser.error(
            "--incidents, --rate, --deadline-minutes and --max-in-flight must be positive, --grace not negative"
        )
    args.worker_settings = chosen_worker_settings(parser, args)
    run_to_exit(run(args))


if __name__ == "__main__":
    main()
