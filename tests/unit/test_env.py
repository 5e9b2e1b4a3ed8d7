import os
import subprocess
import sys
from datetime import timedelta

import pytest
from django.core.exceptions import ImproperlyConfigured

from devtools.processes import ROOT
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


def test_the_env_file_fills_in_what_the_environment_lacks_and_never_overrides_it(monkeypatch, tmp_path):
    from project.env import load_env_file

    (tmp_path / ".env").write_text("X_FROM_FILE=file\nX_BOTH=file\n")
    monkeypatch.delenv("ENV_FILE", raising=False)
    monkeypatch.delenv("X_FROM_FILE", raising=False)
    monkeypatch.setenv("X_BOTH", "environment")
    assert load_env_file(tmp_path) == tmp_path / ".env"
    assert os.environ["X_FROM_FILE"] == "file"
    assert os.environ["X_BOTH"] == "environment"
    monkeypatch.delenv("X_FROM_FILE")


def test_an_empty_env_file_setting_reads_nothing_and_a_missing_file_is_no_error(monkeypatch, tmp_path):
    from project.env import load_env_file

    (tmp_path / ".env").write_text("X_NEVER=read\n")
    monkeypatch.setenv("ENV_FILE", "")
    assert load_env_file(tmp_path) is None
    assert "X_NEVER" not in os.environ
    monkeypatch.setenv("ENV_FILE", str(tmp_path / "absent.env"))
    assert load_env_file(tmp_path) is None


def test_production_without_an_env_file_still_fails_loudly(tmp_path):
    # A fresh process, as a production host starts one: no .env, no DEBUG, no SECRET_KEY.
    env = {"PATH": os.environ["PATH"], "ENV_FILE": str(tmp_path / "absent.env")}
    result = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode != 0
    assert "ImproperlyConfigured: SECRET_KEY must be set" in result.stderr


def test_management_commands_read_the_env_file_make_run_writes(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("DEBUG=1\nSECRET_KEY=from-the-env-file-0123456789-abcdefghijklmnop\n")
    env = {"PATH": os.environ["PATH"], "ENV_FILE": str(env_file), "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3"}
    result = subprocess.run([sys.executable, "manage.py", "shell", "-c",
                             "from django.conf import settings; print(settings.DEBUG, settings.SECRET_KEY)"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1].split() == ["True", "from-the-env-file-0123456789-abcdefghijklmnop"]
