"""Statement templates per organisation (issue #12): the policy's comms.templates_dir brings the organisation's
own pre-approved words, and `incidentctl policy check` renders each template it will use before an incident does."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from policy_file import load_policy
from settings import ROOT
from starter.cli.main import app
from starter.cli.policy_check import check_policy
from tests.drill.helpers import POLICIES, SCENARIOS, SEEDS, drill

SEED004 = POLICIES / "004-pagerduty-business.toml"
STRATEGIC = "investigation/strategic_customers.txt.j2"


def policy_with_templates(tmp_path: Path, templates: dict[str, str], templates_dir: str = "acme-words") -> Path:
    """Seed 004's policy, copied next to a templates directory of its own (named relative to the file)."""
    text = SEED004.read_text()
    assert text.count("\n[comms]\n") == 1
    path = tmp_path / "policy.toml"
    path.write_text(text.replace("\n[comms]\n", f'\n[comms]\ntemplates_dir = "{templates_dir}"\n'))
    for name, body in templates.items():
        (tmp_path / templates_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / templates_dir / name).write_text(body)
    return path


def test_a_relative_templates_dir_is_made_absolute_at_load(tmp_path: Path) -> None:
    """The policy travels in each incident's input to workers that never saw the file."""
    policy = load_policy(policy_with_templates(tmp_path, {}))
    assert policy.comms.templates_dir == str((tmp_path / "acme-words").resolve())


async def test_seed004_the_strategic_customers_hear_the_organisations_own_words(tmp_path: Path) -> None:
    """Seed 004: "The Technical SLT ... drafting the message using pre-approved language": the organisation's."""
    own = (
        "Subject: Acme Cloud: {{ service }} is degraded\n"
        "Dear customer, Acme Cloud's engineers are on it. {{ impact }}.\n"
        "Next word from us: {{ next_update }}.\n"
    )
    report = await drill(policy_with_templates(tmp_path, {STRATEGIC: own}), SCENARIOS / "004-pagerduty-business.yaml")
    personal = [e for e in report.sent("send_email") if "cto@globex.example" in e.to]
    assert personal, "the strategic customer was written to"
    first = personal[0].data
    assert first["subject"] == "Acme Cloud: api is degraded"
    assert first["text"].startswith("Dear customer, Acme Cloud's engineers are on it. API requests fail")
    # what the organisation does not provide is the repository's: the all-customers message of the phase
    everyone = [e for e in report.sent("send_email") if "customers@lists.acme.example" in e.to]
    assert everyone and everyone[0].data["subject"] == "Investigating: issue affecting api"


def test_policy_check_names_file_and_line_of_a_syntax_error_and_an_unknown_placeholder(tmp_path: Path) -> None:
    path = policy_with_templates(
        tmp_path,
        {
            STRATEGIC: "Subject: Acme: {{ title }}\nHello,\n\n{{ impact }} since {{ opend_at }}.\n",
            "identification/all_customers.txt.j2": "Subject: Acme\nWe found it.\n{% if cause %}\n{{ cause }\n",
        },
    )
    result = CliRunner().invoke(app, ["policy", "check", str(path)])
    assert result.exit_code == 1
    templates = (tmp_path / "acme-words").resolve()
    lines = [line.removeprefix(f"{path}: ") for line in result.stdout.splitlines()]
    unknown = next(line for line in lines if "opend_at" in line)
    assert unknown.startswith(f"{templates / STRATEGIC}:4: unknown placeholder 'opend_at'; a draft has: ")
    assert "opened_at" in unknown
    syntax = next(line for line in lines if "identification/all_customers" in line)
    assert syntax.startswith(f"{templates / 'identification/all_customers.txt.j2'}:4: ")
    assert not [line for line in lines if "templates/statements" in line], "the repository's templates are fine"


def test_policy_check_reports_a_templates_dir_that_is_not_there(tmp_path: Path) -> None:
    path = policy_with_templates(tmp_path, {}, templates_dir="nowhere")
    result = CliRunner().invoke(app, ["policy", "check", str(path)])
    assert result.exit_code == 1
    assert f"{path}: comms.templates_dir: {(tmp_path / 'nowhere').resolve()} is not a directory" in result.stdout


@pytest.mark.parametrize(
    "path", [ROOT / "examples" / "policy.toml", *(POLICIES / f"{s}.toml" for s in SEEDS)], ids=lambda p: p.stem
)
def test_every_statement_template_the_shipped_policies_use_renders(path: Path) -> None:
    templates = [p for p in check_policy(load_policy(path)) if ".j2" in p.path or p.path == "comms.templates_dir"]
    assert templates == []
