from datetime import timedelta

import pytest
from django.core.exceptions import ImproperlyConfigured

from project.env import env_bool, env_float, env_int, parse_duration


@pytest.mark.parametrize(
    "raw, expected",
    [("300", 300), ("300s", 300), ("5m", 300), ("1.5h", 5400), ("2d", 172800), ("0", 0), ("250ms", 0.25)],
)
def test_parse_duration_accepts_the_documented_forms(raw, expected):
    assert parse_duration(raw) == timedelta(seconds=expected)


@pytest.mark.parametrize("raw", ["", "five minutes", "-5m", "5 parsecs", "m"])
def test_parse_duration_rejects_anything_else_with_a_hint(raw):
    with pytest.raises(ValueError, match="90s, 5m, 1h"):
        parse_duration(raw)


def test_malformed_environment_fails_loudly(monkeypatch):
    monkeypatch.setenv("X_BOOL", "maybe")
    monkeypatch.setenv("X_INT", "ten")
    monkeypatch.setenv("X_RATE", "1.5")
    with pytest.raises(ImproperlyConfigured, match="X_BOOL"):
        env_bool("X_BOOL")
    with pytest.raises(ImproperlyConfigured, match="X_INT"):
        env_int("X_INT", 1)
    with pytest.raises(ImproperlyConfigured, match="X_RATE"):
        env_float("X_RATE", 0.0, minimum=0.0, maximum=1.0)


def test_unset_environment_gives_the_default(monkeypatch):
    monkeypatch.delenv("X_UNSET", raising=False)
    assert env_int("X_UNSET", 7) == 7
    assert env_bool("X_UNSET", True) is True
