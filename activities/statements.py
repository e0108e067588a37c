"""Statement templates: seed 004's pre-approved boilerplate per phase x audience, filled in at draft time.

A template's first line is `Subject: ...`; the rest is the body. Placeholders come from the incident's
facts and the drafter's values, passed as variables (never as template source) to a sandboxed,
StrictUndefined environment: a missing placeholder refuses the draft, so nothing blank is ever sent.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from jinja2 import FileSystemLoader, StrictUndefined, TemplateNotFound, UndefinedError, meta
from jinja2.sandbox import SandboxedEnvironment, SecurityError
from temporalio import activity
from temporalio.exceptions import ApplicationError

from settings import ROOT
from workflows.comms_model import RenderedStatement, RenderStatement

STATEMENTS = ROOT / "templates" / "statements"


class StatementActivities:
    def __init__(self, templates: Path = STATEMENTS) -> None:
        self.env = SandboxedEnvironment(
            loader=FileSystemLoader(templates),
            undefined=StrictUndefined,
            autoescape=False,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        # the optional .html.j2 twin escapes every variable
        self.html_env = self.env.overlay(autoescape=True)

    @activity.defn
    async def render_statement(self, request: RenderStatement) -> RenderedStatement:
        return self.render(request)

    def render(self, request: RenderStatement) -> RenderedStatement:
        name = f"{request.phase.value}/{request.audience.value}.txt.j2"
        variables = placeholders(request)
        if request.text.strip():
            subject = request.subject or f"{request.facts.title}: {request.phase.value} update"
            return RenderedStatement(subject=subject, text=request.text.strip(), template="")
        subject, text = _split_subject(name, self._render(self.env, name, variables))
        html_name = name.replace(".txt.j2", ".html.j2")
        html = self._render(self.html_env, html_name, variables) if self._exists(html_name) else ""
        return RenderedStatement(subject=request.subject or subject, text=text, html=html, template=name)

    def _exists(self, name: str) -> bool:
        try:
            self.env.get_template(name)
        except TemplateNotFound:
            return False
        return True

    def _render(self, env: SandboxedEnvironment, name: str, variables: dict[str, Any]) -> str:
        try:
            return env.get_template(name).render(variables)
        except TemplateNotFound as err:
            raise ApplicationError(
                f"no statement template {name}; add it under templates/statements/",
                type="NoTemplate",
                non_retryable=True,
            ) from err
        except UndefinedError as err:
            missing = _missing_name(err)
            used = sorted(self.placeholders_of(name))
            raise ApplicationError(
                f"{name} needs placeholder {missing!r}: give it with --set {missing}=... "
                f"(the template uses {', '.join(used)})",
                type="MissingPlaceholder",
                non_retryable=True,
            ) from err
        except SecurityError as err:
            raise ApplicationError(f"{name}: {err}", type="TemplateSecurity", non_retryable=True) from err

    def placeholders_of(self, name: str) -> set[str]:
        """Every variable a template reads (optional ones included)."""
        loader = self.env.loader
        assert loader is not None
        source, _, _ = loader.get_source(self.env, name)
        return meta.find_undeclared_variables(self.env.parse(source))


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
        "opened_at": facts.opened_at.strftime("%Y-%m-%d %H:%M UTC") if facts.opened_at else "",
        "summary": facts.summary,
        "impact": facts.impact,
        "ui_url": facts.ui_url,
        "organisation": request.organisation,
    }
    given = {name: value.strip() for name, value in request.values.items()}
    return {name: value for name, value in (known | given).items() if value}


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
