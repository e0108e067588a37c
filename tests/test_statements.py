"""The statement templates of seed 004: every one renders, and a missing placeholder refuses the draft."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from temporalio.exceptions import ApplicationError

from activities.statements import DRAFTER_SAMPLES, SAMPLE_FACTS, STATEMENTS, StatementActivities
from workflows.comms.model import RenderStatement
from workflows.contracts.policy import Comms
from workflows.contracts.vocabulary import Audience, Phase

# `policy check`'s sample incident without the facts an incident may lack (summary, impact, UI link): the
# shipped templates render without them, and `impact` comes from the drafter (the missing-placeholder test).
SAMPLE = SAMPLE_FACTS.model_copy(update={"summary": "", "impact": "", "ui_url": ""})
# What a Technical SLT gives at draft time; a template wanting anything else fails this test.
DRAFTER_VALUES = DRAFTER_SAMPLES


def request(phase: Phase, audience: Audience, **values: str) -> RenderStatement:
    return RenderStatement(phase=phase, audience=audience, facts=SAMPLE, organisation="Example Payments", values=values)


def shipped() -> list[tuple[Phase, Audience]]:
    found = []
    for path in sorted(STATEMENTS.glob("*/*.txt.j2")):
        found.append((Phase(path.parent.name), Audience(path.name.removesuffix(".txt.j2"))))
    return found


@pytest.mark.parametrize(("phase", "audience"), shipped(), ids=lambda v: str(v))
def test_every_shipped_template_renders_with_a_sample_incident(phase: Phase, audience: Audience) -> None:
    rendered = StatementActivities().render(request(phase, audience, **DRAFTER_VALUES))
    assert rendered.subject and rendered.text
    assert "{{" not in rendered.text and "{%" not in rendered.text
    assert rendered.template == f"{phase.value}/{audience.value}.txt.j2"


def test_seed004_every_comms_phase_has_a_template_per_audience() -> None:
    wanted = {(phase, audience) for phase in Comms().phases for audience in Audience}
    assert wanted <= set(shipped())


def test_missing_placeholder_refuses_the_draft_naming_it() -> None:
    values = {k: v for k, v in DRAFTER_VALUES.items() if k != "impact"}
    with pytest.raises(ApplicationError) as refused:
        StatementActivities().render(request(Phase.INVESTIGATION, Audience.ALL_CUSTOMERS, **values))
    assert refused.value.non_retryable
    assert refused.value.type == "MissingPlaceholder"
    assert "'impact'" in refused.value.message and "--set impact=" in refused.value.message


def test_an_empty_fact_counts_as_missing_so_nothing_blank_is_sent() -> None:
    facts = SAMPLE.model_copy(update={"service": ""})
    with pytest.raises(ApplicationError, match="'service'"):
        StatementActivities().render(
            RenderStatement(phase=Phase.RESOLUTION, audience=Audience.INTERNAL, facts=facts, values=DRAFTER_VALUES)
        )


def test_alert_text_is_data_never_template_source() -> None:
    facts = SAMPLE.model_copy(update={"title": "{{ 7 * 7 }} {% raw %}"})
    values = DRAFTER_VALUES | {"impact": "{{ ''.__class__.__mro__ }}"}
    rendered = StatementActivities().render(
        RenderStatement(phase=Phase.INVESTIGATION, audience=Audience.INTERNAL, facts=facts, values=values)
    )
    assert "{{ 7 * 7 }} {% raw %}" in rendered.subject
    assert "{{ ''.__class__.__mro__ }}" in rendered.text


def test_drafter_text_replaces_the_template(tmp_path: Path) -> None:
    rendered = StatementActivities(tmp_path).render(
        RenderStatement(phase=Phase.MONITORING, audience=Audience.STRATEGIC, facts=SAMPLE, text="Written by hand.")
    )
    assert rendered.text == "Written by hand." and rendered.subject == "Checkout errors: monitoring update"


def test_html_twin_escapes_variables(tmp_path: Path) -> None:
    (tmp_path / "monitoring").mkdir()
    (tmp_path / "monitoring" / "all_customers.txt.j2").write_text("Subject: {{ title }}\nBody {{ title }}\n")
    (tmp_path / "monitoring" / "all_customers.html.j2").write_text("<p>{{ title }}</p>\n")
    facts = SAMPLE.model_copy(update={"title": "<script>x</script>"})
    rendered = StatementActivities(tmp_path).render(
        RenderStatement(phase=Phase.MONITORING, audience=Audience.ALL_CUSTOMERS, facts=facts)
    )
    assert rendered.html.strip() == "<p>&lt;script&gt;x&lt;/script&gt;</p>"
    assert rendered.text == "Body <script>x</script>"


# --- an organisation's own templates (the policy's comms.templates_dir) -------------------------


def org_templates(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_the_organisations_template_wins_and_the_rest_fall_back_to_the_repositorys(tmp_path: Path) -> None:
    own = "Subject: Acme: {{ title }}\nAcme words: {{ impact }}\n"
    org = org_templates(tmp_path, {"investigation/internal_stakeholders.txt.j2": own})

    def rendered(audience: Audience) -> Any:
        return StatementActivities().render(
            request(Phase.INVESTIGATION, audience, **DRAFTER_VALUES).model_copy(update={"templates_dir": str(org)})
        )

    own = rendered(Audience.INTERNAL)
    assert own.subject == "Acme: Checkout errors" and own.text == f"Acme words: {DRAFTER_VALUES['impact']}"
    assert own.template == str(org / "investigation/internal_stakeholders.txt.j2")
    ours = rendered(Audience.ALL_CUSTOMERS)
    assert ours.subject == "Investigating: issue affecting checkout"
    assert ours.template == "investigation/all_customers.txt.j2"


def test_an_html_twin_comes_only_from_the_directory_of_its_text(tmp_path: Path) -> None:
    """The organisation's words in the text and ours in the HTML would be an unapproved e-mail."""
    repository = org_templates(
        tmp_path / "repository",
        {
            "monitoring/all_customers.txt.j2": "Subject: ours\nOur words\n",
            "monitoring/all_customers.html.j2": "<p>Our words</p>\n",
        },
    )
    org = org_templates(tmp_path / "org", {"monitoring/all_customers.txt.j2": "Subject: theirs\nTheir words\n"})
    rendered = StatementActivities(repository).render(
        RenderStatement(phase=Phase.MONITORING, audience=Audience.ALL_CUSTOMERS, facts=SAMPLE, templates_dir=str(org))
    )
    assert (rendered.subject, rendered.text, rendered.html) == ("theirs", "Their words", "")


