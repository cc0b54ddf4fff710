"""Named runner profiles from a YAML file, chosen with ``--profile NAME``.

A profile is a mapping of flag → value; ``True`` gives a bare ``--flag``, a list
repeats the flag. Its flags go before the command line's own, so a flag given on
the command line wins. The file is ``--profiles_file``, else ``$DATAPLANE_PROFILES``,
else ``./dataplane-profiles.yaml``, else the examples packaged with the library.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from schemas.errors import ConfigError

__all__ = ["PACKAGED_PROFILES", "expand_profile", "profile_flags", "take_flag"]

PACKAGED_PROFILES = Path(__file__).resolve().parent / "profiles.yaml"


def take_flag(argv: list[str], flag: str) -> str | None:
    """Removes ``--flag VALUE`` or ``--flag=VALUE`` from ``argv``; returns the value."""
    for index, item in enumerate(argv):
        if item == flag:
            if index + 1 >= len(argv) or argv[index + 1].startswith("--"):
                raise ConfigError(flag, "expected a value after it")
            value = argv[index + 1]
            del argv[index : index + 2]
            return value
        if item.startswith(f"{flag}="):
            del argv[index]
            return item.split("=", 1)[1]
    return None


def _profiles_path(explicit: str | None) -> Path:
    if explicit:
        return Path(explicit)
    from_env = os.environ.get("DATAPLANE_PROFILES")
    if from_env:
        return Path(from_env)
    local = Path("dataplane-profiles.yaml")
    return local if local.is_file() else PACKAGED_PROFILES


def profile_flags(name: str, path: Path) -> list[str]:
    """The flags of profile ``name`` in the YAML file at ``path``.

    >>> profile_flags("portable-local", PACKAGED_PROFILES)
    ['--runner=portable', '--job_endpoint=localhost:8099', '--environment_type=LOOPBACK']
    """
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as err:
        raise ConfigError("--profiles_file", f"cannot read {path}: {err.strerror}") from None
    except yaml.YAMLError as err:
        raise ConfigError("--profiles_file", f"{path} is not YAML: {err}") from None
    profiles = document.get("profiles") if isinstance(document, dict) else None
    if not isinstance(profiles, dict):
        raise ConfigError("--profiles_file", f"{path}: expected a top-level 'profiles' mapping")
    if name not in profiles:
        known = ", ".join(sorted(profiles)) or "none"
        raise ConfigError("--profile", f"unknown profile {name!r}; {path} has: {known}")
    settings = profiles[name] or {}
    if not isinstance(settings, dict):
        raise ConfigError("--profile", f"{path}: profile {name!r} must map flags to values")
    return [flag for key, value in settings.items() for flag in _as_flags(str(key), value)]


def _as_flags(key: str, value: Any) -> list[str]:
    if value is True:
        return [f"--{key}"]
    if value is False or value is None:
        return []
    if isinstance(value, list):
        return [f"--{key}={item}" for item in value]
    return [f"--{key}={value}"]


def expand_profile(argv: Sequence[str] | None) -> list[str]:
    """``argv`` with ``--profile``/``--profiles_file`` replaced by the profile's flags.

    >>> expand_profile(["--profile=local", "--bounded"])
    ['--runner=direct', '--bounded']
    """
    args = list(sys.argv[1:] if argv is None else argv)
    name = take_flag(args, "--profile")
    path = take_flag(args, "--profiles_file")
    if name is None:
        if path is not None:
            raise ConfigError("--profiles_file", "given without --profile NAME")
        return args
    return [*profile_flags(name, _profiles_path(path)), *args]
