"""Real processes for end-to-end tests: migrate, daphne, runworker, requeue.

Every stack has its own database and its own redis-server, so tests can kill,
restart and starve them without touching each other.  The processes use the
product's real settings module with an explicit environment, exactly as an
operator would start them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import requests

from tests.support import ROOT, RedisServer, free_port, wait_for_port

PYTHON = sys.executable


POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")


def postgres_database() -> str:
    """A fresh PostgreSQL database; the stack using it drops it on close."""
    import psycopg

    name = f"e2e_{uuid.uuid4().hex[:12]}"
    base = POSTGRES_URL.rsplit("/", 1)[0]
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{base}/{name}"


def postgres_available() -> bool:
    try:
        import psycopg

        psycopg.connect(POSTGRES_URL, connect_timeout=3).close()
    except Exception:
        return False
    return True


def _database_for(workdir: Path) -> str:
    """A database of the stack's own, on the engine the suite runs on."""
    if os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")):
        return postgres_database()
    return f"sqlite:///{workdir / 'db.sqlite3'}"


class Stack:
    def __init__(self, workdir: Path, *, redis: RedisServer | None, env: dict[str, str] | None = None):
        self.workdir = workdir
        self.redis = redis
        self.procs: list[subprocess.Popen] = []
        self.web_ports: list[int] = []
        base = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTEST_"))}
        self.env = base | {
            "DEBUG": "1",
            "SECRET_KEY": "e2e-secret-key-not-for-production-0123456789",
            "DATABASE_URL": (env or {}).get("DATABASE_URL") or _database_for(workdir),
            "PYTHONUNBUFFERED": "1",
            "LOG_LEVEL": "INFO",
            # Fast retries keep fault tests short; the policy is the same.
            "JOBS_RETRY_BASE_DELAY": "0.2",
            "JOBS_RETRY_MAX_DELAY": "2",
            # Tests place hundreds of orders in seconds, as a bulk client may.
            "ORDER_THROTTLE_RATE": "100000/minute",
        }
        if redis is not None:
            self.env["REDIS_URL"] = redis.url
        self.env.update(env or {})
        self.port = free_port()
        self.env["PORT"] = str(self.port)
        self.env.setdefault("PAYMENT_GATEWAY_URL", f"http://127.0.0.1:{self.port}/sandbox/gateway/")

    # --- processes --------------------------------------------------------------

    def manage(self, *args: str, env: dict | None = None, check: bool = True, timeout: float = 120):
        return subprocess.run(
            [PYTHON, "manage.py", *args],
            cwd=ROOT, env=self.env | (env or {}), capture_output=True, text=True, timeout=timeout, check=check,
        )

    def _spawn(self, name: str, argv: list[str], env: dict | None) -> subprocess.Popen:
        log = open(self.workdir / f"{name}.log", "ab")
        proc = subprocess.Popen(argv, cwd=ROOT, env=self.env | (env or {}), stdout=log, stderr=subprocess.STDOUT)
        proc.name = name  # type: ignore[attr-defined]
        self.procs.append(proc)
        return proc

    def start_web(self, *, port: int | None = None, env: dict | None = None) -> subprocess.Popen:
        port = port or (self.port if self.port not in self.web_ports else free_port())
        proc = self._spawn(
            f"daphne-{port}",
            [PYTHON, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "project.asgi:application"],
            env,
        )
        wait_for_port(port, timeout=30, proc=proc)
        self.web_ports.append(port)
        return proc

    def start_worker(self, *args: str, env: dict | None = None, name: str = "worker") -> subprocess.Popen:
        proc = self._spawn(f"{name}-{len(self.procs)}", [PYTHON, "manage.py", "runworker", *args], env)
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
            time.sleep(0.1)
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
        url = self.env["DATABASE_URL"]
        if url.startswith(("postgres://", "postgresql://")):
            import psycopg

            base, name = url.rsplit("/", 1)
            with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    # --- setup ------------------------------------------------------------------

    def migrate(self) -> None:
        self.manage("migrate", "-v0")

    def create_users(self, *names: str, password: str = "pw-Secret-123") -> dict[str, str]:
        """Create users and return {username: api token}."""
        code = (
            "import json; from django.contrib.auth import get_user_model; "
            "from rest_framework.authtoken.models import Token; out = {}\n"
            f"for name in {list(names)!r}:\n"
            f"    u, _ = get_user_model().objects.get_or_create(username=name)\n"
            f"    u.set_password({password!r}); u.save()\n"
            "    out[name] = Token.objects.get_or_create(user=u)[0].key\n"
            "print(json.dumps(out))"
        )
        return json.loads(self.manage("shell", "-c", code).stdout.strip().splitlines()[-1])

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
        for _ in range(50):
            response = requests.get(self.url("/sandbox/gateway/transactions/"), timeout=30)
            if response.status_code != 503:
                response.raise_for_status()
                return response.json()["transactions"]
        raise AssertionError("the sandbox ledger kept answering 503")

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
    session = stack.api(token)
    out: dict[int, str] = {}
    url = stack.url("/api/orders/?page_size=500")
    while url:
        page = session.get(url, timeout=30).json()
        out.update({o["id"]: o["status"] for o in page["results"]})
        url = page["next"]
    return out
