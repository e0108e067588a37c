"""Each source's webhook body becomes AlertEvents; a wrong shape is refused naming the field."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from settings import ROOT
from starter.http.alert_formats import AlertBodyError, parse_alertmanager, parse_datadog, parse_generic, parse_grafana
from workflows.contracts.vocabulary import AlertStatus, Severity

NOW = datetime(2025, 1, 10, 3, 15, tzinfo=UTC)


def example(name: str) -> dict:
    return json.loads((ROOT / "examples" / f"{name}.json").read_text())


def test_alertmanager_each_alert_is_one_event_of_the_group() -> None:
    body = example("alertmanager")
    events = parse_alertmanager(body, NOW)
    assert [e.fingerprint for e in events] == ["a1b2c3d4e5f60718", "b2c3d4e5f6071829"]
    assert {e.dedup_key for e in events} == {body["groupKey"]}
    first = events[0]
    assert first.source == "alertmanager" and first.status is AlertStatus.FIRING
    assert first.title == "Checkout error rate above 5%" and first.service == "checkout"
    assert first.labels["criterion"] == "key_function_broken"  # the workflow applies the criterion
    assert first.severity is None  # "critical" is the policy's word to interpret, not ours
    assert first.links[0].startswith("http://prometheus.example.com")
    assert first.received_at == NOW


def test_alertmanager_missing_fingerprint_is_derived_from_labels() -> None:
    body = example("alertmanager")
    for alert in body["alerts"]:
        del alert["fingerprint"]
    a, b = parse_alertmanager(body, NOW)
    assert a.fingerprint and b.fingerprint and a.fingerprint != b.fingerprint


def test_grafana_uses_group_key_and_its_links() -> None:
    events = parse_grafana(example("grafana"), NOW)
    assert len(events) == 1 and events[0].source == "grafana"
    assert "https://grafana.example.com/d/checkout" in events[0].links
    assert events[0].labels["severity"] == "warning"


def test_datadog_priority_maps_to_severity_and_recovered_resolves() -> None:
    body = {
        "alert_id": 1234,
        "transition": "Recovered",
        "aggregation_key": "agg-1",
        "alert_cycle_key": "c1",
        "priority": "P1",
        "title": "[Recovered] checkout 5xx",
        "message": "ok",
        "link": "https://dd/x",
        "tags": "env:prod,service:checkout,team",
    }
    (event,) = parse_datadog(body, NOW)
    assert event.status is AlertStatus.RESOLVED and event.severity is Severity.SEV1
    assert event.dedup_key == "agg-1" and event.fingerprint == "c1" and event.service == "checkout"
    assert event.labels == {"env": "prod", "service": "checkout", "team": "", "priority": "P1"}


def test_datadog_without_aggregation_key_groups_by_alert_id() -> None:
    (event,) = parse_datadog({"alert_id": "77", "transition": "Triggered", "title": "t", "priority": "normal"}, NOW)
    assert event.dedup_key == "77" and event.status is AlertStatus.FIRING and event.severity is None


def test_datadog_template_example_is_the_documented_body() -> None:
    assert set(example("datadog")) == {
        "alert_id",
        "transition",
        "aggregation_key",
        "alert_cycle_key",
        "priority",
        "title",
        "message",
        "link",
        "tags",
    }


def test_generic_keeps_an_unknown_severity_word_as_a_label_for_the_policy() -> None:
    (event,) = parse_generic({"dedup_key": "k", "title": "t", "severity": "critical"}, NOW)
    assert event.severity is None and event.labels["severity"] == "critical"
    (event,) = parse_generic(example("generic"), NOW)
    assert event.severity is Severity.SEV2 and event.service == "checkout"


@pytest.mark.parametrize(
    ("parse", "body", "field"),
    [
        (parse_alertmanager, {**example("alertmanager"), "alerts": []}, "alerts"),
        (parse_alertmanager, {**example("alertmanager"), "groupKey": ""}, "groupKey"),
        (
            parse_alertmanager,
            {"groupKey": "g", "alerts": [{"status": "firing", "labels": {"a": 1}}]},
            "alerts.0.labels.a",
        ),
        (parse_grafana, {"groupKey": "g", "alerts": [{"status": "weird"}]}, "alerts.0.status"),
        (parse_datadog, {"transition": "Triggered", "title": "t"}, "alert_id"),
        (parse_generic, {"title": "t"}, "dedup_key"),
        (parse_generic, ["not", "an", "object"], "(top level)"),
    ],
)
def test_wrong_shape_names_the_field(parse: Any, body: Any, field: str) -> None:
    with pytest.raises(AlertBodyError) as err:
        parse(body, NOW)
    assert str(err.value).startswith(field)
