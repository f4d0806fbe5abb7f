"""Reading a YAML config file (validated and completed by :func:`precipmodes.config.validate_config`)."""

from __future__ import annotations

from pathlib import Path

import yaml

from precipmodes.config import validate_config
from precipmodes.errors import ConfigError


def load_config(path: str | Path) -> dict:
    """Read a YAML config file, validate it and fill in defaults."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} not found")
    with open(path) as handle:
        try:
            raw = yaml.safe_load(handle) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {path} is not valid YAML: {exc}") from exc
    return validate_config(raw, origin=str(path))
