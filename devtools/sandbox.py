"""The sandbox third parties in a daphne of their own, as a real vendor would be.

A separate process with its own database: nothing of the caller's (threads,
transactions, event loops) is shared with it.  One server serves every
behaviour a caller needs: latency and failure rate are chosen per request by
the URL (``/sandbox/simulate/<ms>ms/<percent>pct/...``), so a test run starts
one server, not one per setting.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import requests

from devtools.processes import PYTHON, ROOT, free_port, kill, wait_for_port
from devtools.stack import DEFAULT_ENV, MERCHANT_KEY, clean_environ

SANDBOX_ENV = {
    "DEBUG": "1",
    "SECRET_KEY": "sandbox-not-secret-0123456789abcdefghij",
    "SANDBOX_ENABLED": "1",
    "EMBEDDED_WORKERS": "0",
    "LOG_LEVEL": "WARNING",
}


def simulate_path(*, latency_ms: int = 0, failure_rate: float = 0.0) -> str:
    """The URL path prefix under /sandbox/ that asks for this behaviour ("" for none)."""
    if not latency_ms and not failure_rate:
        return ""
    return f"simulate/{int(latency_ms)}ms/{round(failure_rate * 100)}pct/"


class SandboxServer:
    """A daphne serving the sandbox on ``database_url`` (migrated), on a port of its own."""

    def __init__(self, workdir: Path, *, database_url: str, env: dict[str, str] | None = None,
                 access_log: bool = False):
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.database_url = database_url
        self.port = free_port()
        self.env = clean_environ() | DEFAULT_ENV | SANDBOX_ENV | {"DATABASE_URL": database_url} | (env or {})
        self.env.pop("REDIS_URL", None)
        self.access_log = workdir / "access.log" if access_log else None
        self.proc: subprocess.Popen | None = None

    def start(self) -> "SandboxServer":
        argv = [PYTHON, "-m", "daphne", "-b", "127.0.0.1", "-p", str(self.port)]
        if self.access_log:
            argv += ["--access-log", str(self.access_log)]
        self.proc = subprocess.Popen(
            [*argv, "project.asgi:application"], cwd=ROOT, env=self.env,
            stdout=open(self.workdir / "daphne.log", "ab"), stderr=subprocess.STDOUT,
        )
        wait_for_port(self.port, timeout=30, proc=self.proc)
        return self

    def stop(self) -> None:
        if self.proc is not None:
            kill(self.proc)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}/sandbox/"

    def gateway_url(self, *, latency_ms: int = 0, failure_rate: float = 0.0) -> str:
        return self.base + simulate_path(latency_ms=latency_ms, failure_rate=failure_rate) + "gateway/"

    def openlibrary_url(self, *, latency_ms: int = 0, failure_rate: float = 0.0) -> str:
        return self.base + simulate_path(latency_ms=latency_ms, failure_rate=failure_rate) + "openlibrary"

    @property
    def key(self) -> str:
        """The merchant key its gateway asks every caller for."""
        return self.env.get("SANDBOX_GATEWAY_KEY", MERCHANT_KEY)

    def stats(self, *, reset: bool = False) -> dict:
        response = requests.request("DELETE" if reset else "GET", self.base + "stats/", timeout=30)
        response.raise_for_status()
        return response.json()

    def calls(self, service: str = "gateway") -> int:
        """Requests served so far for one service (from the access log when there is one)."""
        if self.access_log is not None:
            if not self.access_log.exists():
                return 0
            lines = self.access_log.read_text(errors="replace").splitlines()
            return sum(1 for line in lines if f"/{service}/" in line)
        return self.stats()[service]["requests"]
