"""Reading the policy file: TOML validated into the workflows' Policy model, every error one line naming
the file and the field. Its own module so that `settings` imports nothing from `workflows`."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

from pydantic import ValidationError

from settings import describe_validation_error
from workflows.contracts.policy import Policy


class PolicyError(ValueError):
    """A policy file that cannot be used; the message names the file and the field."""


def load_policy(path: Path | str) -> Policy:
    """A TOML file, or JSON (the same keys) when its name ends in .json, as a program may write it."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        raw = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except FileNotFoundError as err:
        raise PolicyError(f"{path}: no such policy file") from err
    except tomllib.TOMLDecodeError as err:
        raise PolicyError(f"{path}: not valid TOML: {err}") from err
    except ValueError as err:
        raise PolicyError(f"{path}: not valid JSON: {err}") from err
    try:
        policy = Policy.model_validate(raw)
    except ValidationError as err:
        raise PolicyError(f"{path}: {describe_validation_error(err)}") from err
    return _templates_next_to_the_file(policy, path)


def _templates_next_to_the_file(policy: Policy, path: Path) -> Policy:
    """A relative comms.templates_dir is the policy file's neighbour. It is made absolute here, once: the
    policy travels in each incident's input to workers that know nothing of where the file was."""
    templates = policy.comms.templates_dir
    if not templates or Path(templates).is_absolute():
        return policy
    comms = policy.comms.model_copy(update={"templates_dir": str((path.parent / templates).resolve())})
    return policy.model_copy(update={"comms": comms})
