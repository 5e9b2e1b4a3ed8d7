"""Ports, processes and private redis-servers."""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


# Ports for our servers come from below the kernel's ephemeral range: one
# handed out there could be taken, before the server binds it, by one of the
# thousands of outgoing connections a run makes (requests, psycopg, redis).
# Picked at random per process, so two runs side by side (make test's two
# passes) rarely pick alike, and never twice in one process.
_PORTS = range(_ephemeral_low() // 2, _ephemeral_low())
_handed_out: set[int] = set()
_random = random.Random()


def free_port() -> int:
    """A port nothing listens on now, which this process has not handed out before."""
    for _ in range(1000):
        port = _random.randrange(_PORTS.start, _PORTS.stop)
        if port in _handed_out:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError(f"no free port in {_PORTS.start}-{_PORTS.stop - 1}")


def wait_for_port(port: int, *, timeout: float = 30.0, proc: subprocess.Popen | None = None) -> None:
    """Return once something accepts connections on ``port``; fail early if ``proc`` dies."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on {port} after {timeout}s")


def kill(proc: subprocess.Popen, timeout: float = 10) -> None:
    """Terminate, then kill, one process we started."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def redis_available() -> bool:
    return shutil.which("redis-server") is not None


class RedisServer:
    """A private, throwaway redis-server: tests may restart or stop it freely."""

    def __init__(self, workdir: Path, port: int | None = None):
        self.port = port or free_port()
        self.workdir = workdir
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> "RedisServer":
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.workdir)],
            stdout=open(self.workdir / f"redis-{self.port}.log", "ab"),
            stderr=subprocess.STDOUT,
        )
        wait_for_port(self.port, timeout=10, proc=self.proc)
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            kill(self.proc, timeout=5)

    def client(self):
        import redis

        return redis.Redis.from_url(self.url)

    def calls(self, command: str) -> int:
        """How often ``command`` ran since the start or the last ``reset_calls``.

        ``zcount`` counts sends to a background channel: channels-redis
        checks the channel's size before every one.
        """
        client = self.client()
        try:
            return client.info("commandstats").get(f"cmdstat_{command.lower()}", {}).get("calls", 0)
        finally:
            client.close()

    def reset_calls(self) -> None:
        client = self.client()
        try:
            client.config_resetstat()
        finally:
            client.close()

    def flush(self) -> None:
        """Empty it, so nothing queued for one run reaches the next."""
        client = self.client()
        try:
            client.flushall()
        finally:
            client.close()
