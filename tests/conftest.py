from __future__ import annotations

import itertools
import os
import subprocess
import sys

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.support import ROOT, RedisServer, free_port, need, redis_available, wait_for_port

_names = itertools.count(1)


@pytest.fixture
def make_user(db, django_user_model):
    """Factory: a fresh user with a known password."""

    def make(username: str | None = None, password: str = "pw-Secret-123"):
        username = username or f"user{next(_names)}"
        return django_user_model.objects.create_user(username=username, password=password)

    return make


@pytest.fixture
def user(make_user):
    return make_user()


@pytest.fixture
def token(user) -> str:
    return Token.objects.create(user=user).key


@pytest.fixture
def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    """A real redis-server of our own for the session."""
    need(redis_available(), "redis-server is not installed")
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture
def channel_layer(settings):
    """A fresh in-memory channel layer for this test only."""
    from channels.layers import get_channel_layer

    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    return get_channel_layer()


@pytest.fixture(scope="session")
def sandbox_server(tmp_path_factory):
    """Factory: the sandbox third parties served by a real daphne, per configuration.

    A separate process with its own database, as a real third party would
    be: nothing in the test process (threads, transactions, event loops) is
    shared with it.
    """
    servers: dict[tuple, tuple[subprocess.Popen, str]] = {}

    def get(*, latency_ms: int = 0, failure_rate: float = 0.0) -> str:
        key = (latency_ms, failure_rate)
        if key not in servers:
            workdir = tmp_path_factory.mktemp("sandbox")
            port = free_port()
            env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTEST_"))} | {
                "DEBUG": "1", "SECRET_KEY": "sandbox-not-secret-0123456789abcdefghij",
                "DATABASE_URL": f"sqlite:///{workdir / 'sandbox.sqlite3'}", "EMBEDDED_WORKERS": "0",
                "SANDBOX_LATENCY_MS": str(latency_ms), "SANDBOX_FAILURE_RATE": str(failure_rate),
            }
            env.pop("REDIS_URL", None)
            subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
            proc = subprocess.Popen(
                [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "project.asgi:application"],
                cwd=ROOT, env=env, stdout=open(workdir / "daphne.log", "wb"), stderr=subprocess.STDOUT,
            )
            wait_for_port(port, proc=proc)
            servers[key] = (proc, f"http://127.0.0.1:{port}/sandbox/gateway/")
        return servers[key][1]

    yield get
    for proc, _ in servers.values():
        proc.kill()
        proc.wait()


@pytest.fixture
def sandbox_gateway(sandbox_server, settings) -> str:
    """Point the product's gateway client at the (healthy) sandbox."""
    settings.PAYMENT_GATEWAY_URL = sandbox_server()
    return settings.PAYMENT_GATEWAY_URL


def sales_of(gateway_url: str, order_id) -> list:
    """The sandbox's ledger for one order, read through its API."""
    from integrations.gateway import GatewayClient

    return GatewayClient(base_url=gateway_url).find_by_order(order_id)
