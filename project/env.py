"""Typed readers for environment variables.

Every setting the product takes from the environment goes through these, so a
malformed value fails at start-up with ``ImproperlyConfigured`` instead of
surfacing later as a confusing runtime error.
"""

from __future__ import annotations

import os
import re
from datetime import timedelta
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def load_env_file(base_dir: Path) -> Path | None:
    """Read the local configuration file into the environment; the file that was read, if any.

    ``ENV_FILE`` names it (default ``.env`` beside ``manage.py``; empty for
    none).  Variables already in the environment win over the file, so a
    deployment's real environment, a test's or an operator's export is never
    overridden.  A production host without the file reads nothing and keeps
    failing loudly on what it lacks.
    """
    from dotenv import load_dotenv

    name = os.environ.get("ENV_FILE")
    path = base_dir / ".env" if name is None else Path(name) if name else None
    if path is None or not path.is_file():
        return None
    load_dotenv(path, override=False)
    return path


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), got {raw!r}.")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}.") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, got {value}.")
    return value


def env_float(
    name: str, default: float, *, minimum: float | None = None, maximum: float | None = None
) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, got {raw!r}.") from None
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ImproperlyConfigured(f"{name} must be between {minimum} and {maximum}, got {value}.")
    return value


def env_list(name: str, default: list[str] | None = None) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return list(default or [])
    return [item.strip() for item in raw.split(",") if item.strip()]


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(raw: str) -> timedelta:
    """Parse ``"300"``, ``"300s"``, ``"5m"``, ``"1.5h"`` or ``"2d"`` into a timedelta."""
    match = _DURATION.match(raw or "")
    if not match:
        raise ValueError(f"{raw!r} is not a duration; use forms like 90s, 5m, 1h or 2d.")
    number, unit = match.groups()
    return timedelta(seconds=float(number) * _UNITS[unit or "s"])
