"""docker-compose.yml, Dockerfile and .env.example agree with each other and with the code.

Docker does not run here: these checks are what can be known without starting the stack.
"""

from __future__ import annotations

import importlib
import re
import tomllib
from typing import Any

import pytest
import yaml

from settings import ROOT
from workflows.contracts.temporal import search_attributes

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
DOCKERFILE = (ROOT / "Dockerfile").read_text()
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}
VARIABLE = re.compile(r"\$\{([A-Z_][A-Z0-9_]*)(?::?[-?][^}]*)?\}")
PORT = re.compile(
    r"^(?:(?P<ip>[\d.]+|\$\{[A-Z_]+(?::-[\d.]+)?\}):)?(?P<host>\d+|\$\{[A-Z_]+:-\d+\}):(?P<container>\d+)$"
)


def env_example() -> dict[str, str]:
    values = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def resolve(text: str) -> str:
    """A compose value with ${VAR:-default} replaced by .env.example's value (or the default)."""
    values = env_example()
    return re.sub(r"\$\{([A-Z_][A-Z0-9_]*)(?::-([^}]*))?\}", lambda m: values.get(m[1], m[2] or ""), text)


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_every_service_has_a_pinned_image_or_the_repo_dockerfile(name: str) -> None:
    service = SERVICES[name]
    if "build" in service:
        assert service["build"] == {"context": ".", "dockerfile": "Dockerfile"}
        return
    image = service["image"]
    repository, _, tag = image.rpartition(":")
    assert repository and tag and tag != "latest" and "/" not in tag, f"{name}: {image} is not pinned"
    assert re.search(r"\d", tag), f"{name}: {image} names no version"


def test_port_mappings_are_well_formed_and_host_ports_unique() -> None:
    seen: dict[str, str] = {}
    for name, service in SERVICES.items():
        for mapping in service.get("ports", []):
            match = PORT.match(str(mapping))
            assert match, f"{name}: port mapping {mapping!r} is not [ip:]host:container"
            host = resolve(match["host"])
            assert 0 < int(host) < 65536 and 0 < int(match["container"]) < 65536
            assert host not in seen, f"host port {host} used by {seen.get(host)} and {name}"
            seen[host] = name


def test_named_volumes_are_declared() -> None:
    declared = set(COMPOSE.get("volumes") or {})
    for name, service in SERVICES.items():
        for volume in service.get("volumes", []):
            source = str(volume).split(":")[0]
            if source.startswith((".", "/")):
                assert (ROOT / source).exists(), f"{name}: bind mount {source} does not exist"
            else:
                assert source in declared, f"{name}: volume {source} is not declared"


def test_every_variable_is_defined_in_env_example() -> None:
    used = set(VARIABLE.findall((ROOT / "docker-compose.yml").read_text()))
    assert used, "the pattern found no ${VAR} at all"
    assert used - set(env_example()) == set()


def test_depends_on_targets_exist_with_a_valid_condition() -> None:
    for name, service in SERVICES.items():
        for target, spec in (service.get("depends_on") or {}).items():
            assert target in SERVICES, f"{name} depends on unknown service {target}"
            assert spec["condition"] in CONDITIONS, f"{name} -> {target}: {spec['condition']}"
            if spec["condition"] == "service_healthy":
                assert "healthcheck" in SERVICES[target], f"{name} waits for {target}'s health, it has none"
            if spec["condition"] == "service_completed_successfully":
                assert SERVICES[target].get("restart") == "no", f"{target} is a job: it must not restart"


@pytest.mark.parametrize("name", ["worker", "webhook"])
def test_app_commands_are_console_scripts_whose_modules_import(name: str) -> None:
    (command,) = SERVICES[name]["command"]
    target = PYPROJECT["project"]["scripts"][command]
    module, _, function = target.partition(":")
    assert callable(getattr(importlib.import_module(module), function))


def test_app_env_files_are_the_example_and_an_optional_env() -> None:
    for name in ("worker", "webhook"):
        assert SERVICES[name]["env_file"] == [{"path": ".env.example"}, {"path": ".env", "required": False}]


def test_env_example_leaves_optional_secrets_unset() -> None:
    """pydantic-settings reads `SLACK_BOT_TOKEN=` as an empty token, not as "not configured"."""
    empty = [name for name, value in env_example().items() if value == ""]
    assert empty == []


def test_temporal_setup_registers_every_incident_search_attribute() -> None:
    script = (ROOT / "deploy" / "temporal" / "setup.sh").read_text()
    registered = dict(re.findall(r"(Incident\w+)=(Keyword|Bool)", script))
    kinds = {"KEYWORD": "Keyword", "BOOL": "Bool"}
    assert registered == {key.name: kinds[key.indexed_value_type.name] for key in search_attributes.ALL}


def test_dockerfile_is_slim_non_root_and_without_test_extra() -> None:
    instructions = [
        line.strip() for line in DOCKERFILE.splitlines() if line.strip() and not line.lstrip().startswith("#")
    ]
    (base,) = [line for line in instructions if line.startswith("FROM ")]
    assert re.fullmatch(r"FROM python:3\.\d+-slim", base)
    users = [line.split()[1] for line in instructions if line.startswith("USER ")]
    assert users and users[-1] not in ("root", "0"), "the image must end as a non-root user"
    assert re.search(rf"useradd\b.*\b{users[-1]}\b", DOCKERFILE), f"USER {users[-1]} is never created"
    installs = [line for line in instructions if "pip install" in line]
    assert installs and all("[test" not in line for line in installs), installs


def test_dockerignore_keeps_local_state_and_secrets_out_of_the_image() -> None:
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".git", ".venv", ".data", ".env"} <= ignored
