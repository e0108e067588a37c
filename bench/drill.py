"""How long a drill of a whole incident takes: by default seed 004's SEV1 business incident, all seven
phases and nine messages through the Message Creation Loop, on an in-process time-skipping server.

    .venv/bin/python -m bench.drill [--seed 004-pagerduty-business] [--rounds 3]

Each round is a full `incidentctl drill` (test server start, worker, every scenario step, shutdown).
Prints per round the wall time, the timeline's events, the recorded activity calls, the messages
sent and the steps; exits 1 if a round took 10 s or more (the target) or refused a step.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

from policy_file import load_policy
from settings import ROOT
from starter.drill.runner import run_drill
from starter.drill.scenario import load_scenario

TARGET_SECONDS = 10.0


async def bench(seed: str, rounds: int) -> int:
    policy_file = ROOT / "examples" / "policies" / f"{seed}.toml"
    scenario_file = ROOT / "examples" / "scenarios" / f"{seed}.yaml"
    policy = load_policy(policy_file)
    scenario, actions = load_scenario(scenario_file, policy)
    worst, refused = 0.0, 0
    for number in range(1, rounds + 1):
        began = time.perf_counter()
        report = await run_drill(
            policy, scenario, actions, policy_file=str(policy_file), scenario_file=str(scenario_file)
        )
        wall = time.perf_counter() - began
        worst = max(worst, wall)
        refused += sum(1 for s in report.steps if not s.accepted)
        hours = (report.ended_at - report.started_at).total_seconds() / 3600
        print(
            f"round {number}: {wall:.2f} s wall for {hours:.1f} h of incident; {len(report.events)} timeline "
            f"events, {len(report.sent())} activity calls, {len(report.messages_sent())} messages sent, "
            f"{len(report.steps)} steps ({sum(1 for s in report.steps if not s.accepted)} refused)"
        )
    print(f"{seed}: worst {worst:.2f} s of wall time (target < {TARGET_SECONDS:g} s)")
    return 0 if worst < TARGET_SECONDS and not refused else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--seed",
        default="004-pagerduty-business",
        help="examples/policies/<seed>.toml and examples/scenarios/<seed>.yaml",
    )
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    sys.exit(asyncio.run(bench(args.seed, args.rounds)))


if __name__ == "__main__":
    main()
