"""Production settings: check --deploy passes, and unsafe setups refuse to start."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.support import ROOT

PRODUCTION = {
    "DEBUG": "0",
    "SECRET_KEY": "k8#Jq2!vZ9@pL4$wX7^mN1&bR6*tY3(uE5)iO0-aS8_dF2+gH4=jK7",
    "ALLOWED_HOSTS": "pay.example.com",
    "CSRF_TRUSTED_ORIGINS": "https://pay.example.com",
    "BEHIND_TLS_PROXY": "1",
    "PAYMENT_GATEWAY_URL": "https://gateway.example.com/",
    "DATABASE_URL": "sqlite:////tmp/deploy-check.sqlite3",
}


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTEST_", "SANDBOX_", "DEMO_"))}
    base.pop("REDIS_URL", None)
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=base | env,
                          capture_output=True, text=True, timeout=60)


def test_check_deploy_passes_with_the_documented_production_settings():
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize("secret", ["", "insecure-development-key-do-not-use-in-production"])
def test_production_refuses_to_start_without_a_real_secret_key(secret):
    result = manage("check", env=PRODUCTION | {"SECRET_KEY": secret})
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_production_needs_allowed_hosts():
    result = manage("check", env=PRODUCTION | {"ALLOWED_HOSTS": ""})
    assert result.returncode != 0 and "ALLOWED_HOSTS must be set" in result.stderr


def test_sandbox_and_demo_user_are_off_in_production_unless_enabled():
    code = "from django.urls import resolve, Resolver404\ntry:\n    resolve('/sandbox/gateway/transactions/'); print('MOUNTED')\nexcept Resolver404:\n    print('ABSENT')"
    assert "ABSENT" in manage("shell", "-c", code, env=PRODUCTION).stdout
    assert "MOUNTED" in manage("shell", "-c", code, env=PRODUCTION | {"SANDBOX_ENABLED": "1"}).stdout
    refused = manage("demo_user", env=PRODUCTION)
    assert refused.returncode != 0 and "demo user is disabled" in refused.stderr


def test_channel_layer_encryption_comes_from_the_environment():
    code = "from django.conf import settings; print(settings.CHANNEL_LAYERS['default']['CONFIG'].get('symmetric_encryption_keys'))"
    env = PRODUCTION | {"REDIS_URL": "redis://127.0.0.1:6379/0", "CHANNEL_LAYER_ENCRYPTION_KEYS": "key-one,key-two"}
    assert "['key-one', 'key-two']" in manage("shell", "-c", code, env=env).stdout
