"""Reading the policy file: TOML validated into the workflows' Policy model, every error one line naming
the file and the field. Its own module so that `settings` imports nothing from `workflows`."""

from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import ValidationError

from settings import describe_validation_error
from workflows.policy import Policy


class PolicyError(ValueError):
    """A policy file that cannot be used; the message names the file and the field."""


def load_policy(path: Path | str) -> Policy:
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise PolicyError(f"{path}: no such policy file") from err
    except tomllib.TOMLDecodeError as err:
        raise PolicyError(f"{path}: not valid TOML: {err}") from err
    try:
        return Policy.model_validate(raw)
    except ValidationError as err:
        raise PolicyError(f"{path}: {describe_validation_error(err)}") from err
