"""bench.scale's policy: examples/policy.toml, changed so that only the measured deadlines act in the run."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from policy_file import load_policy
from settings import ROOT
from workflows.contracts.policy import Policy
from workflows.contracts.vocabulary import Severity

EXAMPLE_POLICY = ROOT / "examples" / "policy.toml"
SERVICE = "checkout"  # a service of the example policy: owner and Account Manager (its RTO: see bench_policy)
AROUND_THE_CLOCK = """[business_hours]
# bench.scale: business hours around the clock, so no confirmation is out of hours (no Telegram)
timezone = "UTC"
days = [0, 1, 2, 3, 4, 5, 6]
start = "00:00"
end = "23:59:59.999999"
out_of_hours_notify = ["role:cto", "role:account_manager"]
out_of_hours_channels = ["telegram"]

"""
# Minutes the clocks after the first page wait in the bench's policy (unless --example-clocks): past the run.
LATER_MINUTES = 24 * 60
MOST_PROGRESS_MINUTES = 60  # the longest progress window a policy may have (seed 002: 30-60 min)


def substitute(text: str, pattern: str, replacement: str, what: str, count: int | None = 1) -> str:
    text, found = re.subn(pattern, replacement, text)
    if found == 0 or (count is not None and found != count):
        raise SystemExit(f"bench: {EXAMPLE_POLICY} changed shape: {what} found {found} times")
    return text


def bench_policy(data: Path, minutes: int, example_clocks: bool) -> tuple[Path, Policy]:
    """examples/policy.toml with the assessment deadline in `minutes` and business hours around the clock;
    unless `example_clocks`, the clocks that run after the first page wait past the end of the run."""
    text = EXAMPLE_POLICY.read_text(encoding="utf-8")
    text = substitute(
        text, r"(?m)^assessment_minutes\s*=\s*\d+", f"assessment_minutes = {minutes}", "triage.assessment_minutes"
    )
    text = substitute(text, r"(?ms)^\[business_hours\]\n.*?(?=^\[)", AROUND_THE_CLOCK, "[business_hours]")
    if not example_clocks:
        text = substitute(
            text,
            r"(?m)^wait_minutes\s*=\s*\d+",
            f"wait_minutes = {LATER_MINUTES}",
            "escalation.tiers.wait_minutes",
            count=None,
        )
        text = substitute(
            text,
            r"(?m)^progress_window_minutes\s*=\s*\d+",
            f"progress_window_minutes = {MOST_PROGRESS_MINUTES}",
            "response.progress_window_minutes",
        )
        text = substitute(text, r"(?m)^SEV3\s*=\s*\d+", f"SEV3 = {LATER_MINUTES}", "cadence.update_minutes.SEV3")
        text = substitute(text, r"(?m)^rto_minutes\s*=\s*\d+\n", "", f"services.{SERVICE}.rto_minutes")
    path = data / "policy.toml"
    path.write_text(
        f"# bench.scale's policy: {EXAMPLE_POLICY.name} changed as bench/scale.py says\n" + text, encoding="utf-8"
    )
    policy = load_policy(path)
    assert policy.triage.assessment_minutes == minutes
    assert Severity.SEV3 not in policy.response.auto_confirm_severities, "SEV3 must wait for its assessment"
    assert all(policy.business_hours.contains(datetime(2026, 1, 4, hour, 30, tzinfo=UTC)) for hour in range(24))
    if not example_clocks:
        assert all(tier.wait_minutes == LATER_MINUTES for tier in policy.escalation.tiers)
        assert policy.cadence.update_minutes[Severity.SEV3] == LATER_MINUTES
        assert policy.services[SERVICE].rto_minutes is None
    return path, policy


def describe(policy: Policy, minutes: int, example_clocks: bool) -> str:
    tiers = "; ".join(
        f"tier {n} {'+'.join(t.notify)} by {'+'.join(c.value for c in t.channels)}, then {t.wait_minutes} min"
        for n, t in enumerate(policy.escalation.tiers, start=1)
    )
    example = load_policy(EXAMPLE_POLICY)
    later = (
        "the example's clocks after the first page (--example-clocks): the ladder's later tiers, the "
        f"progress call after {policy.response.progress_window_minutes} min, the SEV3 update cadence and the "
        f"RTO watch of {SERVICE} run while later deadlines come due"
        if example_clocks
        else f"the clocks after the first page wait past the end of the run: every tier waits {LATER_MINUTES} min "
        f"(example: {' and '.join(str(t.wait_minutes) for t in example.escalation.tiers)}), the progress "
        f"window is {policy.response.progress_window_minutes} min (example: "
        f"{example.response.progress_window_minutes}), SEV3 updates every {LATER_MINUTES} min (example: "
        f"{example.cadence.update_minutes.get(Severity.SEV3)}), {SERVICE} has no RTO (example: "
        f"{example.services[SERVICE].rto_minutes} min); the run confirms thousands of incidents within minutes, "
        "and the example's clocks would add each one's later escalations on top of the deadlines measured"
    )
    return (
        f"policy: {EXAMPLE_POLICY.relative_to(ROOT)} with triage.assessment_minutes = {minutes} and business "
        "hours around the clock (every day, UTC; no out-of-hours Telegram). Each incident is a distinct SEV3 "
        f"alert (service {SERVICE}); SEV3 is not confirmed at once (auto-confirm: "
        f"{', '.join(s.value for s in policy.response.auto_confirm_severities)}) and nobody classifies it, so "
        f"{minutes} min after it opened it is treated as an incident, confirmed (Slack DMs, channel, bridge, "
        f"estimate request) and paged. Ladder: {tiers}; repeated {policy.escalation.repeat} more time(s). "
        f"Later clocks: {later}."
    )
