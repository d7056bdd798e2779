"""Reading a YAML file of keys and values, with errors naming the file. Standard library
and PyYAML only: the root run.py (which Pippin calls with its own Python) uses it too."""

from __future__ import annotations

from pathlib import Path

import yaml


def read_mapping(path: Path, error: type[Exception]) -> dict:
    """The mapping at the top of `path`, or `error` saying why not (missing, not YAML,
    unreadable, not a mapping)."""
    if not path.is_file():
        raise error(f"config file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise error(f"config file {path} is not valid YAML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"config file {path} cannot be read: {exc}") from None
    if not isinstance(data, dict):
        raise error(f"config file {path} must be a YAML mapping of keys to values "
                    f"(its top level is a {type(data).__name__})")
    return data