def test_a_broken_organisation_template_refuses_the_draft_naming_file_and_line(tmp_path: Path) -> None:
    org = org_templates(tmp_path, {"investigation/internal_stakeholders.txt.j2": "Subject: x\nbody\n{{ impact \n"})
    with pytest.raises(ApplicationError) as refused:
        StatementActivities().render(
            request(Phase.INVESTIGATION, Audience.INTERNAL, **DRAFTER_VALUES).model_copy(
                update={"templates_dir": str(org)}
            )
        )
    assert refused.value.non_retryable and refused.value.type == "BadTemplate"
    assert f"{org / 'investigation/internal_stakeholders.txt.j2'}:3: " in refused.value.message


def test_a_templates_directory_missing_on_the_worker_is_retried(tmp_path: Path) -> None:
    with pytest.raises(ApplicationError) as refused:
        StatementActivities().render(
            request(Phase.INVESTIGATION, Audience.INTERNAL, **DRAFTER_VALUES).model_copy(
                update={"templates_dir": str(tmp_path / "not-mounted")}
            )
        )
    assert not refused.value.non_retryable and refused.value.type == "NoTemplatesDir"


def test_a_statement_gives_its_times_in_the_teams_zone_with_utc_alongside() -> None:
    """SAMPLE_FACTS opened at 14:05 UTC on 4 March 2025: 16:05 in Kyiv (EET)."""
    kyiv = request(Phase.INVESTIGATION, Audience.INTERNAL, **DRAFTER_VALUES).model_copy(
        update={"timezone": "Europe/Kyiv"}
    )
    rendered = StatementActivities().render(kyiv)
    assert "2025-03-04 16:05 EET (14:05 UTC)" in rendered.text
