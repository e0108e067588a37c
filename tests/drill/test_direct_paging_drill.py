"""The example of paging directly (examples/policies/direct-paging.toml) as a drill: bob's rules on its clock."""

from __future__ import annotations

from datetime import UTC, datetime

from typer.testing import CliRunner

from starter.cli.main import app
from tests.drill.helpers import POLICIES, SCENARIOS, drill, events, minutes

POLICY, SCENARIO = POLICIES / "direct-paging.toml", SCENARIOS / "direct-paging.yaml"


def test_the_direct_paging_example_policy_is_clean() -> None:
    result = CliRunner().invoke(app, ["policy", "check", str(POLICY)])
    assert result.exit_code == 0, result.output


async def test_bob_is_pushed_at_once_texted_at_2_min_and_his_sms_ack_at_3_stops_the_call_and_the_ladder() -> None:
    began = datetime.now(UTC)
    report = await drill(POLICY, SCENARIO)
    assert (datetime.now(UTC) - began).total_seconds() < 10
    assert [(e.minute, e.to) for e in report.sent("send_push")] == [(0, ["bob"])]
    assert [(round(e.minute), e.to) for e in report.sent("send_sms")] == [(2, ["bob"])]
    assert report.sent("place_call") == [], "bob acknowledged at +3, before his call at +5"
    assert [e.text for e in events(report, "incident", "acknowledge")] == [
        f"{report.incident.incident_id} acknowledged by bob by SMS"
    ]
    assert minutes(events(report, "incident", "escalation", "Escalation stopped: acknowledged by bob"))
    assert not [e for e in report.sent() if "alice" in e.to and e.kind in ("send_push", "send_sms", "place_call")], (
        "tier 2 (alice) is never paged"
    )
