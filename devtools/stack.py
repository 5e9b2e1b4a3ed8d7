"""Real processes of one deployment: daphne, runworker and management commands.

Every stack has its own database and, when given one, its own redis-server,
so tests and benchmarks can kill, restart and starve them without touching
each other.  The processes use the product's real settings module with an
explicit environment, exactly as an operator would start them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import requests

from devtools.databases import create_users, drop_database, is_postgres
from devtools.processes import PYTHON, ROOT, RedisServer, free_port, wait_for_port

# The sandbox gateway's merchant key in every test and benchmark process, so
# a product process and a sandbox server of another process agree on it.
MERCHANT_KEY = "merchant-key-for-tests-and-benchmarks-0123456789"

# What every stack runs with unless told otherwise: development settings,
# fast retries (the policy is the same, the waits shorter) and no throttle in
# the way of a test that places hundreds of orders in seconds.
DEFAULT_ENV = {
    # Processes get exactly this environment, never a developer's .env.
    "ENV_FILE": "",
    "SANDBOX_GATEWAY_KEY": MERCHANT_KEY,
    "PAYMENT_GATEWAY_KEY": MERCHANT_KEY,
    "DEBUG": "1",
    "SECRET_KEY": "e2e-secret-key-not-for-production-0123456789",
    "PYTHONUNBUFFERED": "1",
    "LOG_LEVEL": "INFO",
    "JOBS_RETRY_BASE_DELAY": "0.2",
    "JOBS_RETRY_MAX_DELAY": "2",
    "ORDER_THROTTLE_RATE": "100000/minute",
}


def clean_environ() -> dict[str, str]:
    """This process's environment without what only pytest or Django's test runner set."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTEST_"))}


