"""The README's commands, run as a newcomer runs them: on a fresh checkout, with
a shell that exports nothing of ours.

``make run``, then management commands beside it; ``make up`` (the Redis
mode under honcho), then the README's cron line with the empty environment
cron gives.  The checkout shares this run's virtualenv (a symlink), so make
finds its dependencies installed and the test costs no download.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import requests

from devtools.processes import ROOT, free_port, redis_available, wait_for_port
from tests.support import need

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

README = (ROOT / "README.md").read_text()


def readme_block(language: str) -> str:
    """The README's first fenced block in ``language``."""
    match = re.search(rf"```{language}\n(.*?)```", README, re.S)
    assert match, f"the README has a ```{language} block"
    return match.group(1)


def newcomer_env(**extra: str) -> dict[str, str]:
    """A login shell's environment: PATH and HOME, nothing of the product's."""
    env = {name: os.environ[name] for name in ("PATH", "HOME", "LANG") if name in os.environ}
    return env | extra


@pytest.fixture
def checkout(tmp_path) -> Path:
    """The repository's files as a fresh clone holds them (tracked and new, nothing ignored)."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    target = tmp_path / "app"
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    (target / ".venv").symlink_to(ROOT / ".venv")
    return target


class Running:
    """A long-running make target in its own process group, with its output in a file."""

    def __init__(self, cwd: Path, argv: list[str], env: dict[str, str], log: Path):
        self.log = log
        self.proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=open(log, "wb"), stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, text: str, timeout: float = 240) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output():
            assert self.proc.poll() is None, f"exited {self.proc.returncode} before {text!r}:\n{self.output()[-3000:]}"
            assert time.monotonic() < deadline, f"no {text!r} after {timeout}s:\n{self.output()[-3000:]}"
            time.sleep(0.2)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)


def pay_as_demo(port: int, *, password: str = "demo-password") -> dict:
    """Log in as the demo user, pay, and wait for the order to be final."""
    base = f"http://127.0.0.1:{port}"
    token = requests.post(f"{base}/api/auth/token/", json={"username": "demo", "password": password}, timeout=30)
    assert token.status_code == 200, token.text
    api = requests.Session()
    api.headers["Authorization"] = f"Token {token.json()['token']}"
    created = api.post(f"{base}/api/orders/", json={"amount": "12.50", "nonce": "fake-valid-nonce"}, timeout=30)
    assert created.status_code == 202, created.text
    deadline = time.monotonic() + 60
    while (order := api.get(created.json()["url"], timeout=30).json())["status"] in ("pending", "processing"):
        assert time.monotonic() < deadline, order
        time.sleep(0.3)
    return order


def manage(checkout: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([".venv/bin/python", "manage.py", *args], cwd=checkout, env=env or newcomer_env(),
                          capture_output=True, text=True, timeout=120)


def test_make_run_then_commands_beside_it(checkout, tmp_path):
    port = free_port()
    server = Running(checkout, ["make", "run", f"PORT={port}"], newcomer_env(), tmp_path / "make-run.log")
    try:
        server.wait_for("Serving on")
        wait_for_port(port, timeout=60, proc=server.proc)
        assert "Demo user: demo / password: demo-password" in server.output()
        assert (checkout / ".env").is_file(), "make run writes the local configuration file"
        assert pay_as_demo(port)["status"] == "paid"

        # The README's management commands, beside the server, with nothing exported.
        made = manage(checkout, "createsuperuser", "--noinput", "--username", "admin", "--email", "a@example.com",
                      env=newcomer_env(DJANGO_SUPERUSER_PASSWORD="Admin-pw-123"))
        assert made.returncode == 0, made.stderr
        shell = manage(checkout, "shell", "-c", "from orders.models import Order; print(Order.objects.count())")
        assert shell.returncode == 0 and shell.stdout.strip().endswith("1"), (shell.stdout, shell.stderr)
        # A separate requeue cannot reach the server's in-memory channels: it says so, and fails.
        requeue = manage(checkout, "requeue")
        assert requeue.returncode != 0
        assert "in-memory" in requeue.stderr and "the server requeues" in requeue.stderr, requeue.stderr
        # The demo user changes its password; a restart must not reset it (that would end every open session).
        changed = manage(checkout, "shell", "-c", "from django.contrib.auth.models import User; "
                         "u = User.objects.get(username='demo'); u.set_password('Changed-pw-123'); u.save()")
        assert changed.returncode == 0, changed.stderr
    finally:
        server.stop()

    server = Running(checkout, ["make", "run", f"PORT={port}"], newcomer_env(), tmp_path / "make-run-2.log")
    try:
        server.wait_for("Serving on")
        wait_for_port(port, timeout=60, proc=server.proc)
        assert "Demo user: demo / password" not in server.output()
        assert pay_as_demo(port, password="Changed-pw-123")["status"] == "paid"
    finally:
        server.stop()


def test_make_up_then_the_cron_line(checkout, tmp_path):
    need(redis_available(), "redis-server is not installed")
    port, redis_port = free_port(), free_port()
    redis_url = f"redis://127.0.0.1:{redis_port}/0"
    up = Running(checkout, ["make", "up", f"PORT={port}", f"REDIS_URL={redis_url}"], newcomer_env(),
                 tmp_path / "make-up.log")
    try:
        up.wait_for(f"Started redis-server on port {redis_port}")
        wait_for_port(port, timeout=120, proc=up.proc)
        up.wait_for("consuming")
        assert pay_as_demo(port)["status"] == "paid", up.output()[-3000:]
        assert re.search(r"payments\.1 +\|.*consuming", up.output()), "a separate payments worker took it"

        # The README's cron line, as cron runs it: no environment but what the line gives.
        line = next(ln for ln in readme_block("cron").splitlines() if ln.strip() and not ln.startswith("#"))
        command = " ".join(line.split()[5:])
        command = command.replace("/srv/app", str(checkout)).replace("/var/log/", f"{tmp_path}/")
        cron = subprocess.run(["sh", "-c", command], cwd="/", env={}, capture_output=True, text=True,
                              timeout=120)
        logged = (tmp_path / "requeue.log").read_text()
        assert cron.returncode == 0, logged
        assert "found 0" in logged and "requeued 0" in logged, logged
    finally:
        up.stop()
        subprocess.run(["redis-cli", "-p", str(redis_port), "shutdown", "nosave"], capture_output=True, timeout=30)
