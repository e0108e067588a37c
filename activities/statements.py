"""Statement templates: seed 004's pre-approved boilerplate per phase x audience, filled in at draft time.

Each organisation brings its own words: the policy's `comms.templates_dir` holds `<phase>/<audience>.txt.j2`
(and optionally an `.html.j2` twin); a template it does not provide comes from the repository's
templates/statements. A template's first line is `Subject: ...`; the rest is the body. Placeholders come
from the incident's facts and the drafter's values, passed as variables (never as template source) to a
sandboxed, StrictUndefined environment: a missing placeholder refuses the draft, so nothing blank is ever sent.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import (
    FileSystemLoader,
    StrictUndefined,
    TemplateError,
    TemplateNotFound,
    TemplateSyntaxError,
    UndefinedError,
    meta,
)
from jinja2.sandbox import SandboxedEnvironment, SecurityError
from temporalio import activity
from temporalio.exceptions import ApplicationError

from settings import ROOT
from workflows.comms.model import RenderedStatement, RenderStatement
from workflows.contracts.clock import in_zone
from workflows.contracts.vocabulary import Audience, Phase, Severity
from workflows.incident.model import IncidentFacts

STATEMENTS = ROOT / "templates" / "statements"

# What a Technical SLT gives with `--set` at draft time, beside the incident's facts: the placeholders a
# template may use. `policy check` renders every template with these samples.
DRAFTER_SAMPLES = {
    "impact": "card payments fail for about 30% of customers",
    "next_update": "by 15:00 UTC",
    "cause": "an expired certificate on the payment gateway",
    "remediation": "we renewed the certificate and restarted the gateway",
    "prevention": "certificate expiry is now monitored 30 days ahead",
}
SAMPLE_FACTS = IncidentFacts(
    incident_id="INC-7F3KQ2MA",
    title="Checkout errors",
    service="checkout",
    severity=Severity.SEV1,
    phase=Phase.INVESTIGATION,
    opened_at=datetime(2025, 3, 4, 14, 5, tzinfo=UTC),
    summary="HTTP 500 on POST /checkout",
    impact="customers cannot pay",
    ui_url="https://temporal.example.com/namespaces/default/workflows/INC-7F3KQ2MA",
)


def template_name(phase: Phase, audience: Audience) -> str:
    return f"{phase.value}/{audience.value}.txt.j2"


@dataclass(frozen=True)
class TemplateProblem:
    """What `policy check` reports: the template file, the line, and what is wrong there."""

    file: Path
    line: int
    message: str


@dataclass(frozen=True)
class _Envs:
    text: SandboxedEnvironment
    html: SandboxedEnvironment  # the optional .html.j2 twin escapes every variable


class StatementActivities:
    """Renders a statement from the organisation's templates, falling back to the repository's.

    The template comes from `RenderStatement.templates_dir` (the policy's `comms.templates_dir`, made
    absolute when the policy is loaded) when that directory has it, else from `templates` (the
    repository's). Its `.html.j2` twin is taken only from the same directory, so an e-mail never mixes
    the organisation's words with ours. The worker reads the directory at every draft: it must be at the
    same path on every worker.

    At run time a broken template never fails a workflow task: a missing placeholder, a syntax error or
    a template that is nowhere is a non-retryable ApplicationError, which the message loop records as the
    draft's refusal for the Technical SLT to act on (give the value, or write the text). It never falls
    back to the repository's words for a template the organisation provides: those were not approved.
    A templates directory this worker does not see is retryable (a volume not mounted yet).
    """

    def __init__(self, templates: Path = STATEMENTS) -> None:
        self.default = templates
        self._envs: dict[Path, _Envs] = {}

    @activity.defn
    async def render_statement(self, request: RenderStatement) -> RenderedStatement:
        return self.render(request)

    def render(self, request: RenderStatement) -> RenderedStatement:
        name = template_name(request.phase, request.audience)
        variables = placeholders(request)
        if request.text.strip():
            subject = request.subject or f"{request.facts.title}: {request.phase.value} update"
            return RenderedStatement(subject=subject, text=request.text.strip(), template="")
        home = self.home_of(name, self._organisation_dir(request.templates_dir))
        envs = self._envs_for(home)
        subject, text = _split_subject(name, self._render(envs.text, name, variables))
        html_name = name.replace(".txt.j2", ".html.j2")
        html = self._render(envs.html, html_name, variables) if (home / html_name).is_file() else ""
        shown = name if home == self.default else str(home / name)
        return RenderedStatement(subject=request.subject or subject, text=text, html=html, template=shown)

    def home_of(self, name: str, organisation: Path | None) -> Path:
        """The directory a template comes from: the organisation's when it has it, else the repository's."""
        if organisation is not None and (organisation / name).is_file():
            return organisation
        return self.default

    def check(
        self, templates_dir: str, organisation: str, used: Iterable[tuple[Phase, Audience]]
    ) -> list[TemplateProblem]:
        """Render every template `used` (and its HTML twin) with sample values: each problem with its file and line."""
        org = Path(templates_dir) if templates_dir else None
        problems: list[TemplateProblem] = []
        for phase, audience in used:
            name = template_name(phase, audience)
            home = self.home_of(name, org)
            envs = self._envs_for(home)
            request = RenderStatement(
                phase=phase,
                audience=audience,
                facts=SAMPLE_FACTS.model_copy(update={"phase": phase}),
                organisation=organisation,
                values=DRAFTER_SAMPLES,
            )
            variables = placeholders(request)
            problems += _problems_of(envs.text, home, name, variables, text=True)
            html_name = name.replace(".txt.j2", ".html.j2")
            if (home / html_name).is_file():
                problems += _problems_of(envs.html, home, html_name, variables, text=False)
        return problems

    def _organisation_dir(self, templates_dir: str) -> Path | None:
        if not templates_dir:
            return None
        found = Path(templates_dir)
        if not found.is_dir():
            raise ApplicationError(
                f"the policy's statement templates directory {templates_dir} is not on this worker; "
                "mount it at the same path on every worker (comms.templates_dir)",
                type="NoTemplatesDir",
            )
        return found

    def _envs_for(self, home: Path) -> _Envs:
        """One environment per directory; its includes may use the repository's templates too."""
        if home not in self._envs:
            search = [home] if home == self.default else [home, self.default]
            text = SandboxedEnvironment(
                loader=FileSystemLoader(search),
                undefined=StrictUndefined,
                autoescape=False,
                trim_blocks=True,
                lstrip_blocks=True,
            )
            self._envs[home] = _Envs(text=text, html=text.overlay(autoescape=True))
        return self._envs[home]

    def _render(self, env: SandboxedEnvironment, name: str, variables: dict[str, Any]) -> str:
        try:
            return env.get_template(name).render(variables)
        except TemplateNotFound as err:
            raise ApplicationError(
                f"no statement template {name}; add it under templates/statements/ or the policy's comms.templates_dir",
                type="NoTemplate",
                non_retryable=True,
            ) from err
        except TemplateSyntaxError as err:
            raise ApplicationError(
                f"{err.filename or name}:{err.lineno}: {err.message}; fix the template, or draft with your own text",
                type="BadTemplate",
                non_retryable=True,
            ) from err
        except UndefinedError as err:
            missing = _missing_name(err)
            used = sorted(_placeholders_in(env, name))
            raise ApplicationError(
                f"{name} needs placeholder {missing!r}: give it with --set {missing}=... "
                f"(the template uses {', '.join(used)})",
                type="MissingPlaceholder",
                non_retryable=True,
            ) from err
        except SecurityError as err:
            raise ApplicationError(f"{name}: {err}", type="TemplateSecurity", non_retryable=True) from err


def placeholders(request: RenderStatement) -> dict[str, Any]:
    """The template's variables. An empty fact is left undefined, so a template needing it refuses."""
    facts = request.facts
    known = {
        "incident_id": facts.incident_id,
        "title": facts.title,
        "service": facts.service,
        "severity": facts.severity.value,
        "priority": facts.severity.priority,
        "phase": request.phase.value,
        "opened_at": in_zone(request.timezone, facts.opened_at, with_date=True) if facts.opened_at else "",
        "summary": facts.summary,
        "impact": facts.impact,
        "ui_url": facts.ui_url,
        "organisation": request.organisation,
    }
    given = {name: value.strip() for name, value in request.values.items()}
    return {name: value for name, value in (known | given).items() if value}


def _placeholders_in(env: SandboxedEnvironment, name: str) -> set[str]:
    """Every variable a template reads (optional ones included)."""
    loader = env.loader
    assert loader is not None
    source, _, _ = loader.get_source(env, name)
    return meta.find_undeclared_variables(env.parse(source))


def _problems_of(
    env: SandboxedEnvironment, home: Path, name: str, variables: dict[str, Any], *, text: bool
) -> list[TemplateProblem]:
    """What rendering one template with sample values finds wrong, located in its file."""
    file = home / name
    try:
        rendered = env.get_template(name).render(variables)
    except TemplateNotFound as err:
        return [TemplateProblem(file, 0, f"no statement template {err.name}")]
    except TemplateSyntaxError as err:
        return [TemplateProblem(Path(err.filename) if err.filename else file, err.lineno, err.message or str(err))]
    except UndefinedError as err:
        missing = _missing_name(err)
        found, line = _where_undefined(err, missing, file)
        known = ", ".join(sorted(variables))
        return [TemplateProblem(found, line, f"unknown placeholder {missing!r}; a draft has: {known}")]
    except (SecurityError, TemplateError) as err:
        return [TemplateProblem(file, _line_of_traceback(err)[1] or 0, str(err))]
    if not text:
        return []
    first, _, body = rendered.strip().partition("\n")
    if not first.startswith("Subject:"):
        return [TemplateProblem(file, 1, "must start with a 'Subject: ...' line")]
    if not first.removeprefix("Subject:").strip() or not body.strip():
        return [TemplateProblem(file, 1, "renders an empty subject or body")]
    return []


def _where_undefined(err: UndefinedError, missing: str, file: Path) -> tuple[Path, int]:
    """The template line that read the missing name: from the traceback Jinja maps onto the template,
    else the first line of the file that names it."""
    found, line = _line_of_traceback(err)
    if found is not None and line:
        return found, line
    pattern = re.compile(rf"\b{re.escape(missing)}\b")
    for number, text in enumerate(file.read_text(encoding="utf-8").splitlines(), start=1):
        if pattern.search(text):
            return file, number
    return file, 0


def _line_of_traceback(err: BaseException) -> tuple[Path | None, int]:
    """The innermost frame of a template file (Jinja rewrites its frames to the template's lines)."""
    found: tuple[Path | None, int] = (None, 0)
    tb = err.__traceback__
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename.endswith(".j2"):
            found = (Path(filename), tb.tb_lineno)
        tb = tb.tb_next
    return found


def _missing_name(err: UndefinedError) -> str:
    found = re.search(r"'([^']+)' is undefined", str(err))
    return found.group(1) if found else str(err)


def _split_subject(name: str, rendered: str) -> tuple[str, str]:
    first, _, body = rendered.strip().partition("\n")
    if not first.startswith("Subject:"):
        raise ApplicationError(f"{name} must start with a 'Subject: ...' line", type="BadTemplate", non_retryable=True)
    subject, text = first.removeprefix("Subject:").strip(), body.strip()
    if not subject or not text:
        raise ApplicationError(f"{name} rendered an empty subject or body", type="BadTemplate", non_retryable=True)
    return subject, text