class Stack:
    """One deployment's processes, sharing a database and a channel layer.

    ``database_url`` (or ``DATABASE_URL`` in ``env``) is a database that is
    already migrated, such as a template's copy; without one the stack
    migrates a SQLite file of its own.
    ``tokens`` are the API tokens of users the database already holds.
    """

    def __init__(self, workdir: Path, *, redis: RedisServer | None, env: dict[str, str] | None = None,
                 database_url: str | None = None, tokens: dict[str, str] | None = None):
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.redis = redis
        self.procs: list[subprocess.Popen] = []
        self.web_ports: list[int] = []
        self.tokens = dict(tokens or {})
        self.env = clean_environ() | DEFAULT_ENV
        if redis is not None:
            self.env["REDIS_URL"] = redis.url
        self.env.update(env or {})
        given = database_url or (env or {}).get("DATABASE_URL")
        self.env["DATABASE_URL"] = given or f"sqlite:///{workdir / 'db.sqlite3'}"
        if not given:
            self.migrate()
        self.port = free_port()
        self.env["PORT"] = str(self.port)
        self.env.setdefault("PAYMENT_GATEWAY_URL", f"http://127.0.0.1:{self.port}/sandbox/gateway/")

    # --- processes --------------------------------------------------------------

    def manage(self, *args: str, env: dict | None = None, check: bool = True, timeout: float = 120):
        return subprocess.run(
            [PYTHON, "manage.py", *args],
            cwd=ROOT, env=self.env | (env or {}), capture_output=True, text=True, timeout=timeout, check=check,
        )

    def spawn(self, name: str, argv: list[str], env: dict | None = None, **popen) -> subprocess.Popen:
        """Start a process of this stack, logging to ``<workdir>/<name>.log``."""
        log = open(self.workdir / f"{name}.log", "ab")
        proc = subprocess.Popen(argv, cwd=ROOT, env=self.env | (env or {}), stdout=log, stderr=subprocess.STDOUT,
                                **popen)
        proc.name = name  # type: ignore[attr-defined]
        self.procs.append(proc)
        return proc

    def start_web(self, *, port: int | None = None, env: dict | None = None,
                  argv: list[str] | None = None) -> subprocess.Popen:
        port = port or (self.port if self.port not in self.web_ports else free_port())
        proc = self.spawn(
            f"daphne-{port}",
            [PYTHON, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), *(argv or []), "project.asgi:application"],
            env,
        )
        wait_for_port(port, timeout=30, proc=proc)
        self.web_ports.append(port)
        return proc

    def start_worker(self, *args: str, env: dict | None = None, name: str = "worker") -> subprocess.Popen:
        proc = self.spawn(f"{name}-{len(self.procs)}", [PYTHON, "manage.py", "runworker", *args], env)
        self.wait_log(proc, "consuming", timeout=30)
        return proc

    def log_of(self, proc: subprocess.Popen) -> str:
        return (self.workdir / f"{proc.name}.log").read_text(errors="replace")

    def wait_log(self, proc: subprocess.Popen, text: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log_of(proc):
                return
            if proc.poll() is not None:
                raise RuntimeError(f"{proc.name} exited {proc.returncode}:\n{self.log_of(proc)[-3000:]}")
            time.sleep(0.05)
        raise TimeoutError(f"{proc.name} never logged {text!r}:\n{self.log_of(proc)[-3000:]}")

    def stop(self, proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        return proc.returncode

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        drop_database(self.env["DATABASE_URL"])

    # --- setup ------------------------------------------------------------------

    def execute(self, sql: str, params: tuple = ()) -> None:
        """Run one statement on the stack's database from outside, as a DBA would (``%s`` placeholders)."""
        self.query(sql, params)

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        """Run one statement on the stack's database from outside; the rows it returns, if any."""
        url = self.env["DATABASE_URL"]
        if is_postgres(url):
            import psycopg

            with psycopg.connect(url, autocommit=True) as conn:
                cursor = conn.execute(sql, params)
                return cursor.fetchall() if cursor.description else []
        import sqlite3
        from datetime import datetime, timezone

        # Datetimes as Django stores them on SQLite: naive UTC text.
        params = tuple(
            p.astimezone(timezone.utc).replace(tzinfo=None).isoformat(" ") if isinstance(p, datetime) else p
            for p in params
        )
        with sqlite3.connect(url.removeprefix("sqlite:///"), timeout=30) as conn:
            return conn.execute(sql.replace("%s", "?"), params).fetchall()

    def migrate(self) -> None:
        self.manage("migrate", "-v0")

    def create_users(self, *names: str, password: str = "pw-Secret-123") -> dict[str, str]:
        """Users with ``password`` and API tokens; returns {username: token}.

        Users the database already holds (from the template) cost nothing.
        """
        missing = [name for name in names if name not in self.tokens]
        if missing:
            self.tokens.update(create_users(self.env, missing, password))
        return {name: self.tokens[name] for name in names}

    # --- clients ----------------------------------------------------------------

    def url(self, path: str, port: int | None = None) -> str:
        return f"http://127.0.0.1:{port or self.web_ports[0]}{path}"

    def ws_url(self, port: int | None = None) -> str:
        return f"ws://127.0.0.1:{port or self.web_ports[0]}/ws/status/"

    def api(self, token: str) -> requests.Session:
        session = requests.Session()
        session.headers["Authorization"] = f"Token {token}"
        return session

    def ledger(self) -> list[dict]:
        """Every sale the sandbox gateway recorded (asking again past simulated 503s)."""
        headers = {"Authorization": f"Bearer {self.env['SANDBOX_GATEWAY_KEY']}"}
        for _ in range(50):
            response = requests.get(self.url("/sandbox/gateway/transactions/"), headers=headers, timeout=30)
            if response.status_code != 503:
                response.raise_for_status()
                return response.json()["transactions"]
        raise AssertionError("the sandbox ledger kept answering 503")

    def sandbox_stats(self, *, reset: bool = False) -> dict:
        """What the sandbox served: requests, and the most it held at once, per service."""
        response = requests.request("DELETE" if reset else "GET", self.url("/sandbox/stats/"), timeout=30)
        response.raise_for_status()
        return response.json()

    def waiting(self, channel: str) -> int:
        """Messages waiting in Redis on a background channel (channels-redis keeps one sorted set each)."""
        assert self.redis is not None, "a stack without Redis has no shared channel"
        client = self.redis.client()
        try:
            return client.zcard(f"{self.env.get('CHANNEL_LAYER_PREFIX', 'asgi')}{channel}")
        finally:
            client.close()

    def wait_until(self, predicate, *, timeout: float, interval: float = 0.25, what: str = "condition"):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            last = predicate()
            if last:
                return last
            time.sleep(interval)
        raise AssertionError(f"timed out after {timeout}s waiting for {what}; last value: {last!r}")


def order_statuses(stack: Stack, token: str) -> dict[int, str]:
    """Every order of the user behind ``token``, by id, through the API."""
    return {order["id"]: order["status"] for order in all_pages(stack.api(token), stack.url("/api/orders/?page_size=500"))}


def all_pages(session: requests.Session, url: str) -> list[dict]:
    """Every item of a paginated API list."""
    items: list[dict] = []
    while url:
        page = session.get(url, timeout=30).json()
        items += page["results"]
        url = page["next"]
    return items

