from __future__ import annotations

import faulthandler
import itertools
import os
import signal
import time
import uuid

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from devtools.databases import DatabaseTemplate, drop_dead_runs, is_postgres, postgres_server, run_tag
from devtools.processes import RedisServer, redis_available
from devtools.sandbox import SandboxServer
from devtools.stack import DEFAULT_ENV, MERCHANT_KEY, clean_environ
from project.names import EVENTS_LAYER
from tests.support import IN_CI, need

_names = itertools.count(1)

# Users every end-to-end database starts with (password E2E_PASSWORD).
E2E_USERS = ["alice", "bob", "carol", "dave", *(f"user{i}" for i in range(10))]
E2E_PASSWORD = "pw-Secret-123"


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix):
    """On PostgreSQL, a test database of this run's own, and no leftovers of runs that died.

    pytest-django's hook for exactly this: it runs just before the test
    database is created.
    """
    from django.conf import settings

    database = settings.DATABASES["default"]
    if "postgresql" not in database["ENGINE"]:
        return
    server = postgres_server(os.environ["DATABASE_URL"].rsplit("/", 1)[0] + "/postgres")
    if server is not None:
        drop_dead_runs(server)
    test = database.setdefault("TEST", {})
    test["NAME"] = f"{test.get('NAME') or 'test_' + database['NAME']}_{run_tag()}"


@pytest.fixture(scope="session", autouse=True)
def _close_database_pools(django_db_setup, django_db_blocker):
    """Close PostgreSQL's connection pools before the test database is dropped.

    Threads of async tests return their connections to the pool, which keeps
    them open: without this, dropping the test database fails ("being
    accessed by other users") and leaves it behind.
    """
    yield
    from asgiref.sync import SyncToAsync
    from django.db import connections

    with django_db_blocker.unblock():
        # The thread async tests' sync_to_async calls run in keeps its own connection.
        SyncToAsync.single_thread_executor.submit(connections.close_all).result(timeout=10)
        for connection in connections.all(initialized_only=True):
            if getattr(connection, "pool", None) is not None:
                connection.close_pool()


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
    """Fresh in-memory channel layers for this test only: the default one (``job.run``), returned, and the events one."""
    from channels.layers import get_channel_layer

    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels.layers.InMemoryChannelLayer"},
        EVENTS_LAYER: {"BACKEND": "channels.layers.InMemoryChannelLayer"},
    }
    return get_channel_layer()


@pytest.fixture
async def serving_loop():
    """This test's loop, marked as a worker or daphne marks theirs: sends and events after commit are handed to it.

    What it still holds at the end is flushed, as a stopping worker does.
    """
    import asyncio

    from jobs import events
    from jobs.concurrency import mark_serving, unmark_serving

    loop = asyncio.get_running_loop()
    mark_serving(loop)
    yield loop
    await events.flush()
    unmark_serving(loop)


@pytest.fixture
def events_layer(channel_layer):
    """This test's in-memory events layer: where job events to users' groups go."""
    from channels.layers import get_channel_layer

    return get_channel_layer(EVENTS_LAYER)


def pass_engine() -> str:
    """The database engine this pass of the suite runs on (``make test`` runs two)."""
    return "postgres" if is_postgres(os.environ.get("DATABASE_URL", "")) else "sqlite"


@pytest.fixture(scope="session")
def database_templates(tmp_path_factory):
    """Factory: one migrated template database per engine and run, holding ``E2E_USERS``."""
    made: dict[str, DatabaseTemplate] = {}

    def get(engine: str | None = None) -> DatabaseTemplate:
        engine = engine or pass_engine()
        if engine not in made:
            server = None
            if engine == "postgres":
                server = postgres_server()
                need(server is not None, "PostgreSQL is not reachable")
            env = clean_environ() | DEFAULT_ENV
            env.pop("REDIS_URL", None)
            made[engine] = DatabaseTemplate(
                workdir=tmp_path_factory.mktemp(f"template-{engine}"), server=server, env=env,
                users=E2E_USERS, password=E2E_PASSWORD, prefix=f"e2e_{run_tag()}_{uuid.uuid4().hex[:8]}",
            ).create()
        return made[engine]

    yield get
    for template in made.values():
        template.close()


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory, database_templates) -> SandboxServer:
    """The sandbox third parties, served by a real daphne of their own for the whole run."""
    workdir = tmp_path_factory.mktemp("sandbox")
    server = SandboxServer(workdir, database_url=database_templates().copy("sandbox", workdir)).start()
    yield server
    server.stop()


@pytest.fixture
def sandbox_server(sandbox):
    """Factory: the sandbox gateway's URL, with a latency and a failure rate of the test's choosing."""
    return sandbox.gateway_url


@pytest.fixture
def sandbox_gateway(sandbox, settings) -> str:
    """Point the product's gateway client at the (healthy) sandbox."""
    settings.PAYMENT_GATEWAY_URL = sandbox.gateway_url()
    return settings.PAYMENT_GATEWAY_URL


def sales_of(gateway_url: str, reference: str) -> list:
    """The sandbox's ledger for one order reference, read through its API."""
    from integrations.gateway import GatewayClient

    return GatewayClient(base_url=gateway_url, key=MERCHANT_KEY).find_by_reference(reference)


# --- what a run says about itself ----------------------------------------------------

_started = time.monotonic()


def pytest_configure(config):
    # devtools/test-passes.sh stops a pass that hangs with SIGTERM: every
    # thread's stack goes to this file first (pytest's own capture would swallow
    # stderr), and the script prints it.
    if path := os.environ.get("TEST_STACKS_FILE"):
        config._stacks_file = open(path, "w")  # noqa: SIM115 - open until the process ends
        faulthandler.register(signal.SIGTERM, file=config._stacks_file, all_threads=True, chain=True)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """One line per pass: what ran, on which database, and how long it took."""
    stats = terminalreporter.stats
    counts = {key: len(stats.get(key, [])) for key in ("passed", "failed", "error", "skipped", "xfailed")}
    selected = config.getoption("markexpr") or "every test"
    terminalreporter.write_line(
        f"Pass on {pass_engine()} ({selected}): {counts['passed']} passed, {counts['failed']} failed, "
        f"{counts['error']} errors, {counts['skipped']} skipped in {time.monotonic() - _started:.0f}s"
    )
    if IN_CI:
        skipped = [report.nodeid for report in stats.get("skipped", [])]
        terminalreporter.write_line(
            f"Skipped under CI=true: {', '.join(skipped) if skipped else 'nothing'}"
        )


def pytest_sessionfinish(session, exitstatus):
    # A skip is not a pass: under CI=true anything skipped fails the run.
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if IN_CI and reporter is not None and reporter.stats.get("skipped") and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
